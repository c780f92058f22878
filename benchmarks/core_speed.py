"""Speed of the framework-free core, each figure next to a reference measured in the same run.

    python benchmarks/core_speed.py [--quick]

- one row of 10 features + 1 output: Recorder.observe vs 11 prometheus_client
  Histogram.observe calls with the same buckets (what a hand-instrumented server does);
- a 1,000-row x 11-value batch: counting alone, and the whole request through the
  middleware's core (parse both bodies, fan out `$.instances[*]`, count), vs
  orjson.loads of the same JSON body (the parse is the floor);
- /metrics for 10, 50 and 200 numeric features x 10 bins: our render vs
  prometheus_client's generate_latest over the same families;
- the model servers' paths: a V2 batch of 1,000 x 10 on a ``{model}`` route among ten
  models, in JSON and in the binary tensor extension, and 1,000 labels on a feedback
  route, vs orjson.loads of the JSON body; one record whose model comes from the path,
  vs the same record on a route for one model;
- multi-process scrape of /metrics: 4, 64 and 1,024 exited workers (after the first
  scrape has folded them into the archive), and prometheus_client's own multiprocess
  mode over 4 and 1,024 dead workers' files for comparison.

Timings are medians of several interleaved repetitions; compare ratios, not
absolute times, across machines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from boxkite_middleware import Baseline, Monitor
from boxkite_middleware.observing import BodyHeaders, Observer


def per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(cases: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each case, repetitions interleaved across cases."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, number) in cases.items():
            samples[name].append(per_call(fn, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def make_baseline(features: int, rng: np.random.Generator) -> Baseline:
    data = {f"f{i}": rng.normal(size=5000) for i in range(features)}
    return Baseline.from_training(data, rng.normal(size=5000))


def _dead_worker(directory: str, baseline: Baseline) -> None:
    Monitor(baseline, routes=["/predict"], multiprocess_dir=directory).observe({"f0": 0.1})
    os._exit(0)


def _prometheus_client_files(directory: str, workers: int, baseline: Baseline) -> Callable:
    """Dead-worker files as prometheus_client's multiprocess mode leaves them (one
    histogram of the same features and buckets per worker), and a scrape of them."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    os.mkdir(directory)
    for pid in range(workers):
        values = MmapedDict(os.path.join(directory, f"histogram_{pid}.db"))
        for column in baseline.columns:
            labels = ["feature", "le"]
            for le in column.le:
                key = mmap_key("h", "h_bucket", labels, [column.name, le], "h")
                values.write_value(key, 1.0, 0.0)
            values.write_value(mmap_key("h", "h_sum", ["feature"], [column.name], "h"), 1.0, 0.0)
        values.close()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return lambda: generate_latest(registry)


def _exchange(
    observer: Observer,
    path: str,
    body: bytes,
    headers: BodyHeaders,
    response: bytes | None = None,
    response_headers: BodyHeaders | None = None,
):
    """One request through the core as an adapter drives it, returned as a callable."""
    route = observer.route_for("POST", path)
    assert route is not None, path

    def run() -> None:
        exchange = observer.begin(route, path, headers, len(body))
        exchange.add_request(body)
        if response is not None:
            exchange.start_response(200, response_headers or headers)
            exchange.add_response(response)
        exchange.finish()

    return run


def _v2_binary(doc: dict, tensors: list[np.ndarray]) -> tuple[bytes, BodyHeaders]:
    """A V2 body in the binary tensor extension: JSON header, then raw tensors."""
    for tensor, data in zip(doc["inputs"], tensors):
        tensor.pop("data")
        tensor["parameters"] = {"binary_data_size": data.nbytes}
    header = orjson.dumps(doc)
    body = header + b"".join(t.astype("<f8").tobytes() for t in tensors)
    return body, BodyHeaders("application/octet-stream", None, str(len(header)))


