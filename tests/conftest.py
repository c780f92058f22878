import os
import shutil

import numpy as np
import pytest
from hypothesis import settings

from boxkite_middleware import Baseline

# tests/model_servers/ holds suites that run inside the model servers' own venvs;
# tests/test_model_servers.py runs them there.
collect_ignore = ["model_servers"]

# CI replays the same examples every run (a landing must not hinge on a lucky draw);
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def require_tool(name: str) -> str:
    """Path of an external program; skips locally when absent, fails in CI (CI=true)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


@pytest.fixture(scope="session")
def mixed_baseline() -> Baseline:
    """Numeric (negative, large, Poisson), categorical and bool features, one output."""
    rng = np.random.default_rng(7)
    n = 2000
    features = {
        "age": rng.normal(-0.01, 0.05, n),
        "income": rng.lognormal(13, 1, n),  # values >= 1e6: Go-style exponent labels
        "visits": rng.poisson(2, n),
        "region": rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.3, 0.2]),
        "member": rng.random(n) < 0.3,
    }
    return Baseline.from_training(features, rng.normal(150, 40, n))
