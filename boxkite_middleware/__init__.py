"""Model and data drift monitoring as one line of WSGI or ASGI middleware.

The public API is what this module exports (and the ``boxkite-middleware`` command);
the metric names are in :mod:`.schema`, the rules and dashboard generators in
:mod:`.rules` and :mod:`.dashboard`. Everything else is internal and may change.

Layout, one concern per module:

- the contract: ``schema`` (families, labels, reasons, presets);
- training time: ``baseline``, ``binning`` (what a value, a missing value and a
  category are), ``quality`` (model quality from ground truth), ``datafile``;
- the request flow: ``config``, ``jsonpath``, ``extract``, ``v2binary``,
  ``observing`` (which requests, and observing them), ``counting``, ``multiprocess``,
  ``monitor`` (the one framework-free core);
- the scrape flow: ``exposition``, ``scraping`` (``/metrics`` and its port),
  ``metrics_auth``;
- the adapters: ``wsgi``, ``asgi``, and ``mount`` (what both build);
- reading counts back and comparing: ``drift``, ``readback``, ``html_report``,
  ``cardinality``; Prometheus and Grafana: ``rules``, ``dashboard``;
- the rest: ``boxkite_compat`` (Boxkite's ModelMonitoringService), ``cli``, ``demo``.
"""

from .asgi import BoxkiteASGIMiddleware
from .baseline import Baseline, BaselineError, Column
from .boxkite_compat import ModelMonitoringService
from .config import Config, ConfigError, RouteConfig, load_config
from .drift import DriftReport, DriftRow, DriftThresholds
from .monitor import Monitor
from .quality import QualityReport, QualityRow
from .wsgi import BoxkiteWSGIMiddleware

__all__ = [
    "Baseline",
    "BaselineError",
    "BoxkiteASGIMiddleware",
    "BoxkiteWSGIMiddleware",
    "Column",
    "Config",
    "ConfigError",
    "DriftReport",
    "DriftRow",
    "DriftThresholds",
    "ModelMonitoringService",
    "Monitor",
    "QualityReport",
    "QualityRow",
    "RouteConfig",
    "load_config",
]
__version__ = "0.1.0"
