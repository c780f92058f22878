"""The HTML drift report: what the page says (parsed), and what a real browser shows."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from boxkite_middleware import Baseline, DriftRow, DriftThresholds
from boxkite_middleware.demo import PHASE_FILES
from boxkite_middleware.demo import run as run_demo
from boxkite_middleware.drift import DriftReport
from boxkite_middleware.html_report import drift_order

from .conftest import require_tool
from .helpers import free_port

ROOT = Path(__file__).parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "report-drifted.png"
HOSTILE = "<script>alert('x')</script>\"&amp;"


class _Page(HTMLParser):
    """Per ``details.col`` section: its data attributes and the text of each
    ``data-metric`` element; plus every script's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[dict[str, str]] = []
        self.scripts: list[str] = []
        self._metric: str | None = None
        self._in_script = False
        self._name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "details" and "col" in a.get("class", "").split():
            self.sections.append({f"attr:{k}": v for k, v in a.items()})
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif "data-metric" in a and self.sections:
            self._metric = a["data-metric"]
            self.sections[-1][self._metric] = ""
        elif a.get("class") == "name" and self.sections:
            self._name = True
            self.sections[-1]["name"] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        self._metric = None
        self._name = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._metric:
            self.sections[-1][self._metric] += data
        elif self._name:
            self.sections[-1]["name"] += data


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def table_cells(report: DriftReport) -> dict[str, list[str]]:
    """The text table's cells per name: the reference for the numbers the page shows."""
    lines = str(report).splitlines()[1:]
    return {row.name: line[len(row.name) :].split() for row, line in zip(report, lines)}


@pytest.fixture(scope="module")
def report(mixed_baseline: Baseline) -> DriftReport:
    rng = np.random.default_rng(3)
    n = 1500
    current = {
        "age": rng.normal(-0.01, 0.05, n),
        "income": rng.lognormal(13.6, 1, n),  # shifted
        "visits": [*rng.poisson(2, n - 100), *[None] * 100],  # some missing
        "region": rng.choice(["eu", "us", "apac", "mars"], n, p=[0.2, 0.3, 0.3, 0.2]),
        "member": rng.random(n) < 0.3,
    }
    return mixed_baseline.drift(current, rng.normal(150, 40, n))


def test_a_section_per_column_with_the_tables_numbers(report):
    page = parse(report.to_html())
    assert [s["name"] for s in page.sections] == [r.name for r in drift_order(report)]
    cells = table_cells(report)
    for section in page.sections:
        row = report[section["name"]]
        role, kind, n, missing, psi, ks, kl, js, verdict = cells[row.name]
        assert section["attr:data-role"] == role == row.role
        assert section["n"] == f"{int(n):,}"
        assert section["missing_share"] == missing
        assert [section[m] for m in ("psi", "ks", "kl", "js")] == [psi, ks, kl, js]
        assert section["verdict"] == ("DRIFT" if verdict == "DRIFT" else "ok")
        assert ("attr:open" in section) == row.drifted  # drifted ones start open
    # a categorical column shows its unseen share; "mars" is not a baseline region
    region = next(s for s in page.sections if s["name"] == "region")
    assert region["unseen_share"] == f"{report['region'].unseen_share:.1%}"
    assert 0.15 < report["region"].unseen_share < 0.25
    assert "unseen_share" not in next(s for s in page.sections if s["name"] == "age")


def test_sorted_by_drift_and_a_summary_with_the_thresholds(mixed_baseline, rng):
    n = 800
    current = {
        "age": rng.normal(0.04, 0.05, n),  # strongly shifted
        "income": rng.lognormal(13.3, 1, n),  # mildly shifted
        "visits": rng.poisson(2, n),
    }
    limits = DriftThresholds(psi=0.15, ks=0.08, min_count=300)
    report = mixed_baseline.drift(current, thresholds=limits)
    assert report.thresholds == limits
    names = [s["name"] for s in parse(report.to_html()).sections]
    assert set(names[:2]) == {r.name for r in report.drifted} == {"age", "income"}
    assert names[0] == "age" and report["age"].psi > report["income"].psi
    page = report.to_html()
    assert "2 of 3 columns drifted" in page and "(2 of 3 features, 0 of 0 outputs)" in page
    assert "PSI ≥ 0.15" in page and "KS ≥ 0.08" in page and "at least 300 values" in page


