import numpy as np
import pytest

from boxkite_middleware import Monitor
from boxkite_middleware.readback import report_from_texts


def test_report_from_metrics_pages_equals_the_offline_report(mixed_baseline):
    rng = np.random.default_rng(8)
    replicas = [Monitor(mixed_baseline, model="m") for _ in range(3)]
    everything = Monitor(mixed_baseline, model="m")
    for i, replica in enumerate(replicas):
        n = 700 + 100 * i
        batch = {
            "age": rng.normal(0.01 * i, 0.05, n).tolist(),
            "income": rng.lognormal(13 + 0.2 * i, 1, n).tolist(),
            "visits": rng.poisson(2, n).tolist(),
            "region": rng.choice(["eu", "us", "mars", None], n).tolist(),
            "member": (rng.random(n) < 0.5).tolist(),
        }
        predictions = rng.normal(150, 50, n).tolist()
        for m in (replica, everything):
            m.observe_batch(batch, predictions)
    report = report_from_texts(r.render()[0].decode() for r in replicas)
    expected = everything.drift()
    assert [r.name for r in report] == [r.name for r in expected]
    for got, want in zip(report, expected):
        assert got.n == want.n and got.drifted == want.drifted, got.name
        for metric in ("psi", "ks", "kl", "js", "missing_share"):
            assert getattr(got, metric) == pytest.approx(getattr(want, metric), abs=1e-12)
    assert report.drifted  # "mars" and None are not baseline regions


def test_report_needs_a_model_when_there_are_several(mixed_baseline):
    texts = [Monitor(mixed_baseline, model=m).render()[0].decode() for m in ("a", "b")]
    with pytest.raises(ValueError, match="several models"):
        report_from_texts(texts)
    assert len(report_from_texts(texts, model="b")) == len(mixed_baseline.columns)
    with pytest.raises(ValueError, match="no boxkite"):
        report_from_texts(["# nothing here\n"])
