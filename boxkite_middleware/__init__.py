"""Model and data drift monitoring as one line of WSGI or ASGI middleware."""

from .asgi import BoxkiteASGIMiddleware
from .baseline import Baseline, BaselineError, Column
from .boxkite_compat import ModelMonitoringService
from .config import Config, ConfigError, RouteConfig, load_config
from .drift import DriftReport, DriftRow, DriftThresholds
from .monitor import Monitor
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
    "RouteConfig",
    "load_config",
]
__version__ = "0.1.0"
