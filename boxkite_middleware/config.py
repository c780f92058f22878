"""The YAML config, validated in full when the middleware is built.

Every mistake a user can make in the file (an unknown key, a feature the
baseline does not have, a path outside the supported subset, a missing
baseline file, paths of one route that fan out unequally) raises one
:class:`ConfigError` naming the file and line, at start-up, never during a
request.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .baseline import Baseline, BaselineError
from .jsonpath import JSONPath, PathError, parse
from .metrics_auth import MetricsAccess
from .schema import OTHER, PRESETS

DEFAULT_MAX_BODY_BYTES = 1 << 20
_TOP_KEYS = ("model", "baseline", "models", "metrics", "max_body_bytes", "routes", "feedback")
_FEEDBACK_KEYS = ("path", "methods", "model", "respond", "predictions", "truth")
_MODEL_KEYS = ("name", "baseline")
_ROUTE_KEYS = (
    "path",
    "methods",
    "model",
    "features",
    "predictions",
    "outputs",
    "preset",
    "input",
    "output",
)
MODEL_SEGMENT = "{model}"  # a route path segment that picks the model by name
_ROUTE_PATH = re.compile(r"^/(?:[^{}]*|\{[A-Za-z_][A-Za-z0-9_]*\})*$")


class ConfigError(ValueError):
    """A config that cannot be used; the message starts with ``file:line:`` for YAML."""


@dataclass(frozen=True)
class RouteConfig:
    """One observed route. ``features``/``predictions`` map names to parsed paths."""

    path: str
    methods: tuple[str, ...] = ("POST",)
    features: dict[str, JSONPath] = field(default_factory=dict)
    predictions: dict[str, JSONPath] = field(default_factory=dict)
    preset: str | None = None
    input: str | None = None
    output: str | None = None
    model: str | None = None  # the one model it serves; None: ``{model}`` in the path picks
    outputs: tuple[str, ...] | None = None  # unnamed output columns, in order
    truth: dict[str, JSONPath] = field(default_factory=dict)  # feedback routes only
    respond: bool = False  # feedback routes: the middleware answers 204 itself


@dataclass(frozen=True)
class Config:
    """A validated config: the baseline is loaded and every path parsed."""

    models: dict[str, Baseline]  # name -> baseline, in config order
    routes: tuple[RouteConfig, ...]
    feedback: tuple[RouteConfig, ...] = ()  # routes that bring ground truth
    metrics_path: str | None = "/metrics"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    source: str | None = None
    metrics_access: MetricsAccess | None = None
    metrics_port: int | None = None  # serve /metrics on this port instead of the app's
    metrics_host: str = "0.0.0.0"
    # Also show the app's own prometheus_client metrics (KServe's, say) on /metrics.
    include_default_registry: bool = True

    @property
    def model(self) -> str:
        """The first (usually the only) model's name."""
        return next(iter(self.models))

    @property
    def baseline(self) -> Baseline:
        """The first (usually the only) model's baseline."""
        return self.models[self.model]


class _Lines(dict):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line = 0
    key_lines: dict[Any, int]


class _LinesList(list):
    line = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Lines:
    mapping = _Lines(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        loader.construct_object(k, deep=True): k.start_mark.line + 1 for k, _ in node.value
    }
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LinesList:
    sequence = _LinesList(loader.construct_sequence(node, deep=True))
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _Reader:
    """Builds errors that point at the file and line of the offending key."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def error(self, where: Any, key: Any, message: str) -> ConfigError:
        line = None
        if isinstance(where, _Lines):
            line = where.key_lines.get(key, where.line)
        elif isinstance(where, _LinesList) and isinstance(key, int) and key < len(where):
            line = where.item_lines[key]
        elif hasattr(where, "line"):
            line = where.line
        if self.source is None:
            return ConfigError(message)
        return ConfigError(f"{self.source}:{line or 1}: {message}")

    def mapping(self, data: Any, where: Any, key: Any, allowed: tuple[str, ...]) -> Mapping:
        if not isinstance(data, Mapping):
            raise self.error(where, key, f"{key!r} must be a mapping")
        for name in data:
            if name not in allowed:
                raise self.error(
                    data, name, f"unknown key {name!r} (expected one of: {', '.join(allowed)})"
                )
        return data


def load_config(config: Config | Mapping[str, Any] | str | os.PathLike[str]) -> Config:
    """A validated :class:`Config` from a YAML path, a dict of the same shape, or a Config.

    Relative paths in a YAML file are relative to that file; in a dict, to the
    working directory.
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return _build(config, _Reader(None), base_dir=os.getcwd())
    path = os.fspath(config)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}:1: the config must be a mapping with 'baseline' and 'routes'")
    return _build(data, _Reader(path), base_dir=os.path.dirname(os.path.abspath(path)))


