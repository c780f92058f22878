"""Counting extracted values into the baseline's bins: the framework-free hot path.

All counts of one monitor live in one flat float64 array (a *store*), laid out
once from the baseline by :class:`Layout`. Memory is therefore
O(features x bins) whatever the traffic, and a scrape is one array read. A
single row is counted with ``bisect`` and item increments; a batch with numpy
``searchsorted`` and ``bincount``. Both use the rules of :mod:`.values`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import orjson

from .baseline import NUMERIC, Baseline, Column
from .binning import as_number, bin_floats, category_codes, category_key, to_floats
from .schema import REASONS, Reason

# Up to this many rows, a Python loop beats numpy's per-call overhead.
_SMALL_BATCH = 8


class Store(Protocol):
    """Where counts live: process memory, or a shared file per worker process."""

    array: np.ndarray | None  # the counts of this process, writable (None until open)
    buf: memoryview | None  # the same memory, for fast item increments

    def open(self) -> memoryview:
        """Make ``array`` and ``buf`` usable; returns ``buf``."""
        ...

    def snapshot(self) -> np.ndarray:
        """Totals over every process that shares this store."""
        ...


class MemoryStore:
    """Counts of one process, in its memory."""

    def __init__(self, size: int) -> None:
        self.array = np.zeros(size, dtype=np.float64)
        self.buf = memoryview(self.array)

    def open(self) -> memoryview:
        return self.buf

    def snapshot(self) -> np.ndarray:
        return self.array.copy()


class _Slots:
    """Where one column's counts live, and how one value is counted."""

    __slots__ = (
        "model",
        "column",
        "start",
        "bins",
        "missing",
        "sum",
        "edges",
        "edge_list",
        "index",
        "local",
        "other",
        "plan",
    )

    def __init__(self, model: str, column: Column, start: int) -> None:
        self.model = model
        self.column = column
        self.start = start
        self.bins = len(column.counts)
        self.missing = start + self.bins
        self.sum = self.missing + 1 if column.kind == NUMERIC else -1
        self.edges = column.edges
        self.edge_list = [float(e) for e in column.edges]
        self.local = {c: i for i, c in enumerate(column.categories)}
        self.index = {c: start + i for c, i in self.local.items()}
        self.other = start + self.bins - 1
        # Everything the single-row loop needs, unpacked in one step.
        self.plan = (
            column.kind == NUMERIC,
            self.edge_list,
            start,
            self.sum,
            self.missing,
            self.index,
            self.other,
        )

    @property
    def end(self) -> int:
        return self.sum + 1 if self.sum >= 0 else self.missing + 1

    def add_many(self, array: np.ndarray, values: Sequence[Any]) -> None:
        if self.sum >= 0:
            counts, missing, total = bin_floats(self.edges, to_floats(values))
            array[self.sum] += total
        else:
            codes, missing = category_codes(self.local, self.bins - 1, values)
            counts = np.bincount(codes[codes >= 0], minlength=self.bins)
        array[self.start : self.start + self.bins] += counts
        array[self.missing] += missing


def _absent(_key: Any) -> None:
    return None


