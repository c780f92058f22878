"""A fleet of replicas, a real Prometheus with a full window of history, and the cost of
the drift rules: the previous one-stage rules next to the shipped two-stage ones.

    python benchmarks/fleet.py [--replicas 10,100] [--features 50] [--quick]

For each number of replicas, in one process and on 127.0.0.1:

- a fleet server answers every replica's ``/metrics`` (``/replica/<i>/metrics``; the
  scrape config names each target ``instance="replica-<i>"``), rendered by the
  package's own :class:`Monitor` from a baseline of ``--features`` features (one in ten
  categorical) and one output. Counters grow as ``rate × time`` per bin, in the shares of
  20,000 rows of partly drifted traffic, so they continue smoothly from the backfill;
- ``--history`` (1h) of those counters at the ``--scrape`` interval (15s), and the
  two-stage rules' stage-1 series over the longest window (24h: what stage 1 would have
  recorded from the same counters), are written as OpenMetrics and turned into blocks with
  ``promtool tsdb create-blocks-from openmetrics``: a full window without waiting for it;
- two Prometheus servers (``/usr/bin/prometheus``), each on its own copy of those blocks,
  scrape the fleet live at the same time (so that whatever else loads the machine
  weighs on both alike): one evaluates the shipped two-stage rules, the other the
  previous one-stage rules, which take ``increase(...[1h])`` over every replica's raw
  series: the same rules with each window's counts read from the raw counters, and
  one window (1h) as they shipped.

Printed per run: head series, samples the recording rules read per evaluation (each
as an instant query with ``stats=all``), the rule groups' evaluation time (median of
``--evaluations`` evaluations, from ``/api/v1/rules``) and its share of the interval,
Prometheus's RSS, and the largest PSI difference from the offline report on the same
counts; then how each grows with the replicas, and an extrapolation to 1,000 replicas
(a straight line through the two largest grid points: said as such).

The rules run every ``--interval`` (1m, as shipped); ``--interval 30s`` halves the wait
but doubles what stage 2 reads per window.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.server
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boxkite_middleware import Baseline  # noqa: E402
from boxkite_middleware.monitor import Monitor  # noqa: E402
from boxkite_middleware.rules import duration_ms, rules, stage1_records  # noqa: E402

ROWS = 20_000  # rows of traffic whose shares the counters follow
RATE = 5.0  # rows per second per replica (times 0.5 .. 1.4 by replica)
UPTIME = 6 * 3600  # the replicas have been up this long before the history starts
STAGE1 = re.compile(r"^sum by \(([^)]*)\) \(irate\((\w+)\[")


# ---------------------------------------------------------------- the fleet's counters


def make_baseline(features: int, seed: int = 0) -> tuple[Baseline, dict, np.ndarray]:
    """A baseline of ``features`` columns (every tenth categorical), and drifted traffic."""
    rng = np.random.default_rng(seed)
    n = 5000
    train, current = {}, {}
    cities = np.array([f"city{i}" for i in range(8)])
    for i in range(features):
        name = f"f{i:03d}"
        if i % 10 == 9:
            p = rng.dirichlet(np.ones(8))
            train[name] = rng.choice(cities, n, p=p)
            current[name] = rng.choice(cities, ROWS, p=np.roll(p, i % 3))
        else:
            train[name] = rng.normal(0, 1, n)
            current[name] = rng.normal(0.5 if i % 2 else 0.0, 1, ROWS)  # odd ones drift
            current[name][rng.random(ROWS) < 0.01] = np.nan
    baseline = Baseline.from_training(train, rng.normal(0, 1, n), bins=10)
    return baseline, current, rng.normal(0.2, 1, ROWS)


class Fleet:
    """Every replica's exposition text, as a function of replica and time."""

    def __init__(self, baseline: Baseline, current: dict, predictions: np.ndarray) -> None:
        monitor = Monitor(baseline, model="fleet", routes=["/predict"])
        monitor.observe_batch(current, predictions)
        self.report = monitor.drift()
        self.lines = monitor.render()[0].decode().rstrip("\n").split("\n")
        # runtime samples: (line index, series, per-row weight, counter?)
        self.runtime: list[tuple[int, str, float, bool]] = []
        for i, line in enumerate(self.lines):
            if line.startswith("#") or line.startswith("boxkite_baseline_"):
                continue
            series, value = line.rsplit(" ", 1)
            self.runtime.append(
                (
                    i,
                    series,
                    float(value) / ROWS,
                    not series.startswith(
                        tuple(
                            f"{n}_sum"
                            for n in ("boxkite_feature_value", "boxkite_prediction_value")
                        )
                    ),
                )
            )
        self.weights = np.array([w for _, _, w, _ in self.runtime])
        self.counter = np.array([c for _, _, _, c in self.runtime])
        self.series_per_replica = sum(1 for ln in self.lines if ln and not ln.startswith("#"))

    @staticmethod
    def rate(replica: int) -> float:
        return RATE * (0.5 + (replica % 10) / 10)

    def values(self, replica: int, t: np.ndarray | float, start: float) -> np.ndarray:
        """Runtime sample values (rows: samples; columns: times)."""
        rows = self.rate(replica) * (np.asarray(t, dtype=float) - start)
        v = np.multiply.outer(self.weights, np.atleast_1d(rows))
        v[self.counter] = np.floor(v[self.counter])
        return v

    def body(self, replica: int, now: float, start: float) -> bytes:
        lines = list(self.lines)
        for (i, series, _, counter), v in zip(self.runtime, self.values(replica, now, start)[:, 0]):
            lines[i] = f"{series} {int(v)}" if counter else f"{series} {float(v)!r}"
        return ("\n".join(lines) + "\n").encode()