def _build(data: Mapping[str, Any], reader: _Reader, base_dir: str) -> Config:
    reader.mapping(data, data, "config", _TOP_KEYS)
    if "routes" not in data:
        raise reader.error(data, None, "missing required key 'routes'")
    models = _models(data, reader, base_dir)

    metrics_path, access, port, host = _metrics(data, reader)
    metrics = data.get("metrics")
    include = metrics.get("include_default_registry", True) if metrics else True
    if not isinstance(include, bool):
        raise reader.error(metrics, "include_default_registry", "must be true or false")

    limit = data.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise reader.error(data, "max_body_bytes", "'max_body_bytes' must be a positive integer")

    routes = data["routes"]
    if not isinstance(routes, list) or not routes:
        raise reader.error(data, "routes", "'routes' must be a non-empty list")
    built = tuple(_route(r, routes, i, models, reader) for i, r in enumerate(routes))
    feedback_data = data.get("feedback", [])
    if not isinstance(feedback_data, list):
        raise reader.error(data, "feedback", "'feedback' must be a list of routes")
    feedback = tuple(
        _feedback(r, feedback_data, i, models, reader) for i, r in enumerate(feedback_data)
    )
    seen: set[tuple[str, str]] = set()
    for where, group in ((routes, built), (feedback_data, feedback)):
        for i, route in enumerate(group):
            for method in route.methods:
                if (route.path, method) in seen:
                    raise reader.error(where, i, f"route {method} {route.path} is configured twice")
                seen.add((route.path, method))
            if route.path == metrics_path:
                raise reader.error(where, i, f"route {route.path} is the metrics path")
    return Config(
        models=models,
        routes=built,
        feedback=feedback,
        metrics_path=metrics_path,
        max_body_bytes=limit,
        source=reader.source,
        metrics_access=access,
        metrics_port=port,
        metrics_host=host,
        include_default_registry=include,
    )


def _models(data: Mapping[str, Any], reader: _Reader, base_dir: str) -> dict[str, Baseline]:
    """``model`` + ``baseline``, or a ``models`` list of names and baselines."""
    if "models" not in data:
        if "baseline" not in data:
            raise reader.error(data, None, "missing required key 'baseline' (or 'models')")
        model = data.get("model", "default")
        if not isinstance(model, str) or not model:
            raise reader.error(data, "model", "'model' must be a non-empty string")
        return {model: _baseline(data["baseline"], data, reader, base_dir)}
    for key in ("model", "baseline"):
        if key in data:
            raise reader.error(
                data, key, f"'{key}' goes inside each entry of 'models', not next to it"
            )
    entries = data["models"]
    if not isinstance(entries, list) or not entries:
        raise reader.error(data, "models", "'models' must be a non-empty list of name + baseline")
    models: dict[str, Baseline] = {}
    for i, entry in enumerate(entries):
        reader.mapping(entry, entries, i, _MODEL_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not name or name == OTHER:
            raise reader.error(entry, "name", "each model needs a 'name' (a non-empty string)")
        if name in models:
            raise reader.error(entry, "name", f"model {name!r} is configured twice")
        if "baseline" not in entry:
            raise reader.error(entry, "name", f"model {name!r} needs a 'baseline'")
        models[name] = _baseline(entry["baseline"], entry, reader, base_dir)
    return models


_METRICS_KEYS = (
    "path",
    "port",
    "host",
    "allow",
    "bearer_token_env",
    "basic_auth_env",
    "include_default_registry",
)
_SECRETS = ("token", "bearer_token", "password", "basic_auth", "credentials")


def _metrics(
    data: Mapping, reader: _Reader
) -> tuple[str | None, MetricsAccess | None, int | None, str]:
    """The metrics endpoint: path, access rules, separate port and host."""
    metrics = data.get("metrics")
    if metrics is None:
        return "/metrics", None, None, "0.0.0.0"
    if isinstance(metrics, Mapping):
        for key in metrics:
            if key in _SECRETS:
                raise reader.error(
                    metrics,
                    key,
                    "secrets do not belong in the config file: put the value in "
                    "an environment variable and name it with bearer_token_env or basic_auth_env",
                )
    reader.mapping(metrics, data, "metrics", _METRICS_KEYS)
    path = metrics.get("path", "/metrics")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise reader.error(metrics, "path", "metrics 'path' must start with '/' or be null")
    port = metrics.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
    ):
        raise reader.error(metrics, "port", "metrics 'port' must be a TCP port number")
    host = metrics.get("host", "0.0.0.0")
    if not isinstance(host, str) or not host:
        raise reader.error(metrics, "host", "metrics 'host' must be an address to listen on")
    allow = metrics.get("allow", [])
    if not isinstance(allow, list):
        raise reader.error(metrics, "allow", "metrics 'allow' must be a list of addresses/CIDRs")
    for i, entry in enumerate(allow):
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            where = allow if isinstance(allow, _LinesList) else metrics
            raise reader.error(
                where,
                i if where is allow else "allow",
                f"{entry!r} is not an IP address or network",
            ) from None
    secrets = {}
    for key in ("bearer_token_env", "basic_auth_env"):
        if key not in metrics:
            continue
        name = metrics[key]
        value = os.environ.get(name) if isinstance(name, str) else None
        if not value:
            raise reader.error(metrics, key, f"environment variable {name!r} ({key}) is not set")
        if key == "basic_auth_env" and ":" not in value:
            raise reader.error(metrics, key, f"{name} must hold user:password")
        secrets[key] = value
    access = None
    if allow or secrets:
        access = MetricsAccess.build(
            [str(a) for a in allow], secrets.get("bearer_token_env"), secrets.get("basic_auth_env")
        )
    return path, access, port, host