class _QualitySlots:
    """Where one output's feedback counts live: errors in the baseline's error bins
    (then missing, sum of e, of |e|, of e², of max(e, 0)), or a predicted x actual
    matrix (then missing)."""

    __slots__ = (
        "model",
        "column",
        "quality",
        "start",
        "bins",
        "missing",
        "numeric",
        "edges",
        "index",
    )

    def __init__(self, model: str, column: Column, start: int) -> None:
        self.model = model
        self.column = column
        self.start = start
        self.numeric = column.kind == NUMERIC
        if self.numeric:
            assert column.quality is not None  # the config refuses numeric outputs without
            self.edges = [float(e) for e in column.quality.edges]
            self.bins = len(self.edges) + 1
        else:
            self.edges = []
            self.bins = len(column.categories) ** 2
        self.index = {c: i for i, c in enumerate(column.categories)}
        self.missing = start + self.bins

    @property
    def end(self) -> int:
        return self.missing + (5 if self.numeric else 1)

    def add(self, buf: memoryview, predictions: Sequence[Any], truths: Sequence[Any]) -> None:
        start, missing = self.start, self.missing
        if self.numeric:
            edges = self.edges
            for predicted, actual in zip(predictions, truths):
                p, t = as_number(predicted), as_number(actual)
                error = p - t if p is not None and t is not None else None
                if error is None or error - error != 0.0:
                    buf[missing] += 1.0
                    continue
                buf[start + bisect_left(edges, error)] += 1.0
                buf[missing + 1] += error
                buf[missing + 2] += abs(error)
                buf[missing + 3] += error * error
                if error > 0.0:
                    buf[missing + 4] += error
            return
        index, other = self.index, len(self.index) - 1
        width = len(index)
        for predicted, actual in zip(predictions, truths):
            p, t = category_key(predicted), category_key(actual)
            if p is None or t is None:
                buf[missing] += 1.0
            else:
                buf[start + index.get(p, other) * width + index.get(t, other)] += 1.0

    def add_many(
        self, array: np.ndarray, predictions: Sequence[Any], truths: Sequence[Any]
    ) -> None:
        """:meth:`add` for a batch, in numpy: the same rules, one pass per column."""
        start, missing = self.start, self.missing
        if self.numeric:
            errors = to_floats(predictions) - to_floats(truths)
            usable = errors[np.isfinite(errors)]
            bins = np.searchsorted(np.asarray(self.edges), usable, side="left")
            array[start : start + self.bins] += np.bincount(bins, minlength=self.bins)
            array[missing] += len(errors) - len(usable)
            array[missing + 1] += usable.sum()
            array[missing + 2] += np.abs(usable).sum()
            array[missing + 3] += np.square(usable).sum()
            array[missing + 4] += usable[usable > 0.0].sum()
            return
        width = len(self.index)
        p, lost_p = category_codes(self.index, width - 1, predictions)
        t, lost_t = category_codes(self.index, width - 1, truths)
        usable = (p >= 0) & (t >= 0)
        cells = np.bincount(p[usable] * width + t[usable], minlength=width * width)
        array[start : start + self.bins] += cells
        array[missing] += len(p) - int(usable.sum())


