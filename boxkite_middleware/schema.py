"""The Prometheus contract: every family, label and label value that users' rules,
dashboards and readers depend on, written once.

The exposition writes these names, the read-back parses them, and the rules and
dashboard generators query them; none of them spells a family name itself, so a
rename is one edit here (plus regenerating the shipped files).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

PREFIX = "boxkite_"

# Label names.
MODEL = "model"
ROUTE = "route"
REASON = "reason"
CATEGORY = "category"
LE = "le"
BIN = "bin"  # 1-based bin index on baseline buckets: what the rules join on
NEXT = "next"  # the following bin's index, absent on the last bucket

OTHER = "__other__"
"""The category of every value outside the baseline's categories (bounded label values)."""


@dataclass(frozen=True)
class Role:
    """How one kind of column, features or model outputs, is named in the series."""

    role: str  # ``Column.role`` in a baseline
    word: str  # in family names: ``boxkite_<word>_value``
    label: str  # the label naming the column

    def value(self, baseline: bool = False) -> str:
        """Histogram family of the values in the baseline's bins."""
        return f"{_prefix(baseline)}{self.word}_value"

    def category(self, baseline: bool = False) -> str:
        """Per-category family (runtime samples end in ``_total``)."""
        return f"{_prefix(baseline)}{self.word}_category"

    def missing(self, baseline: bool = False) -> str:
        """Missing-value family (runtime samples end in ``_total``)."""
        return f"{_prefix(baseline)}{self.word}_missing"


def _prefix(baseline: bool) -> str:
    return f"{PREFIX}baseline_" if baseline else PREFIX


FEATURES = Role("feature", "feature", "feature")
OUTPUTS = Role("output", "prediction", "output")
ROLES = (FEATURES, OUTPUTS)
ROLE_BY_WORD = {r.word: r for r in ROLES}
ROLE_BY_NAME = {r.role: r for r in ROLES}

# Per-route families (runtime samples end in ``_total``).
OBSERVED_REQUESTS = f"{PREFIX}observed_requests"
OBSERVED_ROWS = f"{PREFIX}observed_rows"
OBSERVATION_ERRORS = f"{PREFIX}observation_errors"
BASELINE_ROWS = f"{PREFIX}baseline_rows"


# Ground truth (feedback routes): label names, then families (counters end in ``_total``).
PREDICTED = "predicted"
ACTUAL = "actual"
PREDICTION_ERROR = f"{PREFIX}prediction_error"  # histogram of prediction - truth
PREDICTION_ABS_ERROR = f"{PREFIX}prediction_abs_error"
PREDICTION_SQUARED_ERROR = f"{PREFIX}prediction_squared_error"
# Sum of max(e, 0): with the |e| sum it gives the bias from counters that only grow
# (the histogram's _sum of signed errors can fall, which rate() takes for a reset).
PREDICTION_OVERESTIMATE = f"{PREFIX}prediction_overestimate"
PREDICTION_OUTCOME = f"{PREFIX}prediction_outcome"  # {predicted, actual}
FEEDBACK_MISSING = f"{PREFIX}feedback_missing"
BASELINE_PREDICTION_ERROR = f"{PREFIX}baseline_prediction_error"
QUALITY_MEASURES = ("mae", "rmse", "bias", "accuracy")
CLASS_MEASURES = ("precision", "recall")  # per class, in the ``category`` label


def baseline_quality(measure: str) -> str:
    """Gauge of the baseline's quality, e.g. ``boxkite_baseline_prediction_mae``."""
    return f"{PREFIX}baseline_prediction_{measure}"


def recorded_quality(measure: str, window: str) -> str:
    """Recorded live quality, e.g. ``boxkite:prediction_mae:1h``."""
    return f"{RECORDED}prediction_{measure}:{window}"


QUALITY_ALERT = "BoxkiteQualityDrop"


class Reason(IntEnum):
    """Values of the ``reason`` label of ``boxkite_observation_errors_total``.

    The integer is the reason's slot among a route's error counters, so counting
    one is an addition, not a look-up.
    """

    BODY_TOO_LARGE = 0  # over max_body_bytes: passed through unread
    CONTENT_TYPE = 1  # not a JSON (or V2 binary) content type
    CONTENT_ENCODING = 2  # a compression not decoded, or over the decompression cap
    INVALID_JSON = 3  # not parseable as JSON (NaN/Infinity literals included)
    INCOMPLETE = 4  # the request body did not arrive whole
    SHAPE = 5  # parsed, but not the structure the route expects
    INTERNAL = 6  # a bug in the middleware: counted, never raised into the app
    UNKNOWN_MODEL = 7  # the path names a model that is not configured (model="__other__")

    @property
    def label(self) -> str:
        return self.name.lower()


REASONS = tuple(Reason)

PRESETS = ("flat", "kserve-v1", "kserve-v2", "mlflow")
"""Request/response layouts the config can name instead of JSONPaths."""

DRIFT_MEASURES = ("psi", "ks", "kl", "js")


RECORDED = "boxkite:"  # recording rules' series: ``boxkite:<what>:<window>``


def recorded_prefix(role: Role, baseline: bool = False) -> str:
    """Start of the recorded series of a role: ``boxkite:feature``, ``boxkite:baseline_feature``."""
    return f"{RECORDED}{'baseline_' if baseline else ''}{role.word}"


def recorded(role: Role, measure: str, window: str) -> str:
    """Name of a recording rule's series, such as ``boxkite:feature_psi:1h``."""
    return f"{recorded_prefix(role)}_{measure}:{window}"


def drift_alert(role: Role) -> str:
    """``BoxkiteFeatureDrift`` or ``BoxkitePredictionDrift``."""
    return f"Boxkite{role.word.capitalize()}Drift"
