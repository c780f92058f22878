"""Requests/s and latency under a real server and a real load generator, bare and instrumented.

    pip install -e ".[bench,examples]" && apt-get install wrk
    python benchmarks/throughput.py [--quick] [--rounds 5] [--duration 5] [--connections 8]
                                    [--pin] [--variants boxkite,...]

The tiny model app of request_overhead.py (one POST of one record of 10 features,
answered with one prediction; the same app, config and baseline builders) is
served over loopback, one process per server:

- FastAPI under uvicorn, one worker (its default event loop and HTTP parser);
- Flask under gunicorn, one gthread worker (``--threads 4``): it keeps connections
  alive as uvicorn does, so both servers answer the same keep-alive load; a sync
  worker closes the connection after every response, and each request would then
  also pay a TCP connect, which the middleware's share would drown in.

Every variant gets its own server, started fresh for every round and stopped right
after (process groups, always), on a free port. Fresh servers sample the process
(memory layout, allocator, hash seed) anew each round instead of carrying one
lucky or unlucky process through every round. The order of the variants rotates
from round to round. Before the timed run each server is checked: the endpoint
answers 200 with the expected prediction, and the body is byte for byte the same
for every variant of the framework; then it is warmed up with a short wrk run. The
timed run must end with no wrk errors (connect, read, write, timeout, status >= 400),
so every response wrk completed was a 2xx. For the boxkite variant, /metrics is read
before and after the timed run (0.2 s after wrk exits); the check is

    0 <= delta(boxkite_observed_requests_total{route="/predict"}) - wrk's responses <= connections

(wrk stops with at most one request in flight per connection; the server may or
may not count those), the prediction histogram's _count moved by the same delta
as the request counter, and boxkite_observation_errors_total stayed 0. Any failed
check stops the script with a non-zero exit.

wrk is closed-loop (-t1 -cN): with one worker saturated, 1/(req/s) is the
server's time per request, so the "added" column (1/rps - 1/rps_bare) is the
instrumentation's cost per request as seen through a real server. The table gives
medians over rounds; the ratio column is median req/s over the bare app's. wrk
and the server share the machine: --pin puts them on separate CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANT_ENV = "BOXKITE_BENCH_VARIANT"
CONFIG_ENV = "BOXKITE_BENCH_CONFIG"
GUNICORN_THREADS = 4
PIN: dict[str, int] = {}  # --pin: {"server": cpu, "wrk": cpu}

FRAMEWORKS = {
    "fastapi": (
        "FastAPI under uvicorn",
        ["bare", "boxkite", "starlette_exporter", "fastapi-instrumentator"],
    ),
    "flask": ("Flask under gunicorn", ["bare", "boxkite", "prometheus-flask-exporter"]),
}
OPTIONAL = ["minimal tap"]  # request_overhead.py's floor: only with --variants
PEERS = {  # the peers come with the [bench] extra; a variant whose module is missing is left out
    "starlette_exporter": "starlette_exporter",
    "fastapi-instrumentator": "prometheus_fastapi_instrumentator",
    "prometheus-flask-exporter": "prometheus_flask_exporter",
}

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d %.1f %.1f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# --- server side: the apps, built by request_overhead.py's builders ----------------------------


def _server_config():
    with open(os.environ[CONFIG_ENV]) as f:
        return json.load(f)


def asgi_app():
    """uvicorn --factory throughput:asgi_app; the variant named in the environment."""
    from request_overhead import asgi_variants, fastapi_app

    return asgi_variants(_server_config(), fastapi_app)[os.environ[VARIANT_ENV]]


def wsgi_app():
    """gunicorn 'throughput:wsgi_app()'; the variant named in the environment."""
    from request_overhead import wsgi_variants

    return wsgi_variants(_server_config())[os.environ[VARIANT_ENV]]


# --- client side ---------------------------------------------------------------------------------


@dataclass
class Run:
    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    counted: int | None = None  # boxkite variant: delta of its request counter

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def ok(self) -> int:
        """Responses below 400 (wrk counts every status >= 400 as a status error)."""
        return self.requests - self.errors["status"]


def _pinned(role: str):
    """preexec_fn that pins the child to its CPU (only with --pin)."""
    if role not in PIN:
        return None
    return lambda: os.sched_setaffinity(0, {PIN[role]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(framework: str, port: int) -> list[str]:
    if framework == "fastapi":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "throughput:asgi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "1",
        "-k",
        "gthread",
        "--threads",
        str(GUNICORN_THREADS),
        "--log-level",
        "warning",
        "throughput:wsgi_app()",
    ]


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def server(framework: str, variant: str, config_path: Path, log_path: Path):
    """A fresh server for one variant; always stopped (its whole process group) on exit."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env[VARIANT_ENV], env[CONFIG_ENV] = variant, str(config_path)
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            server_command(framework, port),
            env=env,
            cwd=str(HERE),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_pinned("server"),
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{framework}/{variant} server exited with {proc.returncode}:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                request(port, "GET", "/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{framework}/{variant} did not come up in 30 s") from None
                time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk(port: int, script: Path, connections: int, seconds: int) -> Run:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/predict",
    ]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=seconds + 30, preexec_fn=_pinned("wrk")
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    fields = lines[-1].split()[1:]
    n, micros, *errors = (int(x) for x in fields[:7])
    names = ("connect", "read", "write", "status", "timeout")
    return Run(
        n, micros / 1e6, dict(zip(names, errors)), float(fields[7]) / 1e3, float(fields[8]) / 1e3
    )


