"""The ``boxkite-middleware`` command (also ``python -m boxkite_middleware``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .baseline import BaselineError
from .config import ConfigError
from .drift import DEFAULT_THRESHOLDS, DriftReport, DriftThresholds

PROG = "boxkite-middleware"


class CommandError(Exception):
    """A failure to report as one line, with a non-zero exit code."""


def _colour(report: DriftReport, enabled: bool) -> str:
    text = str(report)
    if not enabled:
        return text
    lines = text.split("\n")
    body = [
        line[:-5] + "\033[1;31mDRIFT\033[0m"
        if line.endswith("DRIFT")
        else line[:-2] + "\033[32mok\033[0m"
        if line.endswith(" ok")
        else line
        for line in lines[1:]
    ]
    return "\n".join([f"\033[1m{lines[0]}\033[0m", *body])


def _cmd_baseline(args: argparse.Namespace) -> int:
    from .datafile import build_baseline, describe, terminal_progress

    progress = terminal_progress()
    baseline = build_baseline(
        args.data,
        predictions=args.prediction,
        features=args.feature or None,
        categorical=args.categorical,
        bins=args.bins,
        max_categories=args.max_categories,
        progress=progress,
    )
    if progress:
        sys.stderr.write("\n")
    baseline.save(args.output)
    print(
        f"{args.output}: {baseline.rows:,} rows, {len(baseline.features)} features, "
        f"{len(baseline.outputs)} outputs"
    )
    print(describe(baseline))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .cardinality import GUIDANCE_ABOVE, series_per_replica
    from .config import load_config
    from .core import Core

    core = Core(load_config(args.config))
    config = core.config
    series = series_per_replica(config.baseline, [r.path for r in config.routes])
    print(
        f"{args.config}: OK. model {config.model!r}, baseline of "
        f"{len(config.baseline.features)} features and {len(config.baseline.outputs)} outputs"
    )
    print(
        f"metrics at {config.metrics_path or '(not mounted)'}: {series}; "
        f"bodies over {config.max_body_bytes:,} bytes pass through unobserved"
    )
    if series.total > GUIDANCE_ABOVE:
        name, count = series.widest
        print(
            f"  over {GUIDANCE_ABOVE:,} series per replica, times every replica: the widest "
            f"column is {name} ({count} series); see docs/rules-scaling.md for fewer bins, "
            "fewer categories or features, and dropping the baseline series"
        )
    for route in config.routes:
        how = f"preset {route.preset}" if route.preset else "paths"
        print(f"  {' '.join(route.methods)} {route.path} ({how})")
        names = list(route.features) or (config.baseline.feature_names if route.preset else [])
        for name in names:
            path = route.features.get(name)
            print(f"    feature {name}" + (f" <- {path.text}" if path else ""))
        outputs = list(route.predictions) or (config.baseline.output_names if route.preset else [])
        for name in outputs:
            path = route.predictions.get(name)
            print(f"    output  {name}" + (f" <- {path.text}" if path else ""))
    if args.request:
        _dry_run(core, args)
    return 0


def _dry_run(core: Any, args: argparse.Namespace) -> None:
    import orjson

    from .extract import ShapeError

    route = (
        next((r for r in core.routes if r.path == args.route), None)
        if args.route
        else core.routes[0]
    )
    if route is None:
        raise CommandError(f"no route {args.route!r} in the config")
    names = {slots_index: s.column for slots_index, s in enumerate(core.monitor.layout.columns)}

    def parse(path: str) -> Any:
        try:
            with open(path, "rb") as f:
                return orjson.loads(f.read())
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"{path}: not JSON: {exc}") from None

    try:
        rows, columns = route.extractor.request(parse(args.request))
        if args.response:
            rows, outputs = route.extractor.response(parse(args.response), rows)
            columns = columns + outputs
    except ShapeError:
        raise CommandError(f"the bodies do not have the shape route {route.path} expects") from None
    print(f"\ndry run of {route.path}: {rows} row(s)")
    for index, values in columns:
        column = names[index]
        shown = ", ".join(json.dumps(v) for v in list(values)[:10])
        more = f", ... ({len(values)} values)" if len(values) > 10 else ""
        print(f"  {column.role:7} {column.name}: {shown}{more}")


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report_from_prometheus, report_from_urls

    thresholds = DriftThresholds(psi=args.psi, ks=args.ks, min_count=args.min_count)
    if args.prometheus:
        report = report_from_prometheus(args.prometheus, args.window, args.model, thresholds)
    elif args.urls:
        report = report_from_urls(args.urls, args.model, thresholds)
    else:
        raise CommandError("give /metrics URLs, or --prometheus URL")
    if args.format == "json":
        print(
            json.dumps(
                {"drifted": [r.name for r in report.drifted], "rows": report.to_dicts()}, indent=2
            )
        )
    else:
        print(_colour(report, sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
    return 1 if report.drifted else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return run(
        requests=args.requests,
        serve=args.serve,
        port=args.port,
        out=lambda text: print(text, flush=True),
        render=lambda report: _colour(report, colour),
    )


def _cmd_rules(args: argparse.Namespace) -> int:
    from .rules import WINDOWS, rules_yaml

    windows = [w for given in args.window or WINDOWS for w in given.split(",") if w]
    print(rules_yaml(windows, interval=args.interval), end="")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import dashboard_json

    print(dashboard_json(), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Model and data drift monitoring for Flask and FastAPI model "
        "servers, exported to Prometheus.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "baseline",
        help="training data file -> baseline.json",
        description="Build a baseline from a CSV, JSON Lines or Parquet file, "
        "in chunks (bounded memory).",
    )
    p.add_argument("data", help="CSV (header row), JSON Lines, or Parquet (needs pyarrow)")
    p.add_argument("-o", "--output", default="baseline.json", help="default: baseline.json")
    p.add_argument(
        "--prediction",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column of model predictions (repeatable)",
    )
    p.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a feature column (repeatable; default: all but the predictions)",
    )
    p.add_argument(
        "--categorical",
        action="append",
        default=[],
        metavar="NAME",
        help="treat a numeric column as categorical (repeatable)",
    )
    p.add_argument("--bins", type=int, default=10, help="quantile bins per numeric column")
    p.add_argument(
        "--max-categories",
        type=int,
        default=50,
        help="categories kept per column; the rest count as __other__",
    )
    p.set_defaults(run=_cmd_baseline)

    p = sub.add_parser(
        "check",
        help="validate a config as the middleware would",
        description="Load a YAML config and its baseline exactly as the "
        "middleware does; print the routes and what they extract.",
    )
    p.add_argument("config", help="boxkite.yaml")
    p.add_argument("--request", metavar="FILE", help="a request body to dry-run")
    p.add_argument("--response", metavar="FILE", help="its response body")
    p.add_argument("--route", metavar="PATH", help="the route of the dry run (default: first)")
    p.set_defaults(run=_cmd_check)

    p = sub.add_parser(
        "report",
        help="drift table from /metrics URLs or Prometheus",
        description="Exit code: 0 no drift, 1 drift, 2 error.",
    )
    p.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help="/metrics URLs of every replica (counts since start, summed)",
    )
    p.add_argument("--prometheus", metavar="URL", help="a Prometheus base URL instead")
    p.add_argument("--window", default="1h", help="with --prometheus: the window (1h)")
    p.add_argument("--model", help="the model, when the servers export several")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--psi", type=float, default=DEFAULT_THRESHOLDS.psi)
    p.add_argument("--ks", type=float, default=DEFAULT_THRESHOLDS.ks)
    p.add_argument("--min-count", type=int, default=DEFAULT_THRESHOLDS.min_count)
    p.set_defaults(run=_cmd_report)

    p = sub.add_parser(
        "demo",
        help="train, serve, send normal then drifted traffic, report",
        description="Everything in one process on 127.0.0.1; stops what it started unless --serve.",
    )
    p.add_argument("--requests", type=int, default=600, help="rows per phase (600)")
    p.add_argument("--serve", action="store_true", help="keep serving /metrics afterwards")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser(
        "rules",
        help="print the Prometheus recording and alert rules",
        description="Two-stage rules (docs/rules-scaling.md): every --interval the "
        "replicas' counters are summed into replica-free increases, and every window sums "
        "those. Alerts use the first window.",
    )
    p.add_argument(
        "--window",
        action="append",
        metavar="DURATION",
        help="a window, repeatable or comma-separated (default: 1h,24h); "
        "each a multiple of the interval",
    )
    p.add_argument("--interval", default="1m", help="evaluation interval of the group (1m)")
    p.set_defaults(run=_cmd_rules)

    p = sub.add_parser("dashboard", help="print the Grafana dashboard JSON")
    p.set_defaults(run=_cmd_dashboard)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    failure = 2 if args.command == "report" else 1
    try:
        return args.run(args)
    except (ConfigError, BaselineError, CommandError, ValueError, OSError) as exc:
        print(f"{PROG}: {exc}" if not isinstance(exc, ConfigError) else str(exc), file=sys.stderr)
        return failure
    except KeyboardInterrupt:
        return 130
