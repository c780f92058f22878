"""The ``boxkite-middleware`` command (also ``python -m boxkite_middleware``).

Exit status: 0 success (``report``: no drift), 1 drift found (``report``), 2 an error,
reported as one line on stderr naming the file or URL and what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from .baseline import DEFAULT_BINS, DEFAULT_MAX_CATEGORIES, BaselineError
from .config import ConfigError
from .drift import DEFAULT_THRESHOLDS, DriftReport, DriftThresholds

PROG = "boxkite-middleware"
ERROR = 2  # exit status of every failure (argparse's usage errors included)


class CommandError(Exception):
    """A failure to report as one line, with a non-zero exit code."""


class TerminalProgress:
    """One line on a terminal, rewritten in place: pass, rows, share of the file, time.

    Self-written (no dependency): a carriage return and padding, no escape codes.
    """

    INTERVAL = 0.1  # seconds between redraws, at most; the end of a pass always shows

    STEPS = {
        "reading": (1, "reading"),
        "counting": (2, "counting"),
        "quality-sample": (3, "sampling errors"),
        "quality-counting": (4, "counting quality"),
    }

    def __init__(self, path: str, stream: TextIO, passes: int = 2) -> None:
        self.path, self.stream, self.passes = path, stream, passes
        self.size = os.path.getsize(path) if os.path.isfile(path) else 0
        self.start = time.monotonic()
        self.shown = -self.INTERVAL
        self.width = 0

    def __call__(self, stage: str, rows: int, fraction: float) -> None:
        now = time.monotonic() - self.start
        if now - self.shown < self.INTERVAL and fraction < 1.0:
            return
        self.shown = now
        number, doing = self.STEPS.get(stage, (0, stage))
        step = f"pass {number}/{self.passes}, {doing}" if number else doing
        line = (
            f"{self.path}: {step}: {rows:,} rows, {fraction:4.0%} of {_size(self.size)}, "
            f"{now:.1f} s"
        )
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def end(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


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
    from .datafile import MissingColumnsError, build_baseline, describe

    truth = dict(_pair(t) for t in args.truth)
    stream = sys.stderr
    progress = TerminalProgress(args.data, stream, 4 if truth else 2) if stream.isatty() else None
    try:
        baseline = build_baseline(
            args.data,
            predictions=args.prediction,
            features=args.feature or None,
            categorical=args.categorical,
            bins=args.bins,
            max_categories=args.max_categories,
            progress=progress,
            truth=truth,
        )
    except MissingColumnsError as exc:
        raise CommandError(
            f"{exc}; --prediction, --feature, --categorical and --truth take column names "
            "of the file"
        ) from None
    finally:
        if progress:
            progress.end()
    try:
        baseline.save(args.output)
    except OSError as exc:
        raise CommandError(
            f"{args.output}: cannot write the baseline: {exc.strerror}; "
            "give -o a path in an existing, writable directory"
        ) from None
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


def _unreachable(url: str, exc: OSError, what: str) -> CommandError:
    reason = getattr(exc, "reason", None) or exc.strerror or exc
    return CommandError(f"{url}: cannot read {what}: {reason}; is it up, and is the URL right?")


def _cmd_report(args: argparse.Namespace) -> int:
    from .quality import QualityReport
    from .readback import (
        fetch,
        quality_from_prometheus,
        quality_from_texts,
        report_from_prometheus,
        report_from_texts,
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
        try:
            report = report_from_prometheus(args.prometheus, args.window, args.model, thresholds)
            quality = quality_from_prometheus(args.prometheus, args.window, args.model)
        except OSError as exc:
            raise _unreachable(args.prometheus, exc, "Prometheus's query API") from None
        except ValueError as exc:  # no boxkite_* series, or no --model among several
            raise CommandError(f"{args.prometheus}: {exc}") from None
        source = f"Prometheus {args.prometheus}, last {args.window}"
    elif args.urls:
        texts = []
        for url in args.urls:
            try:
                texts.append(fetch(url))
            except OSError as exc:
                raise _unreachable(url, exc, "/metrics") from None
            if "boxkite_" not in texts[-1]:
                raise CommandError(
                    f"{url}: no boxkite_* series; give the /metrics URL of a server "
                    "running the middleware"
                )
        try:
            report = report_from_texts(texts, args.model, thresholds)
            quality = quality_from_texts(texts, args.model)
        except ValueError as exc:
            raise CommandError(f"{' '.join(args.urls)}: {exc}") from None
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
        epilog="Exit status: 0 success, 1 drift found (report), 2 error.",
    )
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "baseline",
        help="training data file -> baseline.json",
        description="Build a baseline from a CSV, JSON Lines or Parquet file, "
        "in chunks (bounded memory), in two passes over the file. On a terminal, "
        "progress is shown on stderr.",
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
    p.add_argument(
        "--bins",
        type=_at_least(2),
        default=DEFAULT_BINS,
        help=f"quantile bins per numeric column ({DEFAULT_BINS})",
    )
    p.add_argument(
        "--max-categories",
        type=_at_least(1),
        default=DEFAULT_MAX_CATEGORIES,
        help=f"categories kept per column; the rest count as __other__ ({DEFAULT_MAX_CATEGORIES})",
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


def _message(exc: Exception) -> str:
    if isinstance(exc, ConfigError):
        return str(exc)  # already "file:line: what is wrong"
    if isinstance(exc, OSError) and exc.filename:
        return f"{PROG}: {exc.filename}: {exc.strerror}"
    return f"{PROG}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, BaselineError, CommandError, ValueError, OSError) as exc:
        print(_message(exc), file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        return 130
