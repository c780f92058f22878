"""Starting and stopping real servers on 127.0.0.1 for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@contextlib.contextmanager
def serve(
    args: list[str], ready_url: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> Iterator[subprocess.Popen]:
    """Run a server command until the block ends; its stderr is kept for diagnostics."""
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_up(ready_url, proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def gunicorn(app: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", *extra, app]


def uvicorn(app: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]


@contextlib.contextmanager
def prometheus(
    targets: list[str], workdir: str, interval: str = "1s", rule_files: list[str] | None = None
) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1 scraping ``targets``; yields its base URL."""
    import yaml

    from .conftest import require_tool

    binary = require_tool("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": rule_files or [],
        "scrape_configs": [{"job_name": "boxkite", "static_configs": [{"targets": targets}]}],
    }
    config_path = os.path.join(workdir, "prometheus.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    args = [
        binary,
        f"--config.file={config_path}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
    ]
    url = f"http://127.0.0.1:{port}"
    with serve(args, f"{url}/-/ready"):
        yield url


def query(base_url: str, promql: str) -> list[dict]:
    response = httpx.get(f"{base_url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def poll(check, timeout: float = 60, interval: float = 0.25):
    """Call ``check`` until it returns a truthy value; returns it, or fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last value: {last!r}")


@contextlib.contextmanager
def fleet(workdir, config: str, rules: str) -> Iterator[tuple[list[str], str]]:
    """Three replicas of the test model app and a real Prometheus evaluating ``rules``:
    two gunicorn servers (two workers each) and one uvicorn server, each with its own
    multi-process directory. Yields (the replicas' base URLs, Prometheus's URL)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    commands = [
        gunicorn("tests.apps.served:flask", ports[0], "-w", "2"),
        gunicorn("tests.apps.served:flask", ports[1], "-w", "2"),
        uvicorn("tests.apps.served:fastapi", ports[2]),
    ]
    with contextlib.ExitStack() as stack:
        for i, (command, url) in enumerate(zip(commands, urls)):
            directory = os.path.join(workdir, f"mp{i}")
            os.mkdir(directory)
            env = {"BOXKITE_CONFIG": config, "PROMETHEUS_MULTIPROC_DIR": directory}
            stack.enter_context(serve(command, f"{url}/metrics", env=env, cwd=root))
        targets = [u.removeprefix("http://") for u in urls]
        prom = stack.enter_context(prometheus(targets, str(workdir), rule_files=[rules]))
        yield urls, prom