def _baseline(value: Any, data: Mapping, reader: _Reader, base_dir: str) -> Baseline:
    if isinstance(value, Baseline):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise reader.error(data, "baseline", "'baseline' must be the path of a baseline file")
    path = os.path.join(base_dir, os.fspath(value))
    if not os.path.exists(path):
        raise reader.error(data, "baseline", f"baseline file {path} does not exist")
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        raise reader.error(data, "baseline", str(exc)) from exc


def _path_and_methods(data: Mapping, reader: _Reader) -> tuple[str, tuple[str, ...]]:
    """A route's ``path`` and ``methods`` (default POST), predict or feedback alike."""
    path = data.get("path")
    if not isinstance(path, str) or not _ROUTE_PATH.match(path):
        raise reader.error(
            data,
            "path",
            f"route 'path' {path!r} must start with '/'; '{{name}}' matches one path segment",
        )
    methods = data.get("methods", ["POST"])
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise reader.error(data, "methods", "'methods' must be a list such as [POST]")
    methods = tuple(m.upper() for m in methods)
    if "HEAD" in methods:
        raise reader.error(data, "methods", "HEAD requests carry no body and are not observed")
    return path, methods


def _route(
    data: Any, routes: list, index: int, models: Mapping[str, Baseline], reader: _Reader
) -> RouteConfig:
    reader.mapping(data, routes, index, _ROUTE_KEYS)
    path, methods = _path_and_methods(data, reader)
    model = _route_model(data, path, models, reader)
    served = list(models.values()) if model is None else [models[model]]

    preset = data.get("preset")
    if preset is not None and preset not in PRESETS:
        raise reader.error(
            data, "preset", f"unknown preset {preset!r} (one of: {', '.join(PRESETS)})"
        )
    for option in ("input", "output"):
        if option in data and preset != "kserve-v2":
            raise reader.error(data, option, f"{option!r} is an option of preset kserve-v2")
        if option in data and not isinstance(data[option], str):
            raise reader.error(data, option, f"{option!r} must be a tensor name")
    if preset is not None and "features" in data:
        raise reader.error(data, "features", f"preset {preset} maps the features itself")

    features = _paths(data, "features", served, "feature", reader)
    predictions = _paths(data, "predictions", served, "output", reader)
    outputs = _output_order(data, served, reader)
    if preset is None and not features and not predictions:
        raise reader.error(data, "path", f"route {path} observes nothing: add features or a preset")
    if outputs is not None and (preset is None or predictions):
        raise reader.error(
            data, "outputs", "'outputs' orders a preset's unnamed output columns; paths name them"
        )
    fans = {p.fans_out for p in [*features.values(), *predictions.values()]}
    if len(fans) > 1:
        raise reader.error(
            data,
            "path",
            f"route {path}: every feature and output must fan out alike "
            "(all with one [*], or none)",
        )
    return RouteConfig(
        path=path,
        methods=methods,
        features=features,
        predictions=predictions,
        preset=preset,
        input=data.get("input"),
        output=data.get("output"),
        model=model,
        outputs=outputs,
    )


