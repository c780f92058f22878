"""A baseline from a training data file too large to load at once (CSV, JSON Lines, Parquet).

Two passes in chunks, in memory bounded by the chunk and a fixed-size sample:
the first decides each column's kind and keeps a uniform random sample of every
numeric column (at most ``sample_size`` values), from which the quantile edges
are taken; the second counts every row exactly into those bins and categories.
The edges are sample quantiles, still actual training values, so every bin holds
data; the counts are exact.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .baseline import (
    CATEGORICAL,
    DEFAULT_BINS,
    DEFAULT_MAX_CATEGORIES,
    FEATURE,
    NUMERIC,
    OUTPUT,
    Baseline,
    BaselineError,
    Column,
    categorical_column,
    quantile_edges,
)
from .binning import bin_floats, category_key, to_floats
from .drift import DriftReport, DriftThresholds, compare
from .quality import (
    Quality,
    categorical_quality,
    merge_quality,
    numeric_errors,
    numeric_quality,
)

CHUNK_ROWS = 100_000
SAMPLE_SIZE = 200_000
Chunk = dict[str, list[Any]]
Progress = Callable[[str, int, float], None]


class MissingColumnsError(BaselineError):
    """Columns asked for that the file does not have."""

    def __init__(
        self, path: str, missing: list[str], available: list[str], what: str = "column"
    ) -> None:
        self.path, self.missing, self.available = path, missing, available
        names = ", ".join(map(repr, missing))
        super().__init__(f"{path}: no {what} {names} (it has: {', '.join(available)})")


def _csv_chunks(path: str, rows: int) -> Iterator[tuple[Chunk, int]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if not header:
                raise BaselineError(f"{path}: empty CSV file; the first line must name the columns")
            while True:
                block = [r for _, r in zip(range(rows), reader)]
                if not block:
                    return
                width = len(header)
                block = [r if len(r) == width else (r + [""] * width)[:width] for r in block]
                yield dict(zip(header, map(list, zip(*block)))), f.buffer.tell()
        except UnicodeDecodeError:
            raise BaselineError(
                f"{path}: not UTF-8 text; give a UTF-8 CSV file with a header row, "
                "or name the file .jsonl (JSON Lines) or .parquet"
            ) from None
        except csv.Error as exc:
            raise BaselineError(f"{path}:{reader.line_num}: not CSV: {exc}") from None


def _jsonl_chunks(path: str, rows: int) -> Iterator[tuple[Chunk, int]]:
    with open(path, encoding="utf-8") as f:
        block: list[dict[str, Any]] = []
        number = 0
        try:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise BaselineError(
                        f"{path}:{number}: not JSON Lines ({exc}); give one JSON object per line"
                    ) from None
                if not isinstance(record, dict):
                    raise BaselineError(f"{path}:{number}: each line must be a JSON object")
                block.append(record)
                if len(block) == rows:
                    yield _columns_of(block), f.buffer.tell()
                    block = []
        except UnicodeDecodeError:
            raise BaselineError(f"{path}:{number + 1}: not UTF-8 text") from None
        if block:
            yield _columns_of(block), f.buffer.tell()


def _columns_of(records: list[dict[str, Any]]) -> Chunk:
    names = dict.fromkeys(k for r in records for k in r)
    return {n: [r.get(n) for r in records] for n in names}


def _parquet_chunks(path: str, rows: int) -> Iterator[tuple[Chunk, int]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BaselineError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        data = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types
        raise BaselineError(f"{path}: not a Parquet file ({exc})") from None
    size, total, done = os.path.getsize(path), max(data.metadata.num_rows, 1), 0
    for batch in data.iter_batches(batch_size=rows):
        done += batch.num_rows
        names = batch.schema.names
        chunk = {name: column.to_pylist() for name, column in zip(names, batch.columns)}
        yield chunk, size * done // total  # Parquet is compressed: bytes in proportion to rows


def _chunks_read(path: str, rows: int) -> Iterator[tuple[Chunk, int]]:
    """Chunks and how many bytes of the file have been read, by the file's extension."""
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return _jsonl_chunks(path, rows)
    if lower.endswith((".parquet", ".pq")):
        return _parquet_chunks(path, rows)
    return _csv_chunks(path, rows)