def test_too_few_values_and_no_data_are_said_in_words(mixed_baseline, rng):
    few = mixed_baseline.drift({"income": rng.lognormal(14, 1, 50), "age": [None, None]})
    sections = {s["name"]: s for s in parse(few.to_html()).sections}
    assert sections["income"]["verdict"] == "too few values"
    assert sections["age"]["verdict"] == "no data" and sections["age"]["psi"] == "-"
    assert "No drift in 2 columns" in few.to_html()


def test_links_to_sections_and_an_empty_report(rng):
    n = 600
    baseline = Baseline.from_training({"blood pressure": rng.normal(size=n)})
    page = baseline.drift({"blood pressure": rng.normal(2, 1, n)}).to_html()
    assert '<a href="#feature-blood_pressure">blood pressure</a>' in page
    assert parse(page).sections[0]["attr:id"] == "feature-blood_pressure"
    # rows made by hand (no bins) still render, without a chart
    bare = DriftReport([DriftRow("x", "feature", "numeric", 10, 0.0, 0.1, 0.1, 0.1, 0.1, False)])
    assert parse(bare.to_html()).sections[0]["psi"] == "0.1000"
    assert "<svg" not in bare.to_html()
    empty = DriftReport([]).to_html()
    assert "No drift in 0 columns" in empty and not parse(empty).sections


def test_bins_are_the_baselines_and_to_dicts_keeps_its_keys(report, mixed_baseline):
    for row in report:
        column = (mixed_baseline.feature if row.role == "feature" else mixed_baseline.output)(
            row.name
        )
        bins = row.bins
        assert bins.labels == column.labels and bins.baseline_n == column.n
        assert np.allclose(bins.baseline, column.counts / column.n)
        assert sum(bins.current) == pytest.approx(1.0)
    assert report["visits"].bins.current != report["visits"].bins.baseline
    assert list(report.to_dicts()[0]) == [
        "name",
        "role",
        "kind",
        "n",
        "missing_share",
        "psi",
        "ks",
        "kl",
        "js",
        "drifted",
    ]


def test_hostile_names_and_categories_are_escaped(rng):
    evil_category = '<img src=x onerror="alert(1)">'
    n = 600
    baseline = Baseline.from_training(
        {HOSTILE: rng.normal(size=n), "c": rng.choice(["a", evil_category], n)}
    )
    report = baseline.drift(
        {HOSTILE: rng.normal(1, 1, n), "c": rng.choice(["a", evil_category], n)}
    )
    page = report.to_html(title="<b>title</b>", quality={HOSTILE: {"<i>mae</i>": 1.0}})
    parsed = parse(page)
    assert [s["name"] for s in parsed.sections] == [HOSTILE, "c"]
    assert parsed.sections[0]["attr:data-name"] == HOSTILE
    assert len(parsed.scripts) == 1 and "alert" not in parsed.scripts[0]  # only our script
    for raw in (HOSTILE, evil_category, "<b>title</b>", "<i>mae</i>"):
        assert raw not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_no_network_references_and_an_optional_quality_block(report):
    page = report.to_html()
    assert "://" not in page  # no CDN, no fonts, no images to fetch
    assert 'id="quality"' not in page
    quality = {
        "prediction": {"mae": 12.5, "rmse": 17.25, "n": 400, "baseline": {"mae": 10.0}},
        "label": {
            "accuracy": 0.875,
            "confusion": {"labels": ["no", "yes"], "matrix": [[300, 20], [30, 50]]},
        },
    }
    with_quality = report.to_html(quality=quality)
    block = with_quality[
        with_quality.index('id="quality"') : with_quality.index(
            "</section>", with_quality.index('id="quality"')
        )
    ]
    assert '<td data-quality="mae">12.5</td>' in block and "<td>10</td>" in block
    assert '<td data-quality="accuracy">0.875</td>' in block
    assert "<th>yes</th><td>30</td><td>50</td>" in block
    with pytest.raises(TypeError):
        report.to_html(quality=[1, 2])


