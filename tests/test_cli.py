"""The command line, run as users run it: subprocesses, exit codes, output, files."""

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boxkite_middleware import Baseline
from boxkite_middleware.dashboard import dashboard_json
from boxkite_middleware.rules import rules_yaml

from .helpers import free_port, gunicorn, serve
from .middleware_setup import make_baseline, write_config

ROOT = Path(__file__).parent.parent


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "boxkite_middleware", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "command", ["", "baseline", "check", "report", "demo", "rules", "dashboard"]
)
def test_help_everywhere(command):
    result = cli(*([command] if command else []), "--help")
    assert result.returncode == 0 and "usage: boxkite-middleware" in result.stdout


def _training_csv(path: Path, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "income": rng.lognormal(11, 1, n),
            "region": rng.choice(["eu", "us", "apac"], n),
            "member": rng.choice([True, False], n),
            "visits": rng.poisson(2, n),
            "score": rng.normal(size=n),
        }
    )
    frame.loc[::40, "income"] = np.nan
    frame.to_csv(path, index=False)
    return frame


def test_baseline_from_csv_matches_the_python_api(tmp_path):
    frame = _training_csv(tmp_path / "train.csv")
    result = cli(
        "baseline",
        "train.csv",
        "--prediction",
        "score",
        "-o",
        "b.json",
        "--categorical",
        "visits",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "3,000 rows, 5 features, 1 outputs" in result.stdout
    assert "region" in result.stdout and "categorical" in result.stdout
    assert result.stderr == ""  # no progress bar when not on a terminal
    built = Baseline.load(tmp_path / "b.json")
    expected = Baseline.from_training(
        frame.drop(columns="score"), {"score": frame["score"]}, categorical=["visits"]
    )
    assert built.to_dict()["features"] == expected.to_dict()["features"]
    assert built.to_dict()["outputs"] == expected.to_dict()["outputs"]


def test_baseline_from_json_lines_and_in_small_chunks(tmp_path):
    rng = np.random.default_rng(5)
    rows = [
        {"x": float(v), "c": str(c), "y": float(v) * 2}
        for v, c in zip(rng.normal(size=500), rng.choice(["a", "b"], 500))
    ]
    rows[7]["x"] = None
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from boxkite_middleware.datafile import build_baseline

    chunked = build_baseline(str(tmp_path / "t.jsonl"), predictions=["y"], chunk_rows=37)
    whole = Baseline.from_training(
        {k: [r[k] for r in rows] for k in ("x", "c")}, {"y": [r["y"] for r in rows]}
    )
    got, want = chunked.to_dict()["features"], whole.to_dict()["features"]
    assert got[0].pop("sum") == pytest.approx(want[0].pop("sum"))  # summed chunk by chunk
    assert got == want
    result = cli("baseline", "t.jsonl", "--prediction", "y", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "baseline.json").exists()


def test_baseline_errors_are_one_line_naming_the_file_and_what_to_do(tmp_path):
    _training_csv(tmp_path / "train.csv", n=50)
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\xff\xfe")
    (tmp_path / "array.json").write_text('[{"a": 1},\n{"a": 2}]\n')
    for args, message in (
        (["absent.csv"], "absent.csv: no such file; give a training data file"),
        (["train.csv", "--prediction", "nope"], "train.csv: no column 'nope'"),
        (["train.csv", "--feature", "nope"], "take column names of the file"),
        (["train.csv", "-o", "no/such/dir/b.json"], "no/such/dir/b.json: cannot write"),
        (["binary.csv"], "binary.csv: not UTF-8 text"),
        (["array.json"], "array.json:1: not JSON Lines"),
        ([str(tmp_path)], "is a directory"),
    ):
        result = cli("baseline", *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("boxkite-middleware: "), result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_baseline_refuses_nonsense_bin_counts_as_usage_errors(tmp_path):
    _training_csv(tmp_path / "train.csv", n=50)
    for args in (["--bins", "1"], ["--bins", "ten"], ["--max-categories", "0"]):
        result = cli("baseline", "train.csv", *args, cwd=tmp_path)
        assert result.returncode == 2 and "usage:" in result.stderr, result.stderr
        assert not (tmp_path / "baseline.json").exists()


def test_version():
    from boxkite_middleware import __version__

    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"boxkite-middleware {__version__}\n"


def _on_a_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal (stdout piped): code, stdout, stderr."""
    import os
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "boxkite_middleware", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    terminal = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        terminal += data
    os.close(leader)
    stdout = process.communicate(timeout=120)[0]
    return process.returncode, stdout.decode(), terminal.decode()


def test_baseline_shows_progress_on_a_terminal_only(tmp_path):
    rng = np.random.default_rng(3)
    with open(tmp_path / "large.csv", "w") as f:  # three chunks of 100,000 rows
        f.write("x,y\n")
        f.writelines(f"{v:.4f},{v * 2:.4f}\n" for v in rng.normal(size=250_000))
    code, stdout, terminal = _on_a_terminal(
        "baseline", "large.csv", "--prediction", "y", cwd=tmp_path
    )
    assert code == 0, terminal
    assert "250,000 rows, 1 features, 1 outputs" in stdout
    updates = terminal.split("\r")
    assert any("pass 1/2, reading: 100,000 rows" in u for u in updates), terminal
    size = (tmp_path / "large.csv").stat().st_size / 1e6
    done = f"pass 2/2, counting: 250,000 rows, 100% of {size:.1f} MB"
    assert any(done in u for u in updates), terminal
    assert all(" s" in u for u in updates if "rows" in u)  # elapsed time
    assert terminal.endswith("\n")  # the line is finished, not left for the shell prompt
    piped = cli("baseline", "large.csv", "--prediction", "y", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stderr == ""  # nothing extra when piped


def test_progress_line_redraws_in_place_at_most_ten_times_a_second(tmp_path):
    import io

    from boxkite_middleware.cli import TerminalProgress

    (tmp_path / "d.csv").write_text("x\n" + "1\n" * 500)
    stream = io.StringIO()
    progress = TerminalProgress(str(tmp_path / "d.csv"), stream)
    for rows in range(1, 1001):  # far faster than the redraw interval
        progress("reading", rows, rows / 1000)
    progress("counting", 1000, 1.0)
    progress.end()
    lines = stream.getvalue().split("\r")[1:]
    assert len(lines) <= 4, lines  # the first, the end of each pass, maybe one between
    assert lines[0].startswith(f"{tmp_path / 'd.csv'}: pass 1/2, reading: 1 rows,   0% of ")
    assert "pass 1/2, reading: 1,000 rows, 100% of 1.0 kB" in lines[-2]
    assert "pass 2/2, counting: 1,000 rows, 100%" in lines[-1] and lines[-1].endswith("\n")
    assert len(lines[-1].rstrip("\n")) >= len(lines[-2])  # padded over the previous line
    with_truth = io.StringIO()  # --truth adds two passes over the file for the quality
    TerminalProgress(str(tmp_path / "d.csv"), with_truth, 4)("quality-counting", 500, 1.0)
    assert "pass 4/4, counting quality: 500 rows, 100%" in with_truth.getvalue()


def test_report_names_a_url_it_cannot_use():
    import http.server
    import threading

    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = cli("report", url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"boxkite-middleware: {url}: cannot read /metrics")
    assert result.stderr.count("\n") == 1

    class NotMetrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<!DOCTYPE html><p>an app, not its /metrics</p>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotMetrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = f"http://127.0.0.1:{server.server_port}/"
        result = cli("report", page)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2
    assert result.stderr == (
        f"boxkite-middleware: {page}: no boxkite_* series; "
        "give the /metrics URL of a server running the middleware\n"
    )


def test_check_reports_routes_errors_and_dry_runs(tmp_path):
    baseline = make_baseline()
    config = write_config(tmp_path, baseline)
    ok = cli("check", config)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "/v2/models/{name}/infer (preset kserve-v2; model" in ok.stdout
    assert "feature age <- $.age" in ok.stdout
    (tmp_path / "req.json").write_text('{"instances": [{"age": 0.1, "region": "eu"}, {"bmi": 2}]}')
    (tmp_path / "resp.json").write_text('{"predictions": [1.5, 2.5]}')
    dry = cli(
        "check",
        config,
        "--route",
        "/batch",
        "--request",
        str(tmp_path / "req.json"),
        "--response",
        str(tmp_path / "resp.json"),
    )
    assert dry.returncode == 0, dry.stderr
    # What the real request flow counted: the bucket each value falls in, by its le.
    age = baseline.feature("age")
    le = age.le[int(np.searchsorted(age.edges, 0.1, side="left"))]
    prediction = baseline.output("prediction")
    les = [prediction.le[int(np.searchsorted(prediction.edges, v))] for v in (1.5, 2.5)]
    assert f"feature age le={le} +1" in dry.stdout
    assert "feature age missing +1" in dry.stdout and "route /batch rows +2" in dry.stdout
    assert "feature region category=eu +1" in dry.stdout
    for label in set(les):
        assert f"output prediction le={label} +{les.count(label)}" in dry.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "baseline: baseline.json\nroutes:\n  - path: /p\n    features:\n      age: $..age\n"
    )
    bad = cli("check", str(broken))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"{broken}:5: ") and "recursive descent" in bad.stderr


def _post_rows(url: str, rows: list[dict]) -> None:
    import httpx

    with httpx.Client(base_url=url) as client:
        for row in rows:
            assert client.post("/predict", json=row).status_code == 200


@pytest.mark.e2e
def test_report_sums_two_live_replicas(tmp_path):
    config = write_config(tmp_path, make_baseline())
    ports = [free_port(), free_port()]
    rng = np.random.default_rng(9)
    env = {"BOXKITE_CONFIG": config}
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with (
        serve(
            gunicorn("tests.apps.served:flask", ports[0]),
            f"{urls[0]}/metrics",
            env=env,
            cwd=str(ROOT),
        ),
        serve(
            gunicorn("tests.apps.served:flask", ports[1]),
            f"{urls[1]}/metrics",
            env=env,
            cwd=str(ROOT),
        ),
    ):
        for url in urls:
            _post_rows(
                url,
                [
                    {"age": float(a), "bmi": float(b), "region": "eu"}
                    for a, b in zip(rng.normal(0, 0.05, 300), rng.normal(0, 0.05, 300))
                ],
            )
        metrics = [f"{u}/metrics" for u in urls]
        page = tmp_path / "calm.html"
        calm = cli("report", *metrics, "--format", "json", "--html", str(page))
        assert calm.returncode == 1  # region is all "eu": a real shift from thirds
        data = json.loads(calm.stdout)  # the HTML note goes to stderr
        assert f"HTML report: {page}" in calm.stderr
        html = page.read_text(encoding="utf-8")
        assert html.count('<details class="col ') == len(data["rows"])
        assert '<details class="col drift" id="feature-region"' in html
        assert data["drifted"] == ["region"]
        rows = {r["name"]: r for r in data["rows"]}
        assert rows["age"]["n"] == 600 and not rows["age"]["drifted"]
        for url in urls:
            _post_rows(
                url,
                [{"age": float(a), "bmi": 0.0, "region": "us"} for a in rng.normal(0.2, 0.05, 300)],
            )
        table = cli("report", *metrics)
        assert table.returncode == 1
        line = next(ln for ln in table.stdout.splitlines() if ln.startswith("age "))
        assert line.endswith("DRIFT") and " 1200 " in line
        relaxed = cli("report", *metrics, "--psi", "100", "--ks", "1.1")
        assert relaxed.returncode == 0 and "DRIFT" not in relaxed.stdout
    gone = cli("report", *metrics)
    assert gone.returncode == 2 and gone.stderr.startswith("boxkite-middleware: ")


@pytest.mark.e2e
def test_demo_runs_end_to_end_and_leaves_nothing_listening(tmp_path):
    result = cli("demo", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Phase 1" in out and "Phase 2" in out
    phase1, phase2 = out.split("Phase 2")
    assert "DRIFT" not in phase1
    drifted = {ln.split()[0] for ln in phase2.splitlines() if ln.endswith("DRIFT")}
    assert {"bmi", "bp"} <= drifted and not {"age", "sex", "s1"} & drifted
    # labels that arrived later: quality holds in phase 1 and drops in phase 2

    def mae(phase: str) -> tuple[float, float]:
        line = next(ln for ln in phase.splitlines() if " mae " in f" {ln} ")
        now, base = line.split()[-2:]
        return float(now), float(base)

    (now1, base1), (now2, base2) = mae(phase1), mae(phase2)
    assert base1 == base2 and now1 < 1.2 * base1 < now2
    # each phase's HTML report is written where the demo says, after its table
    for phase, name in ((phase1, "phase1"), (phase2, "phase2-drifted")):
        path = tmp_path / f"boxkite-demo-{name}.html"
        assert f"HTML report: {path}" in phase and path.stat().st_size > 10_000
    url = next(w for w in out.split() if w.endswith("/metrics"))
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the server is gone


def test_rules_and_dashboard_commands_print_the_shipped_files():
    assert cli("rules").stdout == rules_yaml()
    assert cli("dashboard").stdout == dashboard_json()
    six = cli("rules", "--window", "6h", "--window", "7d").stdout
    assert "sum_over_time(boxkite:feature_bucket:increase1m[5h59m59s999ms])" in six
    assert "record: boxkite:feature_psi:7d" in six and "boxkite:feature_psi:1h" not in six
    assert six == cli("rules", "--window", "6h,7d").stdout
    assert "[1m:30s])) * 30" in cli("rules", "--interval", "30s").stdout
    bad = cli("rules", "--window", "90s")
    assert bad.returncode == 2 and "multiple" in bad.stderr


def test_console_script_is_installed():
    result = subprocess.run(["boxkite-middleware", "--help"], capture_output=True, text=True)
    assert result.returncode == 0


def test_csv_with_ragged_rows(tmp_path):
    with open(tmp_path / "r.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b"])
        writer.writerows([[1, 2], [3], [4, 5, 6], [7, 8]])
    result = cli("baseline", "r.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Baseline.load(tmp_path / "baseline.json").feature("b").missing == 1
