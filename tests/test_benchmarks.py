"""Every benchmark still runs (with tiny N); the numbers themselves are not asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_runs(script):
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    # every benchmark prints its same-run reference, as a ratio or side by side
    assert "ratio" in result.stdout or "reference" in result.stdout