def chunks(path: str, rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Column name -> raw values, ``rows`` rows at a time, by the file's extension."""
    return (chunk for chunk, _ in _chunks_read(path, rows))


def _floats(values: list[Any], text: bool) -> tuple[np.ndarray, bool]:
    """Floats (NaN where missing) and whether every present value was a number.

    CSV fields are text: "" is missing, anything float() reads is a number. JSON
    values are typed and follow the same rules as at serving time.
    """
    if not text:
        floats = to_floats(values)
        numbers = all(
            category_key(v) is None or isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in values
        )
        return floats, numbers
    try:
        return np.array(values, dtype=np.float64), True
    except ValueError:
        pass
    out = np.full(len(values), np.nan)
    numbers = True
    for i, value in enumerate(values):
        if value == "":
            continue
        try:
            out[i] = float(value)
        except ValueError:
            numbers = False
    return out, numbers


def _text_category(text: str) -> str:
    """The category a CSV field stands for, as the same value sent as JSON would be.

    CSV has no types: "True" (pandas writes bools so) is the bool true, "2.0" the
    number 2; other text is itself.
    """
    lower = text.lower()
    if lower in ("true", "false"):
        return lower
    try:
        number = float(text)
    except ValueError:
        return text
    return category_key(number) or text


def _text_key_counts(keys: Counter[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, count in keys.items():
        category = _text_category(key)
        out[category] = out.get(category, 0) + count
    return out


@dataclass
class _Pass1:
    """What the first pass learns about one column."""

    numeric: bool = True
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))


def build_baseline(
    path: str,
    predictions: Sequence[str] = (),
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    chunk_rows: int = CHUNK_ROWS,
    sample_size: int = SAMPLE_SIZE,
    progress: Progress | None = None,
    truth: Mapping[str, str] | None = None,
) -> Baseline:
    """Baseline of a data file: ``predictions`` name the output columns; the features
    are ``features`` or else every other column; ``truth`` maps a prediction column
    to the column of true values, for the baseline's quality.

    ``progress(stage, rows, fraction)`` is called after each chunk: ``stage`` is
    ``"reading"`` (first pass: kinds and samples) or ``"counting"`` (second pass), and
    with ``truth`` also ``"quality-sample"`` and ``"quality-counting"`` (two more);
    ``rows`` the rows read so far in that pass, ``fraction`` the share of the file's
    bytes read so far in that pass (0 to 1).
    """
    truth = dict(truth or {})
    for name in truth:
        if name not in predictions:
            raise BaselineError(f"--truth {name}=...: {name!r} is not a --prediction column")
    if not os.path.exists(path):
        raise BaselineError(
            f"{path}: no such file; give a training data file "
            "(CSV with a header row, JSON Lines or Parquet)"
        )
    if os.path.isdir(path):
        raise BaselineError(f"{path}: is a directory; give a training data file")
    size = max(os.path.getsize(path), 1)
    text = not path.lower().endswith((".jsonl", ".ndjson", ".json", ".parquet", ".pq"))
    rng = np.random.default_rng(0)
    state: dict[str, _Pass1] = {}
    rows = 0
    for chunk, read in _chunks_read(path, chunk_rows):
        for name, values in chunk.items():
            column = state.setdefault(name, _Pass1(numeric=name not in categorical))
            if not column.numeric:
                continue
            floats, numbers = _floats(values, text)
            if not numbers:
                column.numeric = False
                column.sample = column.keys = np.empty(0)
                continue
            finite = floats[np.isfinite(floats)]
            # A uniform sample of bounded size: keep the values with the smallest random keys.
            keys = np.concatenate([column.keys, rng.random(finite.size)])
            sample = np.concatenate([column.sample, finite])
            if sample.size > sample_size:
                keep = np.argpartition(keys, sample_size)[:sample_size]
                keys, sample = keys[keep], sample[keep]
            column.keys, column.sample = keys, sample
        rows += len(next(iter(chunk.values()), []))
        if progress:
            progress("reading", rows, min(read / size, 1.0))
    if not state:
        raise BaselineError(f"{path}: no columns")
    missing_names = [n for n in [*predictions, *(features or ()), *categorical] if n not in state]
    if missing_names:
        raise MissingColumnsError(path, missing_names, list(state))
    truth_names = set(truth.values())
    absent = [n for n in truth_names if n not in state]
    if absent:
        raise MissingColumnsError(path, absent, list(state), what="truth column")
    feature_names = (
        list(features)
        if features
        else [n for n in state if n not in predictions and n not in truth_names]
    )

    edges = {n: quantile_edges(c.sample, bins) for n, c in state.items() if c.numeric}
    counts = {n: np.zeros(len(e) + 1, dtype=np.int64) for n, e in edges.items()}
    tallies: dict[str, Counter[str]] = {n: Counter() for n, c in state.items() if not c.numeric}
    missing = dict.fromkeys(state, 0)
    sums = dict.fromkeys(edges, 0.0)
    done = 0
    for chunk, read in _chunks_read(path, chunk_rows):
        for name, values in chunk.items():
            if name in edges:
                binned, lost, total = bin_floats(edges[name], _floats(values, text)[0])
                counts[name] += binned
                missing[name] += lost
                sums[name] += total
            else:
                keys = Counter(values) if text else Counter(map(category_key, values))
                missing[name] += keys.pop("" if text else None, 0)
                if text:  # normalise each distinct value once, not each row
                    keys = Counter(_text_key_counts(keys))
                tallies[name].update(keys)
        done += len(next(iter(chunk.values()), []))
        if progress:
            progress("counting", done, min(read / size, 1.0))

    def column(name: str, role: str) -> Column:
        if name in edges:
            return Column(
                name, role, NUMERIC, counts[name], missing[name], edges=edges[name], sum=sums[name]
            )
        return categorical_column(name, role, tallies[name], missing[name], max_categories)

    outputs = [column(n, OUTPUT) for n in predictions]
    if truth:
        outputs = _with_quality(
            path, text, outputs, truth, bins, chunk_rows, sample_size, progress, size
        )
    return Baseline([column(n, FEATURE) for n in feature_names], outputs, rows=rows)


def _with_quality(
    path: str,
    text: bool,
    outputs: list[Column],
    truth: Mapping[str, str],
    bins: int,
    chunk_rows: int,
    sample_size: int,
    progress: Progress | None = None,
    size: int = 1,
) -> list[Column]:
    """Output columns with their quality against the truth columns, in two more passes:
    a bounded uniform sample of errors for their bin edges, then exact counts."""
    rng = np.random.default_rng(1)
    numeric = {c.name for c in outputs if c.kind == NUMERIC and c.name in truth}
    samples = {n: (np.empty(0), np.empty(0)) for n in numeric}

    def values(chunk: Chunk, name: str) -> list[Any]:
        column = chunk[name]
        return [_text_value(v) for v in column] if text else column

    done = 0
    for chunk, read in _chunks_read(path, chunk_rows):
        done += len(next(iter(chunk.values()), []))
        if progress:
            progress("quality-sample", done, min(read / size, 1.0))
        for name in numeric:
            errors, _ = numeric_errors(values(chunk, name), values(chunk, truth[name]))
            keys = np.concatenate([samples[name][0], rng.random(errors.size)])
            kept = np.concatenate([samples[name][1], errors])
            if kept.size > sample_size:
                keep = np.argpartition(keys, sample_size)[:sample_size]
                keys, kept = keys[keep], kept[keep]
            samples[name] = (keys, kept)
    parts: dict[str, list[Quality]] = {c.name: [] for c in outputs if c.name in truth}
    by_name = {c.name: c for c in outputs}
    edges = {n: quantile_edges(samples[n][1], bins) for n in numeric}
    done = 0
    for chunk, read in _chunks_read(path, chunk_rows):
        done += len(next(iter(chunk.values()), []))
        if progress:
            progress("quality-counting", done, min(read / size, 1.0))
        for name in parts:
            predicted, true = values(chunk, name), values(chunk, truth[name])
            if name in numeric:
                parts[name].append(numeric_quality(*numeric_errors(predicted, true), edges[name]))
            else:
                classes = by_name[name].categories
                parts[name].append(categorical_quality(predicted, true, classes))
    return [
        replace(c, quality=merge_quality(parts[c.name])) if parts.get(c.name) else c
        for c in outputs
    ]


def _text_value(value: Any) -> Any:
    """A CSV cell as the number or category it stands for (empty: missing)."""
    if value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return _text_category(value) if isinstance(value, str) else value


def describe(baseline: Baseline) -> str:
    """One line per column: what was inferred."""
    lines = []
    for c in baseline.columns:
        share = c.missing / baseline.rows if baseline.rows else 0.0
        shape = (
            f"{len(c.counts)} bins, {c.edges[0]:.6g} .. {c.edges[-1]:.6g}"
            if c.kind == NUMERIC and len(c.edges)
            else f"{len(c.categories) - 1} categories + __other__"
            if c.kind == CATEGORICAL
            else "1 bin"
        )
        lines.append(f"  {c.role:8} {c.name:24} {c.kind:12} {shape}; {share:.1%} missing")
    return "\n".join(lines)


def drift_of_files(
    baseline: Baseline,
    paths: Sequence[str],
    thresholds: DriftThresholds | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> DriftReport:
    """Drift of current data files (same formats as :func:`build_baseline`, counts
    summed over the files) against ``baseline``, counted in chunks with the baseline
    builder's rules for text fields.

    Every baseline feature and output found as a column is compared; the rest are
    left out, as in :meth:`Baseline.drift`.
    """
    for path in paths:
        if not os.path.exists(path):
            raise BaselineError(
                f"{path}: no such file; give the current data files "
                "(CSV with a header row, JSON Lines or Parquet)"
            )
    columns = {c.name: c for c in baseline.columns}
    counts = {n: np.zeros(len(c.counts), dtype=np.int64) for n, c in columns.items()}
    missing = dict.fromkeys(columns, 0)
    seen: set[str] = set()
    for path in paths:
        text = not path.lower().endswith((".jsonl", ".ndjson", ".json", ".parquet", ".pq"))
        for chunk in chunks(path, chunk_rows):
            for name, values in chunk.items():
                column = columns.get(name)
                if column is None:
                    continue
                seen.add(name)
                if column.kind == NUMERIC:
                    binned, lost, _ = bin_floats(column.edges, _floats(values, text)[0])
                else:
                    keys = Counter(values) if text else Counter(map(category_key, values))
                    lost = keys.pop("" if text else None, 0)
                    index = {c: i for i, c in enumerate(column.categories)}
                    binned = np.zeros(len(index), dtype=np.int64)
                    for key, count in (_text_key_counts(keys) if text else keys).items():
                        binned[index.get(key, len(index) - 1)] += count  # unseen: __other__
                counts[name] += binned
                missing[name] += lost
    if not seen:
        known = ", ".join(columns)
        raise BaselineError(
            f"{', '.join(paths)}: none of the baseline's columns ({known}) is in the data"
        )
    return DriftReport(
        compare(c, counts[c.name], missing[c.name], thresholds)
        for c in baseline.columns
        if c.name in seen
    )
