import gzip

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from boxkite_middleware import Baseline, Monitor
from boxkite_middleware.schema import Reason

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _awkward_baseline() -> Baseline:
    rng = np.random.default_rng(3)
    n = 400
    return Baseline.from_training(
        {
            "neg": -rng.exponential(1e7, n),  # negative first bucket, Go-style exponents
            "tiny": rng.uniform(1e-9, 1e-7, n),
            'quote"back\\slash\nnewline': rng.normal(size=n),
            "city": rng.choice(['a "b"', "c\\d", "e\nf", "plain"], n),
        },
        rng.normal(size=n),
    )


AWKWARD = _awkward_baseline()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e9, 1e9), st.sampled_from(['a "b"', "c\\d", "zz", "e\nf"])),
        max_size=30,
    )
)
def test_fast_render_is_byte_identical_to_prometheus_client(rows):
    monitor = Monitor(AWKWARD, model='m"odel', routes=["/predict", "/v1/{name}:predict"])
    for value, city in rows:
        monitor.observe({"neg": value * 1e3, "tiny": value, "city": city}, value)
        monitor.count_error(1, Reason.INVALID_JSON)
    assert monitor.render()[0] == generate_latest(monitor.registry)
    assert monitor.render(OPENMETRICS)[0] == openmetrics_latest(monitor.registry)


def test_every_bin_and_category_is_preset_and_count_sum_are_always_there():
    monitor = Monitor(AWKWARD, routes=["/predict"])
    families = {f.name: f for f in text_string_to_metric_families(monitor.render()[0].decode())}
    neg = [s for s in families["boxkite_feature_value"].samples if s.labels["feature"] == "neg"]
    buckets = [s for s in neg if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets] == list(AWKWARD.feature("neg").le)
    assert float(buckets[0].labels["le"]) < 0
    assert {s.name for s in neg} == {
        "boxkite_feature_value_bucket",
        "boxkite_feature_value_count",
        "boxkite_feature_value_sum",
    }
    assert all(s.value == 0 for s in neg)
    cats = {s.labels["category"] for s in families["boxkite_feature_category"].samples}
    assert cats == set(AWKWARD.feature("city").categories)
    reasons = {s.labels["reason"] for s in families["boxkite_observation_errors"].samples}
    assert "invalid_json" in reasons and "body_too_large" in reasons
    base = [
        s
        for s in families["boxkite_baseline_feature_value"].samples
        if s.labels["feature"] == "neg" and s.name.endswith("_count")
    ]
    assert base[0].value == AWKWARD.feature("neg").n


def test_rendered_runtime_histogram_equals_numpy_counts(rng):
    monitor = Monitor(AWKWARD)
    values = -rng.exponential(1.3e7, 999)
    monitor.observe_batch({"neg": values.tolist()})
    # prometheus_client's OpenMetrics parser rejects a negative _sum (OpenMetrics 1.0 wanted
    # it omitted; Prometheus, the Go and Java clients and OpenMetrics 2.0 keep it).
    text = monitor.render()[0].decode()
    family = next(
        f for f in text_string_to_metric_families(text) if f.name == "boxkite_feature_value"
    )
    samples = [s for s in family.samples if s.labels["feature"] == "neg"]
    edges = AWKWARD.feature("neg").edges
    cumulative = [np.sum(values <= e) for e in edges] + [len(values)]
    assert [s.value for s in samples if s.name.endswith("_bucket")] == cumulative
    assert next(s.value for s in samples if s.name.endswith("_sum")) == float(np.sum(values))


def test_content_negotiation_gzip_and_name_filter():
    monitor = Monitor(AWKWARD)
    monitor.observe({"tiny": 5e-8})
    plain, headers = monitor.render()
    assert dict(headers)["Content-Type"].startswith("text/plain; version=0.0.4")
    om, headers = monitor.render(OPENMETRICS)
    assert dict(headers)["Content-Type"].startswith("application/openmetrics-text")
    assert om.endswith(b"# EOF\n")
    zipped, headers = monitor.render(None, "gzip, deflate")
    assert dict(headers)["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped) == plain
    only, _ = monitor.render(names=["boxkite_feature_missing_total"])
    names = {f.name for f in text_string_to_metric_families(only.decode())}
    assert names == {"boxkite_feature_missing"}


def test_an_overflowing_sum_leaves_every_later_bucket_finite():
    # _sum may overflow to inf on values near 1e308; that must not poison the cumulative
    # buckets of the columns laid out after it (inf * 0 is NaN).
    monitor = Monitor(AWKWARD, routes=["/predict"])
    for _ in range(3):
        monitor.observe({"neg": 1.7e308, "tiny": 0.5}, 0.5)
    samples = {
        (f.name, s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(monitor.render()[0].decode())
        for s in f.samples
    }
    assert any(v == float("inf") for (_, name, _), v in samples.items() if name.endswith("_sum"))
    buckets = [v for (_, name, _), v in samples.items() if name.endswith("_bucket")]
    assert buckets and all(np.isfinite(v) for v in buckets)


def test_one_path_on_two_routes_is_one_set_of_route_series():
    monitor = Monitor(AWKWARD, routes=["/predict", "/predict"])
    names = [
        (s.name, tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(monitor.render()[0].decode())
        for s in f.samples
    ]
    assert len(names) == len(set(names))
    assert sum(1 for n, _ in names if n == "boxkite_observed_requests_total") == 1
