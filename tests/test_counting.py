import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from boxkite_middleware import Baseline, Monitor

# Anything a JSON body can hold, plus the awkward numbers.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),  # what models return
    st.integers(-(2**62), 2**62).map(np.int64),
    st.booleans().map(np.bool_),
    st.sampled_from(["eu", "us", "apac", "", "1", "1.0", "true"]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_scalars, max_size=40))
def test_single_row_batch_and_training_rules_agree(mixed_baseline, values):
    for column in mixed_baseline.features:
        expected, expected_missing, _ = column.count(values)
        one, batch = Monitor(mixed_baseline), Monitor(mixed_baseline)
        compiled = Monitor(mixed_baseline, routes=["/r"])  # the generated single-record code
        count = compiled.compile_counter([(compiled.column_index("feature", column.name), "k")])
        for v in values:
            one.observe({column.name: v})
            compiled.record_compiled(0, [(count, {"k": v})])
        batch.observe_batch({column.name: values})
        for monitor in (one, batch, compiled):
            counts, missing = monitor.counts()[("feature", column.name)]
            assert counts.tolist() == expected.tolist()
            assert missing == expected_missing


def test_numeric_counts_match_numpy_on_the_baseline_edges(rng, mixed_baseline):
    column = mixed_baseline.feature("income")
    values = rng.lognormal(13.2, 1.1, 5000)
    monitor = Monitor(mixed_baseline)
    monitor.observe_batch({"income": values.tolist()})
    for v in values[:300]:
        monitor.observe({"income": float(v)})
    all_values = np.concatenate([values, values[:300]])
    # independent: bin i holds edges[i-1] < v <= edges[i]
    bounds = np.concatenate(([-np.inf], column.edges, [np.inf]))
    expected = [
        np.sum((all_values > lo) & (all_values <= hi)) for lo, hi in zip(bounds[:-1], bounds[1:])
    ]
    counts, missing = monitor.counts()[("feature", "income")]
    assert counts.tolist() == expected and missing == 0


def test_concurrent_threads_lose_nothing(mixed_baseline):
    monitor = Monitor(mixed_baseline)
    per_thread = 2000

    def work():
        for i in range(per_thread):
            monitor.observe({"age": 0.01, "region": "eu"}, 100.0)
            if i % 100 == 0:
                monitor.observe_batch({"age": [0.0] * 50})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = monitor.counts()
    assert counts[("feature", "age")][0].sum() == 8 * (per_thread + 20 * 50)
    assert counts[("feature", "region")][0].sum() == 8 * per_thread
    assert counts[("output", "prediction")][0].sum() == 8 * per_thread


def test_memory_and_series_are_fixed_by_the_baseline(mixed_baseline):
    monitor = Monitor(mixed_baseline)
    before = monitor.render()[0].count(b"\n")
    size = monitor.snapshot().nbytes
    monitor.observe_batch({"region": [f"city-{i}" for i in range(100_000)]})
    for i in range(1000):
        monitor.observe({"region": f"town-{i}", "age": float(i)})
    body = monitor.render()[0]
    assert body.count(b"\n") == before
    assert monitor.snapshot().nbytes == size
    assert b"city-" not in body and b"town-" not in body
    other = [
        ln
        for ln in body.decode().splitlines()
        if ln.startswith("boxkite_feature_category_total")
        and "__other__" in ln
        and 'feature="region"' in ln
    ]
    assert other[0].endswith(" 101000.0")


def test_separate_monitors_keep_separate_counts(mixed_baseline):
    a, b = Monitor(mixed_baseline), Monitor(mixed_baseline)
    a.observe({"age": 0.0})
    assert a.counts()[("feature", "age")][0].sum() == 1
    assert b.counts()[("feature", "age")][0].sum() == 0


def test_unknown_names_are_a_programming_error(mixed_baseline):
    monitor = Monitor(mixed_baseline)
    try:
        monitor.observe({"nope": 1})
    except ValueError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("unknown feature accepted")


def test_training_counts_equal_serving_counts_for_the_training_data(rng):
    x = {"a": rng.normal(size=777), "b": rng.choice(["x", "y"], 777)}
    baseline = Baseline.from_training(x)
    monitor = Monitor(baseline)
    monitor.observe_batch({"a": x["a"].tolist(), "b": x["b"].tolist()})
    for column in baseline.features:
        counts, missing = monitor.counts()[("feature", column.name)]
        assert counts.tolist() == column.counts.tolist() and missing == column.missing
    assert all(not r.drifted and r.psi < 1e-9 for r in monitor.drift())
