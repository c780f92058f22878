"""What both adapters build from a config: the request flow, the scrape flow, and
the metrics port when one is configured. One place, so WSGI and ASGI cannot differ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config, load_config
from .observing import Observer
from .scraping import MetricsEndpoint, app_registry, start_metrics_port


@dataclass
class Mount:
    observer: Observer
    endpoint: MetricsEndpoint
    metrics_path: str | None  # on the app's own port; None when elsewhere or not mounted
    metrics_server: Any  # the separate port's server, if this process bound it


def mount(
    config: Config | Mapping[str, Any] | str | os.PathLike[str],
    multiprocess_dir: str | os.PathLike[str] | None = None,
) -> Mount:
    """Build everything a middleware needs, and start the metrics port if configured."""
    config = load_config(config)
    observer = Observer(config, multiprocess_dir=multiprocess_dir)
    extra = app_registry(multiprocess_dir) if config.include_default_registry else None
    endpoint = MetricsEndpoint(observer.monitor, config.metrics_access, extra)
    if config.metrics_port is None:
        return Mount(observer, endpoint, config.metrics_path, None)
    server = start_metrics_port(
        endpoint, config.metrics_path or "/metrics", config.metrics_host, config.metrics_port
    )
    return Mount(observer, endpoint, None, server)
