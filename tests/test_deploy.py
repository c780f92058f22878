"""The deployment examples: Prometheus configs pass promtool; compose files point at real files."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import require_tool

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "examples" / "deploy"


@pytest.mark.parametrize(
    "config", ["prometheus.yml", "prometheus-kubernetes.yml", "prometheus-local.yml"]
)
def test_prometheus_configs_pass_promtool(tmp_path, config):
    promtool = require_tool("promtool")
    shutil.copy(DEPLOY / config, tmp_path / config)
    shutil.copy(ROOT / "dashboards" / "boxkite-rules.yml", tmp_path / "boxkite-rules.yml")
    if config == "prometheus-local.yml":  # it points into the repository
        tmp_path = DEPLOY

    def check():
        return subprocess.run(
            [promtool, "check", "config", config],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = check()
    if "kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian builds Prometheus without Kubernetes discovery: check everything else
        # (the relabelling and the rules) with the discovery swapped for a static target.
        text = (
            (tmp_path / config)
            .read_text()
            .replace(
                "kubernetes_sd_configs:\n      - role: pod",
                "static_configs:\n      - targets: ['127.0.0.1:8000']",
            )
        )
        (tmp_path / config).write_text(text)
        result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_compose_mounts_and_builds_exist():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), source
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).exists()
    scraped = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = scraped["scrape_configs"][0]["static_configs"][0]["targets"]
    assert {t.split(":")[0] for t in targets} <= set(compose["services"])


def test_kubernetes_pods_carry_the_annotations_the_scrape_config_keeps():
    deployment = yaml.safe_load((DEPLOY / "kubernetes.yaml").read_text())
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    config = (DEPLOY / "prometheus-kubernetes.yml").read_text()
    for key in ("prometheus_io_scrape", "prometheus_io_path", "prometheus_io_port"):
        assert key in config
