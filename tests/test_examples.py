"""The worked examples, run as their READMEs say: train, serve, load, then look at drift."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from boxkite_middleware.readback import report_from_urls

from .helpers import free_port, gunicorn, serve, uvicorn

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parent.parent / "examples"


def _server(kind: str, port: int) -> list[str]:
    if kind == "flask_app":
        return gunicorn("app:app", port, "-w", "2")
    return uvicorn("app:app", port)


@pytest.mark.parametrize("kind", ["flask_app", "fastapi_app"])
def test_example_flags_the_shifted_features(tmp_path, kind):
    workdir = tmp_path / kind
    shutil.copytree(EXAMPLES / kind, workdir)
    subprocess.run(
        [sys.executable, str(EXAMPLES / "train.py")], cwd=workdir, check=True, capture_output=True
    )
    assert (workdir / "baseline.json").exists() and (workdir / "model.pkl").exists()
    (tmp_path / "mp").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp")}
    with serve(_server(kind, port), f"{url}/metrics", env=env, cwd=str(workdir)):
        normal = subprocess.run(
            [sys.executable, "-c", f"import load; load.send({url!r}, 600, drift=False, seed=1)"],
            cwd=EXAMPLES,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        assert normal.returncode == 0, normal.stderr
        before = report_from_urls([f"{url}/metrics"])
        assert not before.drifted, str(before)
        drifted = subprocess.run(
            [sys.executable, str(EXAMPLES / "load.py"), "--url", url, "--requests", "600"],
            capture_output=True,
            text=True,
        )
        assert drifted.returncode == 0, drifted.stderr
        after = report_from_urls([f"{url}/metrics"])
    assert {"bmi", "bp"} <= {r.name for r in after.drifted}, str(after)
    assert not {"age", "sex", "s1", "s2", "s3"} & {r.name for r in after.drifted}, str(after)
    assert after["bmi"].n == 1800
