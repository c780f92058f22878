import logging
import multiprocessing
import os
import shutil

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from boxkite_middleware import Baseline, Monitor

from .helpers import free_port, gunicorn, serve

FORK = multiprocessing.get_context("fork")


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    rng = np.random.default_rng(11)
    return Baseline.from_training({"x": rng.normal(size=1000)}, rng.normal(size=1000))


def _child(directory: str, baseline: Baseline, values: list[float]) -> None:
    monitor = Monitor(baseline, multiprocess_dir=directory)
    monitor.observe_batch({"x": values})
    os._exit(0)  # like a killed worker: no clean-up code runs


def _run_children(directory, baseline, batches):
    procs = [FORK.Process(target=_child, args=(str(directory), baseline, b)) for b in batches]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def _total(monitor: Monitor) -> float:
    counts, missing = monitor.counts()[("feature", "x")]
    return counts.sum() + missing


def _store_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".bkc"))


def test_totals_include_exited_processes_and_dead_files_are_folded(tmp_path, baseline):
    parent = Monitor(baseline, multiprocess_dir=tmp_path)
    parent.observe({"x": 0.5})
    _run_children(tmp_path, baseline, [[0.1] * 10, [0.2] * 20, [None] * 5])
    assert len(_store_files(tmp_path)) == 4
    assert _total(parent) == 36
    # the three dead files were folded into one archive
    assert len(_store_files(tmp_path)) == 2
    _run_children(tmp_path, baseline, [[1.0] * 7] * 4)
    assert _total(parent) == 64
    assert _total(parent) == 64  # stable across scrapes
    assert parent.counts()[("feature", "x")][1] == 5  # the Nones stayed missing


def test_many_dead_workers_leave_a_constant_number_of_files(tmp_path, baseline):
    parent = Monitor(baseline, multiprocess_dir=tmp_path)
    for _ in range(4):
        _run_children(tmp_path, baseline, [[0.0]] * 50)
    assert len(_store_files(tmp_path)) == 200  # the parent never counted: no file of its own
    assert _total(parent) == 200
    assert _store_files(tmp_path) == [f"boxkite-{parent.key}-archive.bkc"]


def test_interrupted_merge_is_not_counted_twice(tmp_path, baseline):
    parent = Monitor(baseline, multiprocess_dir=tmp_path)
    _run_children(tmp_path, baseline, [[0.3] * 9])
    dead = [n for n in _store_files(tmp_path) if n != parent.store_file]
    saved = (tmp_path / dead[0]).read_bytes()
    assert _total(parent) == 9
    # as if the scraper died after writing the archive but before deleting the file
    (tmp_path / dead[0]).write_bytes(saved)
    assert _total(parent) == 9
    assert not (tmp_path / dead[0]).exists()


def test_corrupt_or_truncated_files_are_reported_and_skipped(tmp_path, baseline, caplog):
    parent = Monitor(baseline, multiprocess_dir=tmp_path)
    parent.observe({"x": 1.0})
    key = parent.key
    (tmp_path / f"boxkite-{key}-999999-deadbeef.bkc").write_bytes(b"garbage")
    own = tmp_path / parent.store_file
    (tmp_path / f"boxkite-{key}-999998-cafecafe.bkc").write_bytes(own.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="boxkite_middleware"):
        assert _total(parent) == 1
    assert caplog.text.count("corrupt multiprocess file") == 2
    body, _ = parent.render()
    assert b"boxkite_feature_value_count" in body


def test_processes_with_other_layouts_do_not_mix(tmp_path, baseline):
    a = Monitor(baseline, model="a", multiprocess_dir=tmp_path)
    b = Monitor(baseline, model="b", multiprocess_dir=tmp_path)
    a.observe({"x": 1.0})
    assert _total(a) == 1 and _total(b) == 0


def _scrape_total(port: int) -> tuple[float, str]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics")
    families = text_string_to_metric_families(response.text)
    value = next(f for f in families if f.name == "boxkite_feature_value")
    count = next(s.value for s in value.samples if s.name.endswith("_count"))
    return count, response.headers["X-Worker-Pid"]


@pytest.mark.e2e
@pytest.mark.parametrize("preload", [False, True], ids=["app-per-worker", "preload"])
def test_gunicorn_workers_report_exact_totals_across_recycling(tmp_path, baseline, preload):
    baseline_path = tmp_path / "baseline.json"
    baseline.save(baseline_path)
    mp_dir = tmp_path / "mp"
    mp_dir.mkdir()
    port = free_port()
    args = gunicorn(
        "tests.apps.counting_app:app",
        port,
        "-w",
        "3",
        "--max-requests",
        "25",
        "--max-requests-jitter",
        "10",
        *(["--preload"] if preload else []),
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(mp_dir), "BOXKITE_TEST_BASELINE": str(baseline_path)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rng = np.random.default_rng(5)
    values = rng.normal(size=400)
    pids = set()
    with (
        serve(args, f"http://127.0.0.1:{port}/metrics", env=env, cwd=root),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        for i, value in enumerate(values):
            response = client.post("/observe", json={"x": float(value)})
            assert response.status_code == 200
            pids.add(response.headers["X-Worker-Pid"])
            if i % 97 == 0:
                total, pid = _scrape_total(port)
                pids.add(pid)
                assert total == i + 1
        totals = set()
        for _ in range(12):
            total, pid = _scrape_total(port)
            totals.add(total)
            pids.add(pid)
        final = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert totals == {400.0}
    assert len(pids) > 6, "workers were not recycled"
    family = next(
        f for f in text_string_to_metric_families(final) if f.name == "boxkite_feature_value"
    )
    buckets = [s.value for s in family.samples if s.name.endswith("_bucket")]
    edges = baseline.feature("x").edges
    assert buckets == [float(np.sum(values <= e)) for e in edges] + [400.0]
    shutil.rmtree(mp_dir)


def test_corrupt_archive_is_moved_aside_and_scrapes_go_on(tmp_path, baseline, caplog):
    parent = Monitor(baseline, multiprocess_dir=tmp_path)
    _run_children(tmp_path, baseline, [[0.3] * 4])
    assert _total(parent) == 4
    archive = tmp_path / f"boxkite-{parent.key}-archive.bkc"
    archive.write_bytes(archive.read_bytes()[:-3] + b"}{")  # a broken list of names
    _run_children(tmp_path, baseline, [[0.3] * 2])
    with caplog.at_level(logging.WARNING, logger="boxkite_middleware"):
        assert _total(parent) == 6
    archive.write_bytes(b"not an archive")
    with caplog.at_level(logging.ERROR, logger="boxkite_middleware"):
        assert _total(parent) == 0
    assert "corrupt archive" in caplog.text
    assert (tmp_path / f"{archive.name}.corrupt").exists()
