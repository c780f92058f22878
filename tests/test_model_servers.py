"""The real model servers' suites (tests/model_servers/), each inside its own venv.

KServe, MLServer, MLflow and BentoML cannot share one environment with each other or
with this suite, so tests/model_servers/envs.py makes venvs under .venvs/ and each
suite runs there as a subprocess. Locally a missing venv skips; in CI (CI=true) it fails.
"""

import os
import re
import subprocess

import pytest

from .model_servers.envs import ROOT, SUITES, python_of

INI = os.path.join(ROOT, "tests", "model_servers", "pytest.ini")


@pytest.mark.e2e
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_model_server_suite(suite):
    python = python_of(SUITES[suite])
    if not os.path.exists(python):
        message = f"{python} is missing: run python tests/model_servers/envs.py"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    path = os.path.join("tests", "model_servers", f"test_{suite}.py")
    proc = subprocess.run(
        [python, "-m", "pytest", "-c", INI, path, "-q", "--no-header"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{suite} suite failed:\n{out[-6000:]}"
    summary = re.search(r"(\d+) passed", out)
    assert summary and int(summary.group(1)) > 0, out[-2000:]
    assert not re.search(r"\d+ (failed|error|skipped)", out), out[-2000:]