def _with_labels(series: str, extra: str) -> str:
    return f"{series[:-1]},{extra}}}" if series.endswith("}") else f"{series}{{{extra}}}"


def write_raw_history(fleet: Fleet, path: Path, replicas: int, times: np.ndarray, start: float):
    """Every replica's runtime series at ``times``, OpenMetrics, one family after another."""
    stamps = [str(int(t)) for t in times]
    classes = {r % 10 for r in range(replicas)}
    per_class = {c: fleet.values(c, times, start) for c in classes}
    order = sorted(range(len(fleet.runtime)), key=lambda k: fleet.runtime[k][1].split("{")[0])
    lines = 0
    with open(path, "w") as f:
        for k in order:
            series, counter = fleet.runtime[k][1], fleet.runtime[k][3]
            texts = {}
            for c, v in per_class.items():
                row = v[k].astype(np.int64).tolist() if counter else v[k].tolist()
                texts[c] = [f"{x} {s}" for x, s in zip(row, stamps)]
            for r in range(replicas):
                prefix = _with_labels(series, f'instance="replica-{r}",job="fleet"') + " "
                f.write(prefix + ("\n" + prefix).join(texts[r % 10]) + "\n")
                lines += len(stamps)
        f.write("# EOF\n")
    return lines


def write_stage1_history(
    fleet: Fleet, path: Path, replicas: int, times: np.ndarray, start: float, interval: str
) -> int:
    """What stage 1 records at ``times``: every counter's gain over one interval, summed
    over the replicas (the same sums the rules take, from the same counters)."""
    record_of = {STAGE1.match(r["expr"]).group(2): r["record"] for r in stage1_records(interval)}
    interval_s = duration_ms(interval) / 1000
    counts = np.bincount([r % 10 for r in range(replicas)], minlength=10)
    total = None
    for c in range(10):
        if counts[c]:
            gain = fleet.values(c, times, start) - fleet.values(c, times - interval_s, start)
            total = gain * counts[c] if total is None else total + gain * counts[c]
    stamps = [str(int(t)) for t in times]
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    for k, (_, series, _, _) in enumerate(fleet.runtime):
        name, _, labels = series.partition("{")
        if name in record_of:
            groups.setdefault(record_of[name], []).append(("{" + labels, total[k]))
    lines = 0
    with open(path, "w") as f:
        for record, members in groups.items():
            for labels, values in members:
                prefix = f"{record}{labels} "
                texts = [f"{int(v)} {s}" for v, s in zip(values, stamps)]
                f.write(prefix + ("\n" + prefix).join(texts) + "\n")
                lines += len(stamps)
        f.write("# EOF\n")
    return lines


