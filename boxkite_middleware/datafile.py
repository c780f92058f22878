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
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .drift import DriftReport, DriftThresholds

CHUNK_ROWS = 100_000
SAMPLE_SIZE = 200_000
Chunk = dict[str, list[Any]]


def _csv_chunks(path: str, rows: int) -> Iterator[Chunk]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise BaselineError(f"{path}: empty CSV file")
        while True:
            block = [r for _, r in zip(range(rows), reader)]
            if not block:
                return
            width = len(header)
            block = [r if len(r) == width else (r + [""] * width)[:width] for r in block]
            yield dict(zip(header, map(list, zip(*block))))


def _jsonl_chunks(path: str, rows: int) -> Iterator[Chunk]:
    with open(path, encoding="utf-8") as f:
        block: list[dict[str, Any]] = []
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BaselineError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise BaselineError(f"{path}:{number}: each line must be a JSON object")
            block.append(record)
            if len(block) == rows:
                yield _columns_of(block)
                block = []
        if block:
            yield _columns_of(block)


def _columns_of(records: list[dict[str, Any]]) -> Chunk:
    names = dict.fromkeys(k for r in records for k in r)
    return {n: [r.get(n) for r in records] for n in names}


def _parquet_chunks(path: str, rows: int) -> Iterator[Chunk]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BaselineError("reading Parquet needs pyarrow: pip install pyarrow") from None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
        yield {name: column.to_pylist() for name, column in zip(batch.schema.names, batch.columns)}


def chunks(path: str, rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Column name -> raw values, ``rows`` rows at a time, by the file's extension."""
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return _jsonl_chunks(path, rows)
    if lower.endswith((".parquet", ".pq")):
        return _parquet_chunks(path, rows)
    return _csv_chunks(path, rows)


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
    progress: Callable[[str, int], None] | None = None,
) -> Baseline:
    """Baseline of a data file: ``predictions`` name the output columns; the features
    are ``features`` or else every other column."""
    if not os.path.exists(path):
        raise BaselineError(f"{path}: no such file")
    text = not path.lower().endswith((".jsonl", ".ndjson", ".json", ".parquet", ".pq"))
    rng = np.random.default_rng(0)
    state: dict[str, _Pass1] = {}
    rows = 0
    for chunk in chunks(path, chunk_rows):
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
            progress("reading", rows)
    if not state:
        raise BaselineError(f"{path}: no columns")
    missing_names = [n for n in [*predictions, *(features or ()), *categorical] if n not in state]
    if missing_names:
        raise BaselineError(
            f"{path}: no column {', '.join(map(repr, missing_names))} (it has: {', '.join(state)})"
        )
    feature_names = list(features) if features else [n for n in state if n not in predictions]

    edges = {n: quantile_edges(c.sample, bins) for n, c in state.items() if c.numeric}
    counts = {n: np.zeros(len(e) + 1, dtype=np.int64) for n, e in edges.items()}
    tallies: dict[str, Counter[str]] = {n: Counter() for n, c in state.items() if not c.numeric}
    missing = dict.fromkeys(state, 0)
    sums = dict.fromkeys(edges, 0.0)
    done = 0
    for chunk in chunks(path, chunk_rows):
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
            progress("counting", done)

    def column(name: str, role: str) -> Column:
        if name in edges:
            return Column(
                name, role, NUMERIC, counts[name], missing[name], edges=edges[name], sum=sums[name]
            )
        return categorical_column(name, role, tallies[name], missing[name], max_categories)

    return Baseline(
        [column(n, FEATURE) for n in feature_names],
        [column(n, OUTPUT) for n in predictions],
        rows=rows,
    )


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


def terminal_progress(stream=sys.stderr) -> Callable[[str, int], None] | None:
    """A progress line for a terminal; None (quiet) when ``stream`` is not one."""
    if not stream.isatty():
        return None

    def show(stage: str, rows: int) -> None:
        stream.write(f"\r{stage}: {rows:,} rows")
        stream.flush()

    return show


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
    from .drift import DriftReport, compare

    for path in paths:
        if not os.path.exists(path):
            raise BaselineError(f"{path}: no such file")
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