class Layout:
    """Offsets of every count of one monitor in its flat array.

    Per model, per column: its bins, then missing, then (numeric) the sum. Per
    (model, route) pair: observed requests, observed rows, then one slot per error
    reason. ``models`` maps each model name to its baseline; ``routes`` lists the
    (model, route path) pairs that count requests.
    """

    def __init__(
        self,
        models: Mapping[str, Baseline],
        routes: Sequence[tuple[str, str]] = (),
        feedback: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.models = dict(models)
        self.routes = tuple(routes)
        self.columns: list[_Slots] = []
        self._columns: dict[tuple[str, str, str], int] = {}
        offset = 0
        for model, baseline in self.models.items():
            for column in baseline.columns:
                slots = _Slots(model, column, offset)
                self._columns[(model, column.role, column.name)] = len(self.columns)
                self.columns.append(slots)
                offset = slots.end
        # Outputs that feedback routes bring ground truth for, as (model, output) pairs.
        self.quality: list[_QualitySlots] = []
        self._quality: dict[tuple[str, str], int] = {}
        for model, name in feedback:
            slots_q = _QualitySlots(model, self.models[model].output(name), offset)
            self._quality[(model, name)] = len(self.quality)
            self.quality.append(slots_q)
            offset = slots_q.end
        self.route_offset = offset
        self.route_width = 2 + len(REASONS)
        self.size = offset + self.route_width * len(self.routes)
        description = orjson.dumps(
            [
                [[m, b.to_dict()["features"], b.to_dict()["outputs"]] for m, b in models.items()],
                [list(r) for r in self.routes],
                [r.label for r in REASONS],
                *([[list(f) for f in feedback]] if feedback else []),
            ]
        )
        self.key = hashlib.sha256(description).hexdigest()[:16]

    def column_index(self, model: str, role: str, name: str) -> int:
        try:
            return self._columns[(model, role, name)]
        except KeyError:
            raise KeyError(f"{model}: {role} {name!r}") from None

    def compile_counter(self, columns: Sequence[tuple[int, str]]) -> Callable[[Any, Any], None]:
        """``count(buf, doc)``: counts ``doc[key]`` into each column, straight-line.

        The generated function does per value exactly what :meth:`Recorder.observe`'s
        loop does, with every slot a literal and no loop, tuple or dispatch: for the
        most common route, a JSON object per request read by top-level keys, this is
        the whole of extraction and counting.
        """
        names: dict[str, Any] = {
            "bisect_left": bisect_left,
            "as_number": as_number,
            "category_key": category_key,
        }
        lines = ["def count(buf, doc):", "    get = doc.get if type(doc) is dict else _absent"]
        names["_absent"] = _absent
        for n, (index, key) in enumerate(columns):
            slots = self.columns[index]
            lines.append(f"    v = get({key!r})")
            if slots.sum >= 0:
                names[f"E{n}"] = slots.edge_list
                lines += [
                    "    if type(v) is not float:",
                    "        v = as_number(v)",
                    "    if v is not None and v - v == 0.0:",
                    f"        buf[{slots.start} + bisect_left(E{n}, v)] += 1.0",
                    f"        buf[{slots.sum}] += v",
                    "    else:",
                    f"        buf[{slots.missing}] += 1.0",
                ]
            else:
                names[f"C{n}"] = slots.index
                lines += [
                    "    if type(v) is not str:",
                    "        v = category_key(v)",
                    "    if v is None:",
                    f"        buf[{slots.missing}] += 1.0",
                    "    else:",
                    f"        buf[C{n}.get(v, {slots.other})] += 1.0",
                ]
        if not columns:
            lines.append("    pass")
        exec(compile("\n".join(lines), "<boxkite counter>", "exec"), names)  # noqa: S102
        return names["count"]

    def quality_index(self, model: str, output: str) -> int:
        try:
            return self._quality[(model, output)]
        except KeyError:
            raise KeyError(f"{model}: no feedback for output {output!r}") from None

    def route_slots(self, route: int) -> tuple[int, int, int]:
        """(requests slot, rows slot, first error slot) of a (model, route) pair."""
        base = self.route_offset + route * self.route_width
        return base, base + 1, base + 2


class Recorder:
    """Thread-safe counting of extracted values into a store."""

    def __init__(self, layout: Layout, store: Store) -> None:
        self.layout = layout
        self.store = store
        self._lock = threading.Lock()
        self._routes = [layout.route_slots(i) for i in range(len(layout.routes))]
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_lock(ref))

    def observe(
        self, route: int | None, rows: int, columns: Sequence[tuple[int, Sequence[Any]]]
    ) -> None:
        """Count one request: ``rows`` rows, each column index with its per-row values.

        ``route`` None counts values only (no request/row counters), as the
        Boxkite-compatible API and offline callers do.
        """
        slots = self.layout.columns
        with self._lock:
            buf = self.store.buf or self.store.open()
            if rows <= _SMALL_BATCH:
                # The per-value loop, written out: this is the hot path of single records.
                for index, values in columns:
                    numeric, edges, start, total, missing, categories, other = slots[index].plan
                    if numeric:
                        for value in values:
                            # JSON floats take the first branch; as_number returns None for
                            # whatever must count as missing (null, bools, strings, ...).
                            number = value if type(value) is float else as_number(value)
                            if number is not None and number - number == 0.0:  # not inf/nan
                                buf[start + bisect_left(edges, number)] += 1.0
                                buf[total] += number
                            else:
                                buf[missing] += 1.0
                    else:
                        for value in values:
                            key = value if type(value) is str else category_key(value)
                            if key is None:
                                buf[missing] += 1.0
                            else:
                                buf[categories.get(key, other)] += 1.0
            else:
                array = self.store.array
                for index, values in columns:
                    slots[index].add_many(array, values)
            if route is not None:
                requests, row_slot, _ = self._routes[route]
                buf[requests] += 1.0
                buf[row_slot] += rows

    def observe_compiled(
        self, route: int, counts: Sequence[tuple[Callable[[Any, Any], None], Any]]
    ) -> None:
        """Count one row of a request with :meth:`Layout.compile_counter` functions, each
        given its document."""
        with self._lock:
            buf = self.store.buf or self.store.open()
            for count, doc in counts:
                count(buf, doc)
            requests, row_slot, _ = self._routes[route]
            buf[requests] += 1.0
            buf[row_slot] += 1.0

    def feedback(
        self, route: int, rows: int, outputs: Sequence[tuple[int, Sequence[Any], Sequence[Any]]]
    ) -> None:
        """Count ground truth: per output (quality index), predictions and truths by row."""
        quality = self.layout.quality
        with self._lock:
            buf = self.store.buf or self.store.open()
            for index, predictions, truths in outputs:
                if rows <= _SMALL_BATCH:
                    quality[index].add(buf, predictions, truths)
                else:
                    quality[index].add_many(self.store.array, predictions, truths)
            requests, row_slot, _ = self._routes[route]
            buf[requests] += 1.0
            buf[row_slot] += rows

    def error(self, route: int, reason: Reason) -> None:
        """Count a request whose body could not be observed."""
        slot = self._routes[route][2] + reason
        with self._lock:
            (self.store.buf or self.store.open())[slot] += 1.0

    def snapshot(self) -> np.ndarray:
        return self.store.snapshot()


def _reset_lock(ref: weakref.ref[Recorder]) -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    recorder = ref()
    if recorder is not None:
        recorder._lock = threading.Lock()