class FleetServer:
    """One HTTP server answering ``/replica/<i>/metrics`` for every replica."""

    def __init__(self, fleet: Fleet, start: float) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                match = re.fullmatch(r"/replica/(\d+)/metrics", self.path)
                if not match:
                    self.send_error(404)
                    return
                body = fleet.body(int(match.group(1)), time.time(), start)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.scrapes += 1

            def log_message(self, *args):
                pass

        self.scrapes = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FleetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- the rules, before and after


def one_stage(two_stage: dict, windows: list[str]) -> dict:
    """The previous design: each window's counts by ``increase`` over every replica's raw
    series at every evaluation; everything downstream unchanged; one window."""
    recording, alerts = two_stage["groups"][0]["rules"], two_stage["groups"][1]["rules"]
    stage1 = {}
    for rule in recording:
        match = STAGE1.match(rule["expr"])
        if match:
            stage1[rule["record"]] = match.groups()  # (by, counter)
    others = tuple(f"{sep}{w}" for w in windows[1:] for sep in (":", "increase"))
    window = windows[0]
    out = []
    for rule in recording:
        if rule["record"] in stage1 or rule["record"].endswith(others):
            continue
        expr = rule["expr"]
        windowed = re.fullmatch(r"sum_over_time\(([^\[]+)\[[^\]]+\]\)", expr)
        if windowed:
            by, counter = stage1[windowed.group(1)]
            expr = f"sum by ({by}) (increase({counter}[{window}]))"
        out.append({"record": rule["record"], "expr": expr})
    return {
        "groups": [
            {
                "name": f"boxkite-drift-{window}",
                "interval": two_stage["groups"][0]["interval"],
                "rules": out,
            },
            two_stage["groups"][1] | {"rules": alerts},
        ]
    }


# ---------------------------------------------------------------- Prometheus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _api(base: str, path: str, **params) -> dict:
    query = urllib.parse.urlencode(params)
    return json.loads(_get(f"{base}{path}?{query}"))["data"]


@contextlib.contextmanager
def prometheus(
    workdir: Path, data: Path, port: int, replicas: int, scrape: str, interval: str, rules: Path
):
    config = {
        "global": {"scrape_interval": scrape, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "fleet",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{port}"],
                        "labels": {
                            "__metrics_path__": f"/replica/{r}/metrics",
                            "instance": f"replica-{r}",
                        },
                    }
                    for r in range(replicas)
                ],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    listen = _free_port()
    log = open(workdir / "prometheus.log", "a")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config_path}",
            f"--web.listen-address=127.0.0.1:{listen}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {workdir / 'prometheus.log'}")
            with contextlib.suppress(OSError):
                if _get(f"{base}/-/ready", timeout=2):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("prometheus did not become ready")
            time.sleep(0.5)
        yield base, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _groups(base: str) -> dict[str, tuple[str, float]]:
    out = {}
    for group in _api(base, "/api/v1/rules")["groups"]:
        for rule in group["rules"]:
            if rule.get("health") == "err":
                raise RuntimeError(f"rule {rule['name']}: {rule.get('lastError')}")
        out[group["name"]] = (group["lastEvaluation"], group["evaluationTime"])
    return out


def _wait_evaluations(base: str, count: int, interval_s: float) -> list[float]:
    """Seconds of the next ``count`` rounds of evaluations that start after this call
    (a round: every group evaluated once more; its seconds: their sum)."""
    deadline = time.monotonic() + (count + 2) * interval_s + 120
    last = {name: at for name, (at, _) in _groups(base).items()}
    fresh: dict[str, float] = {}
    rounds: list[float] = []
    while len(rounds) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(rounds)} rule evaluations seen")
        time.sleep(0.5)
        for name, (at, seconds) in _groups(base).items():
            if at != last.get(name):
                last[name], fresh[name] = at, seconds
        if len(fresh) == len(last):
            rounds.append(sum(fresh.values()))
            fresh = {}
    return rounds


def evaluations(base: str, replicas: int, interval_s: float, count: int) -> dict:
    """Rule-group seconds of ``count`` rounds once every replica has been scraped."""
    deadline = time.monotonic() + 180
    while len(_api(base, "/api/v1/query", query="up == 1")["result"]) < replicas:
        if time.monotonic() > deadline:
            raise TimeoutError("not every replica was scraped")
        time.sleep(0.5)
    _wait_evaluations(base, 1, interval_s)  # the first one may have started before that
    seconds = _wait_evaluations(base, count, interval_s)
    slowest = sorted(
        (
            (rule["evaluationTime"], rule["name"])
            for group in _api(base, "/api/v1/rules")["groups"]
            for rule in group["rules"]
        ),
        reverse=True,
    )[:3]
    return {"eval": statistics.median(seconds), "evals": seconds, "slowest": slowest}


