"""Turning parsed request and response bodies into per-column values.

An extractor returns *columns*: pairs of a column index in the monitor's layout
and one value per row. Rows of a batch stay columns from here on, which is what
the vectorised counting wants. Extractors never raise on bad values (those
become None, counted as missing); a body whose structure does not match the
route raises :class:`ShapeError`, counted as ``reason="shape"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from operator import itemgetter
from typing import Any

from .config import RouteConfig
from .jsonpath import JSONPath, Step, getter

Columns = list[tuple[int, Sequence[Any]]]


class ShapeError(Exception):
    """The body parsed, but its structure is not what the route expects."""


def _column_of(tail: tuple[Step, ...]) -> Callable[[list[Any]], Sequence[Any]]:
    """Maps a list of row items to one value per row, following ``tail`` in each."""
    if not tail:
        return lambda items: items
    if len(tail) == 1 and isinstance(tail[0], str):
        key = tail[0]
        return lambda items: [r.get(key) if type(r) is dict else None for r in items]
    if len(tail) == 1:
        i = tail[0]
        return lambda items: [
            r[i] if type(r) is list and -len(r) <= i < len(r) else None for r in items
        ]
    follow = getter(tail)
    return lambda items: list(map(follow, items))


def _none(_key: Any) -> None:
    return None


class _PathSide:
    """The paths of one side (request features or response outputs) of a route."""

    def __init__(self, paths: Sequence[tuple[int, JSONPath]]) -> None:
        self.empty = not paths
        self.fans = any(p.fans_out for _, p in paths)
        self._single = [(col, getter(p.head)) for col, p in paths if not p.fans_out]
        # The common case, every path a top-level key ($.age): one dict.get per value.
        self._keys = (
            [(col, p.head[0]) for col, p in paths]
            if paths
            and all(
                not p.fans_out and len(p.head) == 1 and isinstance(p.head[0], str) for _, p in paths
            )
            else None
        )
        groups: dict[tuple[Step, ...], list[tuple[int, tuple[Step, ...]]]] = {}
        for col, p in paths:
            if p.fans_out:
                groups.setdefault(p.head, []).append((col, p.tail or ()))
        # Paths sharing the part before [*] read the batch once.
        self._groups = [
            (getter(head), [(col, _column_of(tail)) for col, tail in tails], _picker(tails))
            for head, tails in groups.items()
        ]

    def extract(self, doc: Any) -> tuple[int, Columns]:
        if self._keys is not None:
            get = doc.get if type(doc) is dict else _none
            return 1, [(col, (get(key),)) for col, key in self._keys]
        if not self.fans:
            return 1, [(col, (get(doc),)) for col, get in self._single]
        rows = None
        columns: Columns = []
        for get_items, tails, picker in self._groups:
            items = get_items(doc)
            if type(items) is not list or (rows is not None and len(items) != rows):
                raise ShapeError
            rows = len(items)
            picked = _pick(picker, items)
            if picked is not None:
                columns += picked
            else:
                columns += [(col, column(items)) for col, column in tails]
        return rows or 0, columns


def _picker(tails: list[tuple[int, tuple[Step, ...]]]) -> tuple[list[int], Callable] | None:
    """For rows of objects read by key (``[*].age``, ``[*].bmi``...), one C-level getter."""
    if len(tails) < 2 or not all(len(t) == 1 and isinstance(t[0], str) for _, t in tails):
        return None
    return [col for col, _ in tails], itemgetter(*(t[0] for _, t in tails))


def _pick(picker: tuple[list[int], Callable] | None, items: list[Any]) -> Columns | None:
    """All the columns of a batch at once (rows transposed in C), or None when some row
    is not an object with every key: then each column is read row by row."""
    if picker is None or not items:
        return None
    cols, pick = picker
    try:
        rows = list(map(pick, items))
    except (KeyError, TypeError, IndexError):
        return None
    return list(zip(cols, zip(*rows)))


class Extractor:
    """Request features and response outputs of one route.

    ``request`` gives the row count and feature columns (rows None when the route
    maps no features); ``response`` the output columns for that many rows.
    """

    has_features: bool = True
    has_outputs: bool = True

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        raise NotImplementedError

    def response(self, doc: Any, rows: int | None) -> tuple[int, Columns]:
        raise NotImplementedError

    def missing_outputs(self, rows: int) -> Columns:
        """Output columns of ``rows`` missing values, for a 2xx response that is unusable."""
        return [(col, [None] * rows) for col in self.output_columns]

    output_columns: list[int] = []


class PathExtractor(Extractor):
    """Features and outputs found by JSONPath expressions from the config."""

    def __init__(
        self, features: Sequence[tuple[int, JSONPath]], outputs: Sequence[tuple[int, JSONPath]]
    ) -> None:
        self._features = _PathSide(features)
        self._outputs = _PathSide(outputs)
        self.has_features = not self._features.empty
        self.has_outputs = not self._outputs.empty
        self.output_columns = [col for col, _ in outputs]

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        if self._features.empty:
            return None, []
        return self._features.extract(doc)

    def top_level_keys(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]] | None:
        """(feature, output) columns with their keys when every path is one top-level
        key (``$.age``) and there are features: one row per request, which the caller
        may count with generated code. None otherwise."""
        features, outputs = self._features._keys, self._outputs._keys
        if features is None or (outputs is None and not self._outputs.empty):
            return None
        return features, outputs or []

    def response(self, doc: Any, rows: int | None) -> tuple[int, Columns]:
        count, columns = self._outputs.extract(doc)
        if rows is not None and count != rows:
            raise ShapeError
        return count, columns


class FeedbackExtractor(Extractor):
    """What the model answered and what was true, per output, from a feedback body."""

    has_outputs = False

    def __init__(self, outputs: Sequence[tuple[int, JSONPath, JSONPath]]) -> None:
        # Predictions at even positions, truths at odd ones, read in one pass.
        paths = []
        for k, (_, predicted, true) in enumerate(outputs):
            paths += [(2 * k, predicted), (2 * k + 1, true)]
        self._side = _PathSide(paths)
        self._quality = [q for q, _, _ in outputs]

    def feedback(self, doc: Any) -> tuple[int, list[tuple[int, Sequence[Any], Sequence[Any]]]]:
        rows, columns = self._side.extract(doc)
        values = dict(columns)
        return rows, [(q, values[2 * k], values[2 * k + 1]) for k, q in enumerate(self._quality)]


def _transpose(rows: list[Any], names: Sequence[str], cols: Sequence[int]) -> Columns:
    """Row lists (in ``names`` order) or row objects (by name) -> columns."""
    if all(type(r) is list for r in rows):
        width = len(names)
        if any(len(r) != width for r in rows):
            raise ShapeError
        if not rows:
            return [(col, []) for col in cols]
        return list(zip(cols, zip(*rows)))
    if all(type(r) is dict for r in rows):
        return [(col, [r.get(n) for r in rows]) for n, col in zip(names, cols)]
    if len(names) == 1:  # a model of one feature may take bare scalars
        return [(cols[0], rows)]
    raise ShapeError


def _columnar(
    data: Mapping[str, Any], names: Sequence[str], cols: Sequence[int]
) -> tuple[int, Columns]:
    """An object of name -> list of values (one per row) -> columns."""
    present = [data[n] for n in names if n in data]
    if not present or any(type(v) is not list or len(v) != len(present[0]) for v in present):
        raise ShapeError
    rows = len(present[0])
    return rows, [(col, data.get(n, [None] * rows)) for n, col in zip(names, cols)]


def _unwrap(value: Any) -> Any:
    """One output per row: ``[x]`` is x (a column vector), anything else as is."""
    return value[0] if type(value) is list and len(value) == 1 else value


def _event_data(doc: Any) -> Any:
    """The payload of a CloudEvent in structured mode (KServe V1), else the document."""
    if type(doc) is dict and "specversion" in doc and "data" in doc:
        return doc["data"]
    return doc


def _text_number(value: Any) -> Any:
    """A number sent as text in a BYTES tensor, as a number; anything else unchanged."""
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return value
    return value


class _Preset(Extractor):
    """Shared by the presets: outputs by name, or unnamed columns in the route's
    ``outputs`` order (the baseline's by default), unless ``predictions`` paths."""

    def __init__(
        self,
        route: RouteConfig,
        features: Mapping[str, int],
        outputs: Mapping[str, int],
        numeric: Set[int] = frozenset(),
    ) -> None:
        self.names = list(features)
        self.cols = list(features.values())
        self.outputs = dict(outputs)
        self.output_names = list(route.outputs or outputs)
        self.numeric = numeric
        self.route = route
        self._paths = (
            PathExtractor([], [(outputs[n], p) for n, p in route.predictions.items()])
            if route.predictions
            else None
        )
        self.output_columns = (
            [outputs[n] for n in route.predictions]
            if route.predictions
            else [outputs[n] for n in self.output_names]
        )
        self.has_outputs = bool(self.output_columns)

    def response(self, doc: Any, rows: int | None) -> tuple[int, Columns]:
        if self._paths is not None:
            return self._paths.response(doc, rows)
        values = self.predictions(doc)
        if type(values) is dict:  # a dict of columns, by output name
            names = [n for n in values if n in self.outputs]
            count, columns = _columnar(values, names, [self.outputs[n] for n in names])
        elif type(values) is list:
            count = len(values)
            if len(self.output_columns) == 1 and not (values and type(values[0]) is dict):
                columns = [(self.output_columns[0], [_unwrap(v) for v in values])]
            elif values and all(type(v) is dict for v in values):  # records, by name
                columns = [
                    (col, [v.get(n) for v in values])
                    for n, col in zip(self.output_names, self.output_columns)
                ]
            else:
                columns = _transpose(values, self.output_names, self.output_columns)
        else:
            raise ShapeError
        if rows is not None and count != rows:
            raise ShapeError
        return count, columns

    def predictions(self, doc: Any) -> Any:
        return doc.get("predictions") if type(doc) is dict else None


class FlatPreset(_Preset):
    """One row: top-level keys named like the features; outputs likewise in the response."""

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        if type(doc) is not dict:
            raise ShapeError
        return 1, [(col, (doc.get(n),)) for n, col in zip(self.names, self.cols)]

    def response(self, doc: Any, rows: int | None) -> tuple[int, Columns]:
        if self._paths is not None:
            return self._paths.response(doc, rows)
        if type(doc) is not dict:
            raise ShapeError
        return 1, [(col, (doc.get(n),)) for n, col in zip(self.output_names, self.output_columns)]


class KServeV1Preset(_Preset):
    """``{"instances": [...]}`` (or ``"inputs"``), rows or objects -> ``{"predictions": [...]}``;
    also inside a CloudEvent in structured mode."""

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        doc = _event_data(doc)
        rows = doc.get("instances", doc.get("inputs")) if type(doc) is dict else None
        if type(rows) is not list:
            raise ShapeError
        return len(rows), _transpose(rows, self.names, self.cols)

    def predictions(self, doc: Any) -> Any:
        return super().predictions(_event_data(doc))


class MLflowPreset(_Preset):
    """MLflow scoring server: dataframe_split, dataframe_records, instances, inputs, and
    MLflow 1.x's split frame at the top level or bare list of records."""

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        if type(doc) is list:  # MLflow 1.x: records
            return len(doc), _transpose(doc, self.names, self.cols)
        if type(doc) is not dict:
            raise ShapeError
        if "dataframe_split" in doc:
            return self._split(doc["dataframe_split"])
        for key in ("dataframe_records", "instances", "inputs"):
            if key in doc:
                rows = doc[key]
                if type(rows) is dict:
                    return _columnar(rows, self.names, self.cols)
                if type(rows) is not list:
                    raise ShapeError
                return len(rows), _transpose(rows, self.names, self.cols)
        if "data" in doc:  # MLflow 1.x: pandas' split orient at the top level
            return self._split(doc)
        raise ShapeError

    def _split(self, split: Any) -> tuple[int, Columns]:
        if type(split) is not dict or type(split.get("data")) is not list:
            raise ShapeError
        data, columns = split["data"], split.get("columns")
        if columns is None:
            return len(data), _transpose(data, self.names, self.cols)
        if type(columns) is not list or any(type(r) is not list for r in data):
            raise ShapeError
        if any(len(r) != len(columns) for r in data):
            raise ShapeError
        position = {c: i for i, c in enumerate(columns) if type(c) is str}
        transposed = list(zip(*data)) if data else [()] * len(columns)
        return len(data), [
            (col, transposed[position[n]] if n in position else [None] * len(data))
            for n, col in zip(self.names, self.cols)
        ]

    def predictions(self, doc: Any) -> Any:
        return doc if type(doc) is list else super().predictions(doc)  # MLflow 1 returned a list


class KServeV2Preset(_Preset):
    """Open Inference Protocol, JSON or binary: the first (or ``input:``) tensor of shape
    [N, F], or one tensor per feature named like it; outputs from the first (or
    ``output:``) tensor, [N] or [N, C], or from several tensors named like the outputs.
    Numbers sent as text in BYTES tensors count as numbers for numeric columns."""

    def request(self, doc: Any) -> tuple[int | None, Columns]:
        tensors = doc.get("inputs") if type(doc) is dict else None
        if type(tensors) is not list or not tensors or any(type(t) is not dict for t in tensors):
            raise ShapeError
        by_name = {t.get("name"): t for t in tensors}
        if self.route.input is not None:
            if self.route.input not in by_name:
                raise ShapeError
            return self._numbers(
                by_name[self.route.input], *self._matrix(by_name[self.route.input])
            )
        first = tensors[0]
        shape = first.get("shape")
        if type(shape) is list and len(shape) == 2 and shape[1] == len(self.names):
            return self._numbers(first, *self._matrix(first))
        if not any(n in by_name for n in self.names):
            return self._numbers(first, *self._matrix(first))
        columns = {n: _flat(by_name[n]) for n in self.names if n in by_name}
        rows, out = _columnar(columns, self.names, self.cols)
        if any(t.get("datatype") == "BYTES" for t in tensors):
            out = [(c, self._convert(c, v)) for c, v in out]
        return rows, out

    def _numbers(
        self, tensor: Mapping[str, Any], rows: int, columns: Columns
    ) -> tuple[int, Columns]:
        if tensor.get("datatype") != "BYTES":
            return rows, columns
        return rows, [(c, self._convert(c, v)) for c, v in columns]

    def _convert(self, col: int, values: Sequence[Any]) -> Sequence[Any]:
        return [_text_number(v) for v in values] if col in self.numeric else values

    def _matrix(self, tensor: Mapping[str, Any]) -> tuple[int, Columns]:
        shape, data = tensor.get("shape"), tensor.get("data")
        width = len(self.names)
        if type(data) is not list or type(shape) is not list or not shape:
            raise ShapeError
        if data and type(data[0]) is list:
            return len(data), _transpose(data, self.names, self.cols)
        rows = shape[0]
        if type(rows) is not int or rows * width != len(data):
            raise ShapeError
        return rows, [(col, data[j::width]) for j, col in enumerate(self.cols)]

    def response(self, doc: Any, rows: int | None) -> tuple[int, Columns]:
        count, columns = super().response(doc, rows)
        tensors = doc.get("outputs") if type(doc) is dict else None
        if type(tensors) is list and any(
            type(t) is dict and t.get("datatype") == "BYTES" for t in tensors
        ):
            columns = [(c, self._convert(c, v)) for c, v in columns]
        return count, columns

    def predictions(self, doc: Any) -> Any:
        tensors = doc.get("outputs") if type(doc) is dict else None
        if type(tensors) is not list or not tensors or any(type(t) is not dict for t in tensors):
            return None
        wanted = self.route.output
        if wanted is not None:
            return _rows(next((t for t in tensors if t.get("name") == wanted), None))
        named = {t.get("name"): t for t in tensors if t.get("name") in self.outputs}
        if len(tensors) > 1 and named:  # several tensors: one output each, by name
            return {name: _flat(t) for name, t in named.items()}
        return _rows(tensors[0])


def _rows(tensor: Any) -> Any:
    """A tensor of shape [N] or [N, 1] as one value per row; [N, C] as N rows of C."""
    if type(tensor) is not dict:
        return None
    shape, data = tensor.get("shape"), tensor.get("data")
    if type(data) is not list or not data or type(data[0]) is list:
        return _flat(tensor)
    if type(shape) is list and len(shape) == 2 and type(shape[1]) is int and shape[1] > 1:
        width = shape[1]
        if len(data) % width:
            raise ShapeError
        return [data[i : i + width] for i in range(0, len(data), width)]
    return data


def _flat(tensor: Any) -> Any:
    """The data of a tensor of shape [N] or [N, 1] as one value per row."""
    data = tensor.get("data") if type(tensor) is dict else None
    if type(data) is list and data and type(data[0]) is list:
        return [_unwrap(v) for v in data]
    return data


PRESET_EXTRACTORS: dict[str, type[_Preset]] = {
    "flat": FlatPreset,
    "kserve-v1": KServeV1Preset,
    "kserve-v2": KServeV2Preset,
    "mlflow": MLflowPreset,
}


def build_extractor(
    route: RouteConfig,
    features: Mapping[str, int],
    outputs: Mapping[str, int],
    numeric: Set[int] = frozenset(),
) -> Extractor:
    """The extractor of a route for one model; ``features``/``outputs`` map names to
    layout columns, ``numeric`` holds the numeric ones."""
    if route.preset is not None:
        return PRESET_EXTRACTORS[route.preset](route, features, outputs, numeric)
    return PathExtractor(
        [(features[n], p) for n, p in route.features.items()],
        [(outputs[n], p) for n, p in route.predictions.items()],
    )
