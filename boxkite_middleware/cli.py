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
        truth=dict(_pair(t) for t in args.truth),
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


def _pair(text: str) -> tuple[str, str]:
    prediction, sep, truth = text.partition("=")
    if not sep or not prediction or not truth:
        raise CommandError(f"--truth {text!r}: write it as PREDICTION_COLUMN=TRUTH_COLUMN")
    return prediction, truth


def _cmd_check(args: argparse.Namespace) -> int:
    from .cardinality import GUIDANCE_ABOVE, series_of_config
    from .config import load_config
    from .observing import Observer

    config = load_config(args.config)
    observer = Observer(config, shared=False)  # counts in memory: no live directory touched
    series = series_of_config(config)
    for name, baseline in config.models.items():
        print(
            f"{args.config}: OK. model {name!r}, baseline of "
            f"{len(baseline.features)} features and {len(baseline.outputs)} outputs"
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
        model = f"model {route.model}" if route.model else "model from the path"
        print(f"  {' '.join(route.methods)} {route.path} ({how}; {model})")
        baseline = config.models[route.model] if route.model else config.baseline
        names = list(route.features) or (baseline.feature_names if route.preset else [])
        for name in names:
            path = route.features.get(name)
            print(f"    feature {name}" + (f" <- {path.text}" if path else ""))
        outputs = list(route.predictions) or list(
            route.outputs or (baseline.output_names if route.preset else [])
        )
        for name in outputs:
            path = route.predictions.get(name)
            print(f"    output  {name}" + (f" <- {path.text}" if path else ""))
    if args.request:
        _dry_run(observer, args)
    return 0


def _headers(pairs: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for pair in pairs or ():
        name, sep, value = pair.partition(":")
        if not sep:
            raise CommandError(f"header {pair!r}: write it as 'Name: value'")
        out.append((name.strip(), value.strip()))
    return out


def _dry_run(observer: Any, args: argparse.Namespace) -> None:
    """Feed a captured request (and response) through the real request flow and show
    which counters it moves."""
    from .observing import body_headers

    route = (
        next((r for r in observer.routes if r.path == args.route), None)
        if args.route
        else observer.routes[0]
    )
    if route is None:
        raise CommandError(f"no route {args.route!r} in the config")
    path = args.path or route.path

    def read(file: str) -> bytes:
        try:
            with open(file, "rb") as f:
                return f.read()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None

    request = read(args.request)
    headers = [("Content-Type", "application/json"), *_headers(args.header)]
    monitor = observer.monitor
    before = monitor.snapshot()
    exchange = observer.begin(route, path, body_headers(headers), len(request))
    if exchange is not None:
        exchange.add_request(request)
        if args.response:
            response_headers = [("Content-Type", "application/json")]
            response_headers += _headers(args.response_header)
            exchange.start_response(200, body_headers(response_headers))
            exchange.add_response(read(args.response))
        exchange.finish()
    moved = monitor.snapshot() - before
    print(f"\ndry run of {path} (route {route.path}):")
    for line in monitor.describe_counts(moved):
        print(f"  {line}")
    if not moved.any():
        print("  nothing would be counted")


def _cmd_report(args: argparse.Namespace) -> int:
    from .quality import QualityReport
    from .readback import (
        quality_from_prometheus,
        quality_from_urls,
        report_from_prometheus,
        report_from_urls,
    )

    thresholds = DriftThresholds(psi=args.psi, ks=args.ks, min_count=args.min_count)
    quality = QualityReport([])
    if args.baseline:
        from .baseline import Baseline
        from .datafile import drift_of_files

        if not args.urls:
            raise CommandError("with --baseline, give the current data files")
        baseline = Baseline.load(args.baseline)
        report = drift_of_files(baseline, args.urls, thresholds)
        source = f"{', '.join(args.urls)} against {args.baseline}"
    elif args.prometheus:
        report = report_from_prometheus(args.prometheus, args.window, args.model, thresholds)
        quality = quality_from_prometheus(args.prometheus, args.window, args.model)
        source = f"Prometheus {args.prometheus}, last {args.window}"
    elif args.urls:
        report = report_from_urls(args.urls, args.model, thresholds)
        quality = quality_from_urls(args.urls, args.model)
        source = "counts since start-up at " + ", ".join(args.urls)
    else:
        raise CommandError("give /metrics URLs, --prometheus URL, or --baseline FILE DATA...")
    if args.html:
        from .html_report import write

        write(report, args.html, title=args.title, source=source, quality=quality.to_dict())
    if args.format == "json":
        print(
            json.dumps(
                {
                    "drifted": [r.name for r in report.drifted],
                    "rows": report.to_dicts(),
                    "quality": quality.to_dicts(),
                },
                indent=2,
            )
        )
    else:
        print(_colour(report, sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
        if len(quality):
            print(f"\nQuality (ground truth)\n{quality}")
    if args.html:
        print(f"HTML report: {args.html}", file=sys.stderr)
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
        html_dir=None if args.no_html else args.html_dir,
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
    p.add_argument(
        "--truth",
        action="append",
        default=[],
        metavar="PREDICTION=TRUTH",
        help="the column of true values for a prediction column, e.g. score=label "
        "(repeatable): the baseline then keeps the model's quality for feedback routes",
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
    p.add_argument("--request", metavar="FILE", help="a captured request body to dry-run")
    p.add_argument("--response", metavar="FILE", help="its response body (status 200)")
    p.add_argument("--route", metavar="PATH", help="the route of the dry run (default: first)")
    p.add_argument("--path", help="the request's path, e.g. /v2/models/iris/infer")
    p.add_argument(
        "--header", action="append", metavar="'NAME: VALUE'", help="a request header (repeat)"
    )
    p.add_argument(
        "--response-header", action="append", metavar="'NAME: VALUE'", help="a response header"
    )
    p.set_defaults(run=_cmd_check)

    p = sub.add_parser(
        "report",
        help="drift table (and HTML report) from /metrics URLs, Prometheus, or a data file",
        description="Exit code: 0 no drift, 1 drift, 2 error.",
    )
    p.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help="/metrics URLs of every replica (counts since start, summed); "
        "with --baseline: the current data files (CSV, JSON Lines, Parquet; summed)",
    )
    p.add_argument("--prometheus", metavar="URL", help="a Prometheus base URL instead")
    p.add_argument(
        "--baseline", metavar="FILE", help="compare data files with this baseline.json instead"
    )
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    p.add_argument("--title", default="Drift report", help="the HTML report's title")
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
    p.add_argument(
        "--html-dir",
        default=".",
        metavar="DIR",
        help="where each phase's HTML report is written (default: the current directory)",
    )
    p.add_argument("--no-html", action="store_true", help="print the tables only")
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
