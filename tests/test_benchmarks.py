"""Every benchmark still runs (with tiny N); the numbers themselves are not asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require_tool

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))
TOOLS = {"throughput.py": ["wrk"], "fleet.py": ["prometheus", "promtool"]}  # programs it drives


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_runs(script):
    for tool in TOOLS.get(script.name, ()):
        require_tool(tool)  # skipped locally when absent, a failure in CI (.ci/run installs it)
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    # every benchmark prints its same-run reference, as a ratio or side by side
    assert "ratio" in result.stdout or "reference" in result.stdout
