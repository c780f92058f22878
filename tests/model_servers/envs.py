"""Create the model servers' virtual environments under .venvs/ (CI runs this).

    python tests/model_servers/envs.py            # every env; quick when already made
    python tests/model_servers/envs.py mlserver   # one env

KServe, MLflow and BentoML resolve together; MLServer pins an older FastAPI/Starlette
and gets its own env. Each env holds the project (editable), pytest, httpx and
scikit-learn. The server versions are pinned to the ones the captured payloads in
captured/ came from; move them together with a new capture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENVS = os.path.join(ROOT, ".venvs")
COMMON = ["pytest>=7.4", "httpx>=0.24", "scikit-learn>=1.3", "PyYAML>=6.0"]
ENVS = {
    "servers": ["kserve==0.21.0", "mlflow==3.17.2", "bentoml==1.4.40"],
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"],
}
# suite (tests/model_servers/test_<suite>.py) -> the env it runs in
SUITES = {"kserve": "servers", "mlflow": "servers", "bentoml": "servers", "mlserver": "mlserver"}


def python_of(env: str) -> str:
    return os.path.join(VENVS, env, "bin", "python")


def _uv() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    try:
        import uv  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=True)
    return [sys.executable, "-m", "uv"]


def create(env: str) -> None:
    wanted = {"root": ROOT, "packages": COMMON + ENVS[env], "python": sys.version}
    stamp = os.path.join(VENVS, env, "boxkite-env.json")
    if os.path.exists(stamp) and os.path.exists(python_of(env)):
        with open(stamp) as f:
            if json.load(f) == wanted:
                print(f"{env}: up to date")
                return
    start = time.monotonic()
    uv = _uv()
    subprocess.run(
        [*uv, "venv", "-q", "--clear", "-p", sys.executable, os.path.join(VENVS, env)], check=True
    )
    subprocess.run(
        [*uv, "pip", "install", "-q", "--python", python_of(env), "-e", ROOT, *wanted["packages"]],
        check=True,
    )
    with open(stamp, "w") as f:
        json.dump(wanted, f)
    print(f"{env}: installed in {time.monotonic() - start:.0f}s")


def main(names: list[str]) -> None:
    for env in names or list(ENVS):
        create(env)


if __name__ == "__main__":
    main(sys.argv[1:])
