"""What every workload script shares: the networks, the data, timing, and the child's command line.

A workload script (train.py, inference.py, ...) is run by run.py once per implementation and
thread count, in a process of its own (see run.py for why), as

    python benchmarks/WORKLOAD.py --impl NAME [--smoke] [--warmup W] [--repeats R]

and prints its measurements as one JSON list on stdout. It defines

    IMPLS: the implementations it knows, in table order
    THREADS: the thread counts it is measured at (None: the driver's --threads)
    WARMUP, REPEATS: untimed and timed calls by default
    measure(impl, options) -> list of records (dicts: case, seconds, and what the table shows)
    table(records) -> markdown, read by the driver
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")

# The implementation every ratio is taken against.
BASELINE = "tflc-llvm"


@dataclass(frozen=True)
class Net:
    """A tutorial network: its file, its training step, how it takes labels, its optimizer."""

    name: str
    step: str
    labels: str  # "y": one-hot f32[N, 10]; "labels": class indices i64[N]
    optimizer: str  # "sgd" or "adam"
    lr: float
    keep_prob: float | None = None  # fed while training; None: the network has no dropout

    @property
    def path(self) -> str:
        return os.path.join(EXAMPLES, f"{self.name}.tfl")


NETS = {net.name: net for net in (
    Net("mnist_mlp", "step", "y", "sgd", 0.5),
    Net("mnist_dropout", "step", "y", "adam", 0.001, keep_prob=0.2),
    Net("mnist_relu", "train_step", "labels", "sgd", 0.1),
    Net("logistic_regression", "step", "y", "sgd", 0.1),
)}

ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}  # tflc's defaults, TensorFlow's Adam


@dataclass(frozen=True)
class Options:
    """What the driver passes to a workload's `measure`."""

    smoke: bool  # tiny sizes, one timed call: the scripts run, nothing is measured
    warmup: int
    repeats: int
    threads: int


# -- data --------------------------------------------------------------------------------------

def mnist(rows: int) -> dict[str, np.ndarray]:
    """The first `rows` MNIST test images (pixels in [0, 1]) with their labels in both forms:
    the same data for every implementation."""
    from tflc.runtime import datasets

    def read(stem):
        return datasets.read_idx(os.path.join(datasets.MNIST_DIR, stem + ".gz"))[:rows]

    images = read("t10k-images-idx3-ubyte")
    labels = read("t10k-labels-idx1-ubyte").astype(np.int64)
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return {"x": x, "y": np.eye(10, dtype=np.float32)[labels], "labels": labels}


def batches(data: dict[str, np.ndarray], size: int, count: int) -> list[dict[str, np.ndarray]]:
    return [{k: np.ascontiguousarray(v[i * size:(i + 1) * size]) for k, v in data.items()}
            for i in range(count)]


def initial_params(net: Net) -> dict[str, np.ndarray]:
    """The network's params as tflc initialises them (seed 0): every implementation starts here."""
    import tflc

    return {name: value.copy() for name, value in tflc.load(net.path).params.items()}


# -- timing ------------------------------------------------------------------------------------

SETTLE_SECONDS = 0.5
# Calls of a few microseconds vary by 40% from one batch of 200 to the next: short calls are
# repeated until the warm-up and the timed calls each last this long (at most 100 times more).
MIN_SECONDS = 0.05, 0.5


def time_calls(call, options: Options) -> dict[str, float]:
    """Median and minimum seconds of `options.repeats` calls of `call(i)` (i counts from 0),
    after `options.warmup` untimed ones, or more of both for short calls (`MIN_SECONDS`). Each call is timed on its own, so the median is not
    pulled by one slow call (another process taking the core). First a pause, long enough for
    the threads of a BLAS used just before (a check against NumPy) to stop spinning: OpenBLAS's
    wait for work for ~0.1 s (2^28 cycles), and meanwhile hold the cores a run with threads
    needs (a 2-thread tflc matmul of 55 µs took 10 times as long)."""
    time.sleep(SETTLE_SECONDS)
    warmup, repeats = options.warmup, options.repeats
    started = time.perf_counter()
    for i in range(warmup):
        call(i)
    if not options.smoke:  # short calls: more of both
        each = max((time.perf_counter() - started) / max(warmup, 1), 1e-9)
        extra = max(min(int(MIN_SECONDS[0] / each), 100 * warmup) - warmup, 0)
        for i in range(warmup, warmup + extra):
            call(i)
        warmup += extra
        repeats = max(repeats, min(int(MIN_SECONDS[1] / each), 100 * repeats))
    seconds = []
    for i in range(warmup, warmup + repeats):
        start = time.perf_counter()
        call(i)
        seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "min_seconds": min(seconds)}


# -- tables ------------------------------------------------------------------------------------

def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def time_table(records: list[dict], impls: list[str], row_title: str) -> str:
    """Cases down, implementations across: median time, and for all but the baseline its ratio
    to the baseline's (above 1: tflc is faster). A record whose results disagree with tflc's
    is marked."""
    cases = list(dict.fromkeys(r["case"] for r in records))
    shown = [impl for impl in impls if any(r["impl"] == impl for r in records)]
    cell = {(r["case"], r["impl"]): r for r in records}
    rows = []
    for case in cases:
        base = cell.get((case, BASELINE))
        row = [case]
        for impl in shown:
            record = cell.get((case, impl))
            if record is None:
                row.append("—")
                continue
            text = duration(record["seconds"])
            if base is not None and impl != BASELINE:
                text += f" ({record['seconds'] / base['seconds']:.2f}×)"
            if record.get("agrees") is False:
                text += " ✗ disagrees"
            row.append(text)
        rows.append(row)
    return markdown([row_title, *shown], rows)


# -- the child's side --------------------------------------------------------------------------

def child_main() -> None:
    """The command line of the workload script being run (the __main__ module)."""
    workload = sys.modules["__main__"]
    parser = argparse.ArgumentParser(description=workload.__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=workload.IMPLS)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args()
    warmup, repeats = workload.WARMUP, workload.REPEATS
    if args.smoke:
        warmup, repeats = 0, 1
    options = Options(args.smoke, warmup if args.warmup is None else args.warmup,
                      repeats if args.repeats is None else args.repeats,
                      threads=len(os.sched_getaffinity(0)))
    records = workload.measure(args.impl, options)
    for record in records:
        record.update(impl=args.impl, threads=options.threads)
    json.dump(records, sys.stdout)
    print()