def _feedback(
    data: Any, routes: list, index: int, models: Mapping[str, Baseline], reader: _Reader
) -> RouteConfig:
    """A feedback route: what the model answered and what was true, per output."""
    reader.mapping(data, routes, index, _FEEDBACK_KEYS)
    path, methods = _path_and_methods(data, reader)
    respond = data.get("respond", False)
    if not isinstance(respond, bool):
        raise reader.error(data, "respond", "'respond' must be true or false")
    model = _route_model(data, path, models, reader)
    served = list(models.values()) if model is None else [models[model]]
    for key in ("predictions", "truth"):
        if key not in data:
            raise reader.error(
                data, "path", f"feedback route {path} needs '{key}' (output -> path)"
            )
    predictions = _paths(data, "predictions", served, "output", reader)
    truth = _paths(data, "truth", served, "output", reader)
    if set(predictions) != set(truth):
        raise reader.error(data, "truth", "'truth' must name the same outputs as 'predictions'")
    for baseline in served:
        for name in predictions:
            column = baseline.output(name)
            if column.kind == "numeric" and column.quality is None:
                raise reader.error(
                    data["predictions"],
                    name,
                    f"output {name!r} is numeric and its baseline has no error bins: rebuild "
                    "it with Baseline.from_training(..., truth=y_true) or the baseline "
                    "command's --truth",
                )
    if len({p.fans_out for p in [*predictions.values(), *truth.values()]}) > 1:
        raise reader.error(data, "path", f"feedback route {path}: every path must fan out alike")
    return RouteConfig(
        path=path,
        methods=methods,
        predictions=predictions,
        truth=truth,
        respond=respond,
        model=model,
    )


def _route_model(
    data: Mapping, path: str, models: Mapping[str, Baseline], reader: _Reader
) -> str | None:
    """The model a route serves, or None when ``{model}`` in its path picks one."""
    named = data.get("model")
    if MODEL_SEGMENT in path:
        if named is not None:
            raise reader.error(
                data, "model", f"route {path} picks its model from the path: drop 'model'"
            )
        return None
    if named is None:
        if len(models) > 1:
            raise reader.error(
                data,
                "path",
                f"route {path}: several models are configured; add 'model: <name>' "
                f"(one of: {', '.join(models)}) or a {MODEL_SEGMENT} path segment",
            )
        return next(iter(models))
    if named not in models:
        raise reader.error(
            data, "model", f"model {named!r} is not configured (one of: {', '.join(models)})"
        )
    return named


def _output_order(data: Mapping, served: list[Baseline], reader: _Reader) -> tuple[str, ...] | None:
    if "outputs" not in data:
        return None
    names = data["outputs"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise reader.error(data, "outputs", "'outputs' must be a list of output names")
    for baseline in served:
        for name in names:
            if name not in baseline.output_names:
                has = ", ".join(baseline.output_names) or "none"
                raise reader.error(
                    data, "outputs", f"output {name!r} is not in the baseline (it has: {has})"
                )
    return tuple(names)


def _paths(
    data: Mapping, key: str, served: list[Baseline], role: str, reader: _Reader
) -> dict[str, JSONPath]:
    if key not in data:
        return {}
    mapping = data[key]
    if not isinstance(mapping, Mapping) or not mapping:
        raise reader.error(data, key, f"{key!r} must map {role} names to paths")
    for baseline in served:
        known = baseline.feature_names if role == "feature" else baseline.output_names
        for name in mapping:
            if name not in known:
                has = ", ".join(known) or "none"
                raise reader.error(
                    mapping, name, f"{role} {name!r} is not in the baseline (it has: {has})"
                )
    parsed = {}
    for name, text in mapping.items():
        try:
            parsed[name] = parse(text)
        except PathError as exc:
            raise reader.error(mapping, name, f"{role} {name!r}: {exc}") from None
    return parsed