def test_report_command_compares_data_files_and_writes_html(tmp_path, mixed_baseline, rng):
    mixed_baseline.save(tmp_path / "baseline.json")
    n = 1200
    current = {
        "age": rng.normal(-0.01, 0.05, n),
        "income": rng.lognormal(13.6, 1, n),
        "region": rng.choice(["eu", "us", "apac", "mars"], n),
        "member": rng.random(n) < 0.3,
    }
    import pandas as pd

    frame = pd.DataFrame(current)
    frame.loc[:9, "age"] = None
    # the counts of a CSV file (text fields) and a JSON Lines file (typed) are summed
    frame.iloc[:500].to_csv(tmp_path / "current.csv", index=False)
    frame.iloc[500:].to_json(tmp_path / "more.jsonl", orient="records", lines=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "boxkite_middleware",
            "report",
            "--baseline",
            "baseline.json",
            "current.csv",
            "more.jsonl",
            "--html",
            "out.html",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr  # drift
    assert "HTML report: out.html" in result.stderr
    expected = mixed_baseline.drift({k: frame[k].to_numpy() for k in current})
    assert table_cells(expected) == {
        line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:] if line.strip()
    }
    sections = parse((tmp_path / "out.html").read_text(encoding="utf-8")).sections
    assert {s["name"] for s in sections} == set(current)
    assert next(s for s in sections if s["name"] == "age")["missing_share"] == "0.8%"


# --- in a real browser: headless Debian Chromium, driven through chromedriver ---

WIDTH = 1200

_SHOWN = """
return Array.from(document.querySelectorAll('details.col')).map(function (d) {
  var out = {name: d.getAttribute('data-name'), open: d.open, hidden: d.hidden};
  d.querySelectorAll('[data-metric]').forEach(function (e) {
    out[e.getAttribute('data-metric')] = e.textContent;
  });
  out.bars = d.querySelectorAll('svg.bars rect').length;
  out.height = d.getBoundingClientRect().height;
  return out;
});
"""


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from .browser import Browser

    with Browser(chromium, chromedriver, free_port(), WIDTH, 1000) as b:
        yield b


@pytest.fixture(scope="module")
def demo_pages(tmp_path_factory) -> tuple[Path, DriftReport]:
    """The demo, run as the README runs it; its drifted phase's page and report."""
    folder = tmp_path_factory.mktemp("demo")
    reports: list[DriftReport] = []

    def keep(report: DriftReport) -> str:
        reports.append(report)
        return str(report)

    assert run_demo(requests=600, out=lambda text: None, render=keep, html_dir=folder) == 0
    return folder / PHASE_FILES[1], reports[1]


@pytest.mark.e2e
def test_console_errors_are_caught(browser, tmp_path):
    # the check the real page must pass can fail: a broken page is noticed
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><title>x</title><script>notAFunction();</script>")
    browser.console()
    browser.open(broken)
    assert any(e["level"] == "SEVERE" for e in browser.console())


