import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, ks_2samp

from boxkite_middleware import Baseline, DriftThresholds
from boxkite_middleware.drift import EPSILON, js, kl, ks, psi


def _independent_shares(counts):
    # Written out again, on purpose not via the module under test.
    shares = np.asarray(counts, float) / np.sum(counts)
    shares = np.where(shares < EPSILON, EPSILON, shares)
    return shares / shares.sum()


def test_binned_ks_equals_scipy_when_values_lie_on_edges(rng):
    train = rng.poisson(3, 4000)
    current = rng.poisson(3.6, 3000)
    column = Baseline.from_training({"k": train}, bins=20).feature("k")
    # every value of either sample is an edge or beyond the open ends
    support = set(train) | set(current)
    assert all(v in column.edges or v > column.edges.max() for v in support)
    counts, _, _ = column.count(current)
    expected = ks_2samp(train, current).statistic
    assert ks(column.counts, counts) == pytest.approx(expected, abs=1e-12)


def test_binned_ks_is_a_lower_bound_of_scipy_for_continuous_data(rng):
    train, current = rng.normal(0, 1, 3000), rng.normal(0.3, 1.2, 3000)
    column = Baseline.from_training({"x": train}).feature("x")
    counts, _, _ = column.count(current)
    exact = ks_2samp(train, current).statistic
    binned = ks(column.counts, counts)
    assert 0.5 * exact < binned <= exact + 1e-12


def test_psi_kl_js_against_independent_computation(rng):
    expected = rng.integers(0, 200, 12).astype(float)
    actual = rng.integers(0, 200, 12).astype(float)
    actual[3] = 0  # an empty current bin
    e, a = _independent_shares(expected), _independent_shares(actual)
    assert psi(expected, actual) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert kl(expected, actual) == pytest.approx(entropy(e, a))
    assert js(expected, actual) == pytest.approx(jensenshannon(e, a, base=2))


def test_empty_bins_stay_finite():
    expected = [100, 100, 100, 0]
    actual = [0, 0, 300, 0]
    for metric in (psi, kl, js):
        value = metric(expected, actual)
        assert np.isfinite(value) and value > 0
    assert 0 <= js(expected, actual) <= 1
    assert ks(expected, actual) == pytest.approx(2 / 3)


def test_identical_distributions_give_zero():
    counts = [5, 10, 20, 0, 7]
    assert psi(counts, counts) == pytest.approx(0, abs=1e-12)
    assert kl(counts, counts) == pytest.approx(0, abs=1e-12)
    assert js(counts, counts) == pytest.approx(0, abs=1e-6)
    assert ks(counts, [2 * c for c in counts]) == pytest.approx(0, abs=1e-12)


def test_small_window_psi_bias_matches_the_documented_formula(rng):
    # With no drift at all, PSI over k bins is about (k - 1)(1/n + 1/m).
    train = rng.normal(size=20_000)
    column = Baseline.from_training({"x": train}).feature("x")
    n = 100
    values = [psi(column.counts, column.count(rng.normal(size=n))[0]) for _ in range(300)]
    predicted = (len(column.counts) - 1) * (1 / n + 1 / train.size)
    assert np.mean(values) == pytest.approx(predicted, rel=0.3)


def test_report_flags_only_shifted_columns_above_min_count(rng, mixed_baseline):
    n = 3000
    current = {
        "age": rng.normal(-0.01, 0.05, n),
        "income": rng.lognormal(13.6, 1, n),  # shifted
        "visits": rng.poisson(2, n),
        "region": rng.choice(["eu", "us", "apac"], n, p=[0.2, 0.3, 0.5]),  # shifted
        "member": rng.random(n) < 0.3,
    }
    report = mixed_baseline.drift(current, rng.normal(150, 40, n))
    assert {r.name for r in report.drifted} == {"income", "region"}
    assert report["region"].ks is None and report["income"].ks > 0.1
    assert report["prediction"].role == "output"
    rows = report.to_dicts()
    assert set(rows[0]) == {
        "name",
        "role",
        "kind",
        "n",
        "missing_share",
        "psi",
        "ks",
        "kl",
        "js",
        "drifted",
    }
    table = str(report)
    assert "income" in table and "DRIFT" in table and table.count("\n") == len(report)
    # the same shift in a window below min_count is not flagged
    few = {k: v[:100] for k, v in current.items()}
    small = mixed_baseline.drift(few, thresholds=DriftThresholds(min_count=500))
    assert not small.drifted and small["income"].psi > 0


def test_missing_share_counts_all_rows(mixed_baseline):
    report = mixed_baseline.drift({"age": [0.0, None, float("nan"), 0.01]})
    assert report["age"].n == 2
    assert report["age"].missing_share == 0.5
    assert len(report) == 1