def snapshot(base: str, pid: int, rule_set: dict, window: str, fleet: Fleet) -> dict:
    """Samples the recording rules read (each as an instant query with stats), head
    series, RSS, and PSI against the offline report."""
    samples = 0
    for rule in rule_set["groups"][0]["rules"]:
        stats = _api(base, "/api/v1/query", query=rule["expr"], stats="all")["stats"]
        samples += stats["samples"]["totalQueryableSamples"]
    metrics = _get(f"{base}/metrics").decode()
    head = float(re.search(r"^prometheus_tsdb_head_series (\S+)$", metrics, re.M).group(1))
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    psi = {
        r["metric"]["feature"]: float(r["value"][1])
        for r in _api(base, "/api/v1/query", query=f"boxkite:feature_psi:{window}")["result"]
    }
    offline = {r.name: r.psi for r in fleet.report if r.role == "feature"}
    if set(psi) != set(offline):
        raise RuntimeError(f"PSI recorded for {sorted(psi)}, expected {sorted(offline)}")
    gap = max(abs(psi[k] - v) for k, v in offline.items())
    return {"samples": samples, "head": int(head), "rss": rss, "psi_gap": gap}


# ---------------------------------------------------------------- the run


def run_point(args, replicas: int, features: int, workdir: Path) -> dict[str, dict]:
    baseline, current, predictions = make_baseline(features)
    fleet = Fleet(baseline, current, predictions)
    interval_s = duration_ms(args.interval) / 1000
    scrape_s = duration_ms(args.scrape) / 1000
    windows = args.windows.split(",")
    new_rules = rules(windows, interval=args.interval)
    old_rules = one_stage(new_rules, windows)
    point = workdir / f"r{replicas}-f{features}"
    point.mkdir()
    for name, rule_set in (("new", new_rules), ("old", old_rules)):
        (point / f"{name}.yml").write_text(yaml.safe_dump(rule_set, sort_keys=False, width=10_000))

    now = time.time()
    end = math.floor(now / scrape_s) * scrape_s
    start = end - UPTIME - duration_ms(args.history) / 1000
    tick = time.perf_counter()
    raw_times = np.arange(end - duration_ms(args.history) / 1000, end + 1e-9, scrape_s)
    raw_lines = write_raw_history(fleet, point / "raw.om", replicas, raw_times, start)
    longest = max(duration_ms(w) for w in windows) / 1000
    end1 = math.floor(now / interval_s) * interval_s
    stage1_times = np.arange(end1 - longest + interval_s, end1 + 1e-9, interval_s)
    stage1_lines = write_stage1_history(
        fleet, point / "stage1.om", replicas, stage1_times, start, args.interval
    )
    blocks = point / "blocks"
    for name in ("raw.om", "stage1.om"):
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                str(point / name),
                str(blocks),
            ],
            check=True,
            capture_output=True,
        )
        (point / name).unlink()
    backfill = time.perf_counter() - tick
    print(
        f"  {replicas} replicas x {features} features: {fleet.series_per_replica} series per "
        f"replica; backfilled {raw_lines:,} raw samples and {stage1_lines:,} stage-1 samples "
        f"in {backfill:.0f}s",
        flush=True,
    )
    # Both Prometheus servers at once, each on its own copy of the blocks (hard links),
    # scraping the same fleet: they share whatever else loads the machine alike.
    sets = {"new": new_rules, "old": old_rules}
    with FleetServer(fleet, start) as server, contextlib.ExitStack() as stack:
        servers = {}
        for name in sets:
            run = point / name
            run.mkdir()
            subprocess.run(["cp", "-al", str(blocks), str(run / "data")], check=True)
            servers[name] = stack.enter_context(
                prometheus(
                    run,
                    run / "data",
                    server.port,
                    replicas,
                    args.scrape,
                    args.interval,
                    point / f"{name}.yml",
                )
            )
        with concurrent.futures.ThreadPoolExecutor(len(sets)) as pool:
            futures = {
                name: pool.submit(evaluations, base, replicas, interval_s, args.evaluations)
                for name, (base, _) in servers.items()
            }
            results = {name: f.result() for name, f in futures.items()}
        for name, (base, pid) in servers.items():
            results[name] |= snapshot(base, pid, sets[name], windows[0], fleet)
            r = results[name]
            print(
                f"    {name}: evaluations {', '.join(f'{s:.3f}' for s in r['evals'])} s; slowest "
                f"rules {', '.join(f'{n} {t:.3f} s' for t, n in r['slowest'])}",
                flush=True,
            )
    if not args.keep:
        shutil.rmtree(point)
    return results


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="10,100", help="grid, comma-separated (10,100)")
    parser.add_argument("--features", default="50", help="grid, comma-separated (50)")
    parser.add_argument("--history", default="1h", help="raw history backfilled (1h)")
    parser.add_argument("--windows", default="1h,24h", help="windows of the rules (1h,24h)")
    parser.add_argument("--scrape", default="15s", help="scrape interval (15s)")
    parser.add_argument("--interval", default="1m", help="rule evaluation interval (1m)")
    parser.add_argument("--evaluations", type=int, default=2, help="evaluations measured (2)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.features, args.history = "2,4", "3", "2m"
        args.windows, args.scrape, args.interval, args.evaluations = "2m,4m", "2s", "4s", 1
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: apt-get install prometheus)")
    grid = [(int(r), int(f)) for f in args.features.split(",") for r in args.replicas.split(",")]
    interval_s = duration_ms(args.interval) / 1000
    print(
        f"fleet simulation: {args.history} of history at a {args.scrape} scrape, rules every "
        f"{args.interval}; old: one stage, increase over {args.windows.split(',')[0]} of the "
        f"raw series; new: two stages, windows {args.windows}",
        flush=True,
    )
    table = {}
    with tempfile.TemporaryDirectory(prefix="boxkite-fleet-") as tmp:
        workdir = Path(tmp)
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="boxkite-fleet-kept-"))
            print(f"  work directory: {workdir}")
        for replicas, features in grid:
            table[(replicas, features)] = run_point(args, replicas, features, workdir)

    print()
    print(
        "| replicas × features | rules | head series | samples read / evaluation | "
        "rule evaluation | of the interval | Prometheus RSS | max PSI − offline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (replicas, features), results in table.items():
        for name in ("old", "new"):
            r = results[name]
            print(
                f"| {replicas} × {features} | {name} | {r['head']:,} | {r['samples']:,} | "
                f"{r['eval']:.3f} s | {100 * r['eval'] / interval_s:.1f}% | {r['rss']:.0f} MB | "
                f"{r['psi_gap']:.1e} |"
            )
        old, new = results["old"], results["new"]
        print(
            f"| {replicas} × {features} | ratio old/new | | "
            f"{_ratio(old['samples'], new['samples'])} | {_ratio(old['eval'], new['eval'])} | "
            f"| {_ratio(old['rss'], new['rss'])} | |"
        )
    for features in sorted({f for _, f in grid}):
        points = sorted((r, table[(r, f)]) for r, f in grid if f == features)
        if len(points) < 2:
            continue
        (r1, a), (r2, b) = points[-2], points[-1]
        print(f"\ngrowth from {r1} to {r2} replicas ({features} features):")
        for name in ("old", "new"):
            slope = max(0.0, (b[name]["eval"] - a[name]["eval"]) / (r2 - r1))
            at_1000 = b[name]["eval"] + slope * (1000 - r2)
            print(
                f"  {name}: evaluation {_ratio(b[name]['eval'], a[name]['eval'])}, samples read "
                f"{_ratio(b[name]['samples'], a[name]['samples'])}, head series "
                f"{_ratio(b[name]['head'], a[name]['head'])}, RSS "
                f"{_ratio(b[name]['rss'], a[name]['rss'])}; 1,000 replicas (extrapolated, "
                f"linear): {at_1000:.2f} s per evaluation = "
                f"{100 * at_1000 / interval_s:.0f}% of the {args.interval} interval"
            )


if __name__ == "__main__":
    main()