def boxkite_counts(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = request(port, "GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    counts = {"requests": 0.0, "predictions": 0.0, "errors": 0.0}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == "boxkite_observed_requests_total" and s.labels.get("route") == "/predict":
                counts["requests"] += s.value
            elif s.name == "boxkite_prediction_value_count" and s.labels.get("output") == (
                "prediction"
            ):
                counts["predictions"] += s.value
            elif s.name == "boxkite_observation_errors_total":
                counts["errors"] += s.value
    return counts


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"throughput.py: check failed: {message}")


def run_variant(framework, variant, args, paths, reference: dict) -> Run:
    """Start the variant's server, check it, warm it up, time it, stop it."""
    from request_overhead import RECORD, _score

    label = f"{framework}/{variant}"
    with server(framework, variant, paths["config"], paths["log"]) as port:
        status, body = request(port, "POST", "/predict", RECORD)
        check(status == 200, f"{label}: POST /predict answered {status}: {body[:200]!r}")
        expected = {"result": _score(json.loads(RECORD))}
        check(json.loads(body) == expected, f"{label}: answered {body!r}, expected {expected}")
        reference.setdefault(framework, body)
        check(body == reference[framework], f"{label}: body {body!r} != {reference[framework]!r}")
        if variant == "boxkite":
            counts = boxkite_counts(port)
            check(counts["requests"] == 1, f"{label}: the check request was not counted: {counts}")
        wrk(port, paths["lua"], args.connections, args.warmup)
        if variant == "boxkite":
            time.sleep(0.2)  # the warm-up's last requests in flight finish
            before = boxkite_counts(port)
        run = wrk(port, paths["lua"], args.connections, args.duration)
        bad = {k: v for k, v in run.errors.items() if v}
        check(not bad and run.requests > 0, f"{label}: wrk reported errors {bad} or no requests")
        if variant == "boxkite":
            time.sleep(0.2)
            after = boxkite_counts(port)
            counted = after["requests"] - before["requests"]
            check(
                0 <= counted - run.ok <= args.connections,
                f"{label}: counted {counted:.0f} requests, wrk saw {run.ok} 2xx responses "
                f"(allowed: up to {args.connections} more, the requests in flight at the end)",
            )
            check(
                after["predictions"] - before["predictions"] == counted,
                f"{label}: predictions counted {after['predictions'] - before['predictions']:.0f}"
                f" != requests counted {counted:.0f}",
            )
            check(after["errors"] == 0, f"{label}: observation errors {after['errors']:.0f}")
            run.counted = int(counted)
    return run


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("uvicorn", "gunicorn", "h11", "httptools", "uvloop", "fastapi", "flask"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{name} {version(name)}")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return ", ".join(parts + [" ".join(wrk_version[:2])])


def report(framework: str, runs: dict[str, list[Run]], args) -> None:
    title, _ = FRAMEWORKS[framework]
    server = (
        "1 worker" if framework == "fastapi" else f"1 gthread worker, {GUNICORN_THREADS} threads"
    )
    print(
        f"\n{title} ({server}); wrk -t1 -c{args.connections} -d{args.duration}s; "
        f"medians of {args.rounds} round(s)"
    )
    print(
        f"  {'variant':28} {'req/s':>8} {'min-max':>13} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'ratio to bare':>13} {'added us/req':>12}"
    )
    bare = statistics.median(r.rps for r in runs["bare"])
    for variant, rs in runs.items():
        rps = statistics.median(r.rps for r in rs)
        spread = f"{min(r.rps for r in rs):.0f}-{max(r.rps for r in rs):.0f}"
        p50 = statistics.median(r.p50_ms for r in rs)
        p99 = statistics.median(r.p99_ms for r in rs)
        added = "" if variant == "bare" else f"{(1 / rps - 1 / bare) * 1e6:+.1f}"
        print(
            f"  {variant:28} {rps:8.0f} {spread:>13} {p50:7.2f} {p99:7.2f}"
            f" {rps / bare:13.2f} {added:>12}"
        )


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # so that every `finally` stops its server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke test")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per timed wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--variants",
        help="comma-separated subset (bare is always run); 'minimal tap' is only run when named",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to the first allowed CPU and wrk to the second (needs 2 CPUs)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1, 1
    if not (1 <= args.rounds <= 50 and 1 <= args.duration <= 60 and 1 <= args.warmup <= 10):
        parser.error("bounded runs only: rounds 1..50, duration 1..60 s, warmup 1..10 s")
    if not 1 <= args.connections <= 256:
        parser.error("connections 1..256")
    if shutil.which("wrk") is None:
        sys.exit("throughput.py: wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs two CPUs")
        PIN.update(server=cpus[0], wrk=cpus[1])
    signal.signal(signal.SIGTERM, _terminate)

    from request_overhead import RECORD, _config

    known = {v for _, vs in FRAMEWORKS.values() for v in vs} | set(OPTIONAL)
    wanted = {v.strip() for v in args.variants.split(",")} if args.variants else None
    if wanted and wanted - known:
        parser.error(f"unknown variants {sorted(wanted - known)}; known: {sorted(known)}")
    plan = []
    for framework, (_, variants) in FRAMEWORKS.items():
        chosen = variants if wanted is None else [v for v in variants + OPTIONAL if v in wanted]
        chosen = [v for v in chosen if v != "bare"]
        for v in [v for v in chosen if v in PEERS and importlib.util.find_spec(PEERS[v]) is None]:
            print(f"{framework}/{v}: left out, {PEERS[v]} is not installed ([bench] extra)")
            chosen.remove(v)
        if chosen:  # bare is always run: it is every ratio's reference
            plan += [(framework, v) for v in ["bare"] + chosen]
    if not plan:
        parser.error("nothing to run")

    pinned = f"; server on CPU {PIN['server']}, wrk on CPU {PIN['wrk']}" if PIN else ""
    print(f"throughput: {versions()}; loopback; {os.cpu_count()} CPUs{pinned}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {"config": tmp / "boxkite.json", "log": tmp / "server.log", "lua": tmp / "post.lua"}
        paths["config"].write_text(json.dumps(_config(tmp)))
        body = json.dumps(RECORD.decode())  # a JSON string literal is a valid Lua string literal
        paths["lua"].write_text(WRK_SCRIPT.format(body=body))
        runs: dict[str, dict[str, list[Run]]] = {f: {} for f, _ in plan}
        reference: dict[str, bytes] = {}
        for round_ in range(args.rounds):
            shift = round_ % len(plan)
            for framework, variant in plan[shift:] + plan[:shift]:
                run = run_variant(framework, variant, args, paths, reference)
                runs[framework].setdefault(variant, []).append(run)
                counted = "" if run.counted is None else f", boxkite counted {run.counted}"
                print(
                    f"  round {round_ + 1}: {framework}/{variant}: {run.rps:.0f} req/s, "
                    f"{run.ok} 2xx{counted}",
                    file=sys.stderr,
                )
        for framework in runs:
            order = [v for f, v in plan if f == framework]
            report(framework, {v: runs[framework][v] for v in order}, args)


if __name__ == "__main__":
    main()
