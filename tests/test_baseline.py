import math

import numpy as np
import orjson
import pandas as pd
import pytest

from boxkite_middleware import Baseline, BaselineError, Monitor
from boxkite_middleware.schema import OTHER


def test_input_forms_give_the_same_baseline(rng):
    x = rng.normal(size=(500, 3))
    names = ["a", "b", "c"]
    from_array = Baseline.from_training(x, feature_names=names)
    from_dict = Baseline.from_training({n: x[:, i] for i, n in enumerate(names)})
    from_frame = Baseline.from_training(pd.DataFrame(x, columns=names))
    from_pairs = Baseline.from_training(list(zip(names, x.T)))
    for other in (from_dict, from_frame, from_pairs):
        assert other.to_dict()["features"] == from_array.to_dict()["features"]
    with pytest.raises(BaselineError, match="feature_names"):
        Baseline.from_training(x)


def test_quantile_bins_hold_training_mass_and_are_open_ended(rng):
    values = rng.normal(size=10_000)
    column = Baseline.from_training({"x": values}).feature("x")
    assert len(column.edges) == 9
    assert (column.counts > 0).all()
    assert column.le[-1] == "+Inf"
    # deciles: every bin holds about a tenth
    assert np.allclose(column.counts / values.size, 0.1, atol=0.01)
    # the first bin is open below, the last open above
    counts, missing, _ = column.count([-1e300, 1e300])
    assert counts[0] == 1 and counts[-1] == 1 and missing == 0


def test_poisson_feature_has_deduplicated_non_empty_bins(rng):
    values = rng.poisson(0.7, 5000)
    column = Baseline.from_training({"k": values}).feature("k")
    assert np.all(np.diff(column.edges) > 0)
    assert (column.counts > 0).all()
    assert column.counts.sum() == 5000
    expected = [np.sum(values <= e) for e in column.edges]
    assert np.cumsum(column.counts)[:-1].tolist() == expected


def test_constant_feature_keeps_one_edge():
    column = Baseline.from_training({"c": np.full(100, 3.0)}).feature("c")
    assert column.edges.tolist() == [3.0]
    assert column.counts.tolist() == [100, 0]


def test_missing_values_are_never_binned_same_rule_at_serving():
    values = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0, 4.0, 5.0, -2.0, 0.5])
    baseline = Baseline.from_training({"x": values}, bins=4)
    column = baseline.feature("x")
    assert column.missing == 3
    assert column.counts.sum() == 7
    # the serving paths (one row at a time, and a batch) count exactly the same
    for batch in (False, True):
        monitor = Monitor(baseline)
        raw = [float(v) for v in values] + [None]
        if batch:
            monitor.observe_batch({"x": raw})
        else:
            for v in raw:
                monitor.observe({"x": v})
        counts, missing = monitor.counts()[("feature", "x")]
        assert counts.tolist() == column.counts.tolist()
        assert missing == 4  # nan, inf, -inf, None


def test_object_column_with_none_is_numeric():
    baseline = Baseline.from_training({"x": [1, None, 2.5, 3, None, 4]}, bins=2)
    column = baseline.feature("x")
    assert column.kind == "numeric"
    assert column.missing == 2


def test_categorical_inference_and_override(rng):
    n = 300
    baseline = Baseline.from_training(
        {
            "s": rng.choice(["a", "b"], n),
            "flag": rng.random(n) < 0.5,
            "code": rng.integers(0, 3, n),
            "forced": rng.integers(0, 3, n).astype(float),
        },
        categorical=["forced"],
    )
    kinds = {c.name: c.kind for c in baseline.features}
    assert kinds == {
        "s": "categorical",
        "flag": "categorical",
        "code": "numeric",
        "forced": "categorical",
    }
    assert set(baseline.feature("flag").categories) == {"true", "false", OTHER}
    # forced float categories use their shortest form: 1.0 is "1"
    assert set(baseline.feature("forced").categories) == {"0", "1", "2", OTHER}
    counts, _, _ = baseline.feature("forced").count([1, 1.0, "1", True])
    by_name = dict(zip(baseline.feature("forced").categories, counts))
    assert by_name["1"] == 3 and by_name[OTHER] == 1  # True is "true", not "1"


def test_top_categories_and_other():
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None]
    column = Baseline.from_training({"x": values}, max_categories=2).feature("x")
    assert column.categories == ("a", "b", OTHER)
    assert column.counts.tolist() == [5, 4, 6]
    assert column.missing == 1


@pytest.mark.parametrize(
    "values",
    [
        np.linspace(1.0e6, 9.9e9, 1000),  # Boxkite wrote 1009310.07 vs 1.0093100787598317e+06
        np.linspace(1e-9, 5e-7, 1000),
        -np.geomspace(1e3, 1e12, 1000),
        np.array([1009310.0787598317] * 10 + list(range(100))),
    ],
)
def test_edges_round_trip_and_le_labels_match_runtime(tmp_path, values):
    baseline = Baseline.from_training({"x": values})
    path = tmp_path / "baseline.json"
    baseline.save(path)
    loaded = Baseline.load(path)
    assert loaded.feature("x").edges.tolist() == baseline.feature("x").edges.tolist()
    assert loaded.feature("x").le == baseline.feature("x").le
    body, _ = Monitor(loaded).render()
    runtime, trained = set(), set()
    for line in body.decode().splitlines():
        if "_value_bucket{" in line:
            le = line.split('le="')[1].split('"')[0]
            (trained if line.startswith("boxkite_baseline_") else runtime).add(le)
    assert runtime == trained == set(loaded.feature("x").le)


def test_save_writes_versioned_json(tmp_path, mixed_baseline):
    path = tmp_path / "b.json"
    mixed_baseline.save(path)
    data = orjson.loads(path.read_bytes())
    assert data["format"] == "boxkite-middleware/baseline"
    assert data["schema_version"] == 1
    assert [f["name"] for f in data["features"]] == mixed_baseline.feature_names
    assert Baseline.load(path).to_dict() == mixed_baseline.to_dict()


def test_load_errors_are_clear(tmp_path, mixed_baseline):
    with pytest.raises(BaselineError, match="cannot read baseline"):
        Baseline.load(tmp_path / "absent.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(b'{"format": "boxkite-middleware/base')
    with pytest.raises(BaselineError, match="corrupt baseline"):
        Baseline.load(corrupt)
    newer = tmp_path / "newer.json"
    data = mixed_baseline.to_dict()
    data["schema_version"] = 99
    newer.write_bytes(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))
    with pytest.raises(BaselineError, match="newer boxkite-middleware"):
        Baseline.load(newer)
    other = tmp_path / "other.json"
    other.write_bytes(b'{"hello": 1}')
    with pytest.raises(BaselineError, match="not a boxkite-middleware baseline"):
        Baseline.load(other)
    broken = mixed_baseline.to_dict()
    broken["features"][0]["counts"] = [1, 2]
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(broken))
    with pytest.raises(BaselineError, match=str(bad)):
        Baseline.load(bad)


def test_predictions_one_output_or_several(rng):
    x = {"a": rng.normal(size=100)}
    y = rng.normal(size=100)
    one = Baseline.from_training(x, y)
    assert one.output_names == ["prediction"]
    assert math.isclose(one.output("prediction").sum, float(y.sum()))
    several = Baseline.from_training(
        x, {"score": rng.normal(size=100), "label": rng.choice(["y", "n"], 100)}
    )
    assert several.output_names == ["score", "label"]
    assert several.output("label").kind == "categorical"