@pytest.mark.e2e
def test_the_demos_drifted_report_in_a_browser(browser, demo_pages, tmp_path):
    from PIL import Image

    path, report = demo_pages
    browser.console()  # drop what earlier pages logged
    browser.open(path)
    assert browser.console() == []  # no errors, no warnings
    # nothing was fetched: every byte is in the file (and the page is offline)
    assert browser.run("return performance.getEntriesByType('resource').length") == 0
    shown = browser.run(_SHOWN)
    assert [s["name"] for s in shown] == [r.name for r in drift_order(report)]
    assert {s["name"] for s in shown} == {r.name for r in report}
    cells = table_cells(report)
    for s in shown:
        row = report[s["name"]]
        n, missing, psi, ks, kl, js, verdict = cells[row.name][2:]
        assert s["n"] == f"{int(n):,}" and s["missing_share"] == missing
        assert [s["psi"], s["ks"], s["kl"], s["js"]] == [psi, ks, kl, js]
        assert s["verdict"] == verdict == ("DRIFT" if row.drifted else "ok")
        assert s["bars"] == 2 * len(row.bins.labels)  # baseline and current per bin
        assert s["open"] == row.drifted and (s["height"] > 150) == row.drifted  # drawn
    assert {s["name"] for s in shown if s["verdict"] == "DRIFT"} >= {"bmi", "bp"}

    # the screenshot the README shows: the whole page, made by this browser
    height = browser.run("return document.documentElement.scrollHeight")
    browser.cdp(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    png = browser.screenshot()
    browser.cdp("Emulation.clearDeviceMetricsOverride", {})
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (WIDTH, height) and height > 1000
    small = image.resize((WIDTH // 4, height // 4))
    colours = {c for _, c in small.getcolors(maxcolors=1 << 20)}
    assert len(colours) > 50  # text, bars, badges: not a blank page

    def near(rgb: tuple[int, int, int]) -> bool:
        return any(sum(abs(a - b) for a, b in zip(c, rgb)) < 30 for c in colours)

    # the drift badge, the current bars and the baseline bars were painted
    assert near((0xB3, 0x26, 0x1E)) and near((0x1C, 0x5F, 0xB8)) and near((0xAA, 0xB4, 0xBF))
    # The README's copy is refreshed on request (BOXKITE_SCREENSHOT=1 pytest ...), so an
    # ordinary run leaves the work tree as it found it.
    target = SCREENSHOT if os.environ.get("BOXKITE_SCREENSHOT") else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)


@pytest.mark.e2e
def test_search_sort_and_print_in_a_browser(browser, demo_pages, tmp_path):
    path, report = demo_pages
    browser.open(path)
    visible = (
        "return Array.from(document.querySelectorAll('details.col'))"
        ".filter(function (d) { return !d.hidden; }).map(function (d) { return d.dataset.name; });"
    )
    browser.run(
        "var s = document.getElementById('search'); s.value = 'S'; "
        "s.dispatchEvent(new Event('input'));"
    )
    expected = [r.name for r in drift_order(report) if "s" in r.name.lower()]
    assert browser.run(visible) == expected and len(expected) < len(report)
    assert browser.run("return document.getElementById('shown').textContent") == (
        f"{len(expected)} of {len(report)} shown"
    )
    browser.run(
        "var s = document.getElementById('search'); s.value = ''; "
        "s.dispatchEvent(new Event('input'));"
    )
    browser.run("document.getElementById('only-drift').click();")
    assert browser.run(visible) == [r.name for r in drift_order(report) if r.drifted]
    browser.run("document.getElementById('only-drift').click();")
    assert len(browser.run(visible)) == len(report)
    browser.run("document.querySelector('button[data-sort=name]').click();")
    assert browser.run(visible) == sorted((r.name for r in report), key=str.lower)
    browser.run("document.querySelector('button[data-sort=psi]').click();")
    by_psi = sorted(report, key=lambda r: -r.psi)
    assert browser.run(visible) == [r.name for r in by_psi]
    # printing opens every section and hides the controls
    browser.run("window.dispatchEvent(new Event('beforeprint'));")
    opened = "return Array.from(document.querySelectorAll('details.col')).map(d => d.open);"
    assert all(browser.run(opened))
    browser.run("window.dispatchEvent(new Event('afterprint'));")  # back as it was
    assert sum(browser.run(opened)) == len(report.drifted) < len(report)
    browser.cdp("Emulation.setEmulatedMedia", {"media": "print"})
    hidden = "return getComputedStyle(document.querySelector('.controls')).display;"
    assert browser.run(hidden) == "none"
    browser.cdp("Emulation.setEmulatedMedia", {"media": ""})
    assert browser.run(hidden) != "none"

    # printed (PDF), every section is open: more pages than the same page without its script
    def pages() -> int:
        pdf = base64.b64decode(browser.cdp("Page.printToPDF", {})["data"])
        assert pdf.startswith(b"%PDF")
        return max(int(c) for c in re.findall(rb"/Count (\d+)", pdf))

    printed = pages()
    static = tmp_path / "no-script.html"
    static.write_text(re.sub(r"<script>.*</script>", "", path.read_text(), flags=re.S))
    browser.open(static)
    assert printed > pages() >= 1
    assert browser.console() == []