def model_server_rows(
    baseline: Baseline, rng: np.random.Generator, scale: float, repeats: int
) -> list[tuple[str, float, str, float]]:
    """The paths real model servers take: V2 JSON and binary batches on a ``{model}``
    route among ten models, feedback batches, and a single record whose model comes
    from the path (next to the same record on a route for one model)."""
    rows = []
    json_headers = BodyHeaders("application/json")
    with tempfile.TemporaryDirectory() as tmp:
        truth = baseline.outputs[0]
        labelled = Baseline.from_training(
            {c.name: rng.normal(size=2000) for c in baseline.features},
            {"prediction": (p := rng.normal(size=2000))},
            truth={"prediction": p + rng.normal(size=2000)},
        )
        del truth
        models = []
        for i in range(10):
            labelled.save(os.path.join(tmp, f"m{i}.json"))
            models.append({"name": f"m{i}", "baseline": os.path.join(tmp, f"m{i}.json")})
        names = labelled.feature_names
        observer = Observer(
            {
                "models": models,
                "routes": [
                    {"path": "/v2/models/{model}/infer", "preset": "kserve-v2"},
                    {
                        "path": "/one",
                        "model": "m3",
                        "features": {n: f"$.{n}" for n in names},
                    },
                    {"path": "/pick/{model}", "features": {n: f"$.{n}" for n in names}},
                ],
                "feedback": [
                    {
                        "path": "/feedback",
                        "model": "m3",
                        "predictions": {"prediction": "$.rows[*].p"},
                        "truth": {"prediction": "$.rows[*].t"},
                    }
                ],
            },
            shared=False,
        )
    matrix = rng.normal(size=(1000, len(names)))
    request = {
        "inputs": [
            {
                "name": "x",
                "shape": [1000, len(names)],
                "datatype": "FP64",
                "data": matrix.reshape(-1).tolist(),
            }
        ]
    }
    body = orjson.dumps(request)
    outputs = rng.normal(size=1000)
    response = orjson.dumps(
        {
            "outputs": [
                {
                    "name": "y",
                    "shape": [1000],
                    "datatype": "FP64",
                    "data": outputs.tolist(),
                }
            ]
        }
    )
    binary, binary_headers = _v2_binary(orjson.loads(body), [matrix])
    feedback = orjson.dumps(
        {"rows": [{"p": float(a), "t": float(b)} for a, b in zip(outputs, outputs + 0.5)]}
    )
    record = orjson.dumps({n: float(v) for n, v in zip(names, matrix[0])})
    n = max(int(100 * scale), 3)
    t = compare(
        {
            "json": (
                _exchange(
                    observer,
                    "/v2/models/m7/infer",
                    body,
                    json_headers,
                    response,
                    json_headers,
                ),
                n,
            ),
            "binary": (
                _exchange(
                    observer,
                    "/v2/models/m7/infer",
                    binary,
                    binary_headers,
                    response,
                    json_headers,
                ),
                n,
            ),
            "feedback": (_exchange(observer, "/feedback", feedback, json_headers), n),
            "parse": (lambda: orjson.loads(body), n),
            "parse feedback": (lambda: orjson.loads(feedback), n),
        },
        repeats,
    )
    rows.append(
        (
            "V2 JSON 1,000 x 10, {model} of 10 models",
            t["json"],
            "orjson.loads of its request body",
            t["parse"],
        )
    )
    rows.append(
        (
            "V2 binary 1,000 x 10, {model} of 10 models",
            t["binary"],
            "orjson.loads of the JSON form",
            t["parse"],
        )
    )
    rows.append(
        (
            "feedback, 1,000 numeric labels",
            t["feedback"],
            "orjson.loads of its body",
            t["parse feedback"],
        )
    )
    n = max(int(20000 * scale), 50)
    t = compare(
        {
            "pick": (_exchange(observer, "/pick/m7", record, json_headers), n),
            "one": (_exchange(observer, "/one", record, json_headers), n),
        },
        repeats,
    )
    rows.append(
        (
            "one record, model from the path (10)",
            t["pick"],
            "the same, a route for one model",
            t["one"],
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny N, for smoke tests")
    args = parser.parse_args()
    scale, repeats = (0.01, 3) if args.quick else (1.0, 7)
    rng = np.random.default_rng(0)
    rows = []

    baseline = make_baseline(10, rng)
    monitor = Monitor(baseline, routes=["/predict"])
    row = [(i, (float(rng.normal()),)) for i in range(11)]
    registry = CollectorRegistry()
    hist = Histogram(
        "h",
        "h",
        ["feature"],
        buckets=list(baseline.features[0].edges),
        registry=registry,
    )
    children = [hist.labels(f"f{i}") for i in range(11)]
    values = [v for _, (v,) in row]

    def prometheus_client_row() -> None:
        for child, value in zip(children, values):
            child.observe(value)

    n = max(int(20000 * scale), 50)
    t = compare(
        {
            "ours": (lambda: monitor.record(0, 1, row), n),
            "ref": (prometheus_client_row, n),
        },
        repeats,
    )
    rows.append(("count one row of 11 values", t["ours"], "11 x Histogram.observe", t["ref"]))

    batch = {f"f{i}": rng.normal(size=1000).tolist() for i in range(10)}
    body = orjson.dumps({"instances": [dict(zip(batch, r)) for r in zip(*batch.values())]})
    columns = [(i, batch[f"f{i}"]) for i in range(10)] + [(10, rng.normal(size=1000).tolist())]
    n = max(int(300 * scale), 5)
    t = compare(
        {
            "ours": (lambda: monitor.record(0, 1000, columns), n),
            "ref": (lambda: orjson.loads(body), n),
        },
        repeats,
    )
    rows.append(("count a 1,000 x 11 batch", t["ours"], "orjson.loads of its body", t["ref"]))

    # The same batch through the middleware's core: parse both bodies, fan out, count.
    with tempfile.TemporaryDirectory() as tmp:
        baseline.save(os.path.join(tmp, "baseline.json"))
        observer = Observer(
            {
                "baseline": os.path.join(tmp, "baseline.json"),
                "routes": [
                    {
                        "path": "/batch",
                        "features": {f"f{i}": f"$.instances[*].f{i}" for i in range(10)},
                        "predictions": {"prediction": "$.predictions[*]"},
                    }
                ],
            }
        )
    route = observer.routes[0]
    json_headers = BodyHeaders("application/json")
    response = orjson.dumps({"predictions": rng.normal(size=1000).tolist()})

    def through_core() -> None:
        exchange = observer.begin(route, route.path, json_headers, len(body))
        exchange.add_request(body)
        exchange.start_response(200, json_headers)
        exchange.add_response(response)
        exchange.finish()

    n = max(int(200 * scale), 5)
    t = compare({"ours": (through_core, n), "ref": (lambda: orjson.loads(body), n)}, repeats)
    rows.append(
        (
            "1,000-row request through the core",
            t["ours"],
            "orjson.loads of its body",
            t["ref"],
        )
    )

    rows += model_server_rows(baseline, rng, scale, repeats)

    for features in (10, 50, 200):
        m = Monitor(make_baseline(features, rng), routes=["/predict"])
        m.observe_batch({f"f{i}": rng.normal(size=100).tolist() for i in range(features)})
        n = max(int(200 * scale), 5)
        t = compare(
            {
                "ours": (lambda m=m: m.render(), n),
                "ref": (lambda m=m: generate_latest(m.registry), n),
            },
            repeats,
        )
        rows.append(
            (
                f"render /metrics, {features} features",
                t["ours"],
                "generate_latest, same families",
                t["ref"],
            )
        )

    fork = multiprocessing.get_context("fork")
    small = make_baseline(10, rng)
    counts = [4, max(int(64 * scale), 6), max(int(1024 * scale), 8)]
    with tempfile.TemporaryDirectory() as root:
        scrapers = {}
        for workers in counts:
            directory = os.path.join(root, f"ours{workers}")
            os.mkdir(directory)
            scraper = Monitor(small, routes=["/predict"], multiprocess_dir=directory)
            for _ in range(workers):
                p = fork.Process(target=_dead_worker, args=(directory, small))
                p.start()
                p.join()
            first = per_call(scraper.render, 1)
            scrapers[workers] = (scraper, first)
        references = {
            w: _prometheus_client_files(os.path.join(root, f"pc{w}"), w, small)
            for w in (counts[0], counts[-1])
        }
        # Steady state: scrapes come seconds apart, after the directory stopped changing.
        time.sleep(2.1)
        n = max(int(300 * scale), 5)
        t = compare({w: (m.render, n) for w, (m, _) in scrapers.items()}, repeats)
        few = counts[0]
        for workers in counts[1:]:
            rows.append(
                (
                    f"scrape /metrics, {workers} exited workers",
                    t[workers],
                    f"the same, {few} exited workers",
                    t[few],
                )
            )
        rows.append(
            (
                f"first scrape after {counts[-1]} exits (folds)",
                scrapers[counts[-1]][1],
                f"scrape, {few} exited workers",
                t[few],
            )
        )
        r = compare({w: (fn, max(n // 20, 3)) for w, fn in references.items()}, repeats)
        rows.append(
            (
                f"prometheus_client, {counts[-1]} dead files",
                r[counts[-1]],
                f"prometheus_client, {few} files",
                r[few],
            )
        )

    print(f"{'case':44} {'ours':>10}  {'reference':34} {'ref':>10}  ratio")
    for name, ours, ref_name, ref in rows:
        print(f"{name:44} {ours * 1e6:8.1f}us  {ref_name:34} {ref * 1e6:8.1f}us  {ours / ref:5.2f}")


if __name__ == "__main__":
    main()
