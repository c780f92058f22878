"""Model and data drift monitoring as one line of WSGI or ASGI middleware."""

from .baseline import Baseline, BaselineError, Column
from .compat import ModelMonitoringService
from .drift import DriftReport, DriftRow, DriftThresholds
from .monitor import Monitor

__all__ = [
    "Baseline",
    "BaselineError",
    "Column",
    "DriftReport",
    "DriftRow",
    "DriftThresholds",
    "ModelMonitoringService",
    "Monitor",
]
__version__ = "0.1.0"
