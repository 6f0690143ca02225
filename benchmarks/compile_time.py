"""Compile time of each tutorial network's training step, from source to the end of its first
step, in a fresh process: with a cold cache (an empty cache directory) and a warm one (the
directory the cold run filled).

tflc: `tflc.load` (parse, passes, code generation: for LLVM, O3, object code and its shared
library) and the first `run` of the step; TFLC_CACHE_DIR is the cache, from which a warm start
reads the parsed program, the entry after the passes, the host's target and the code. The
issue's targets, for mnist_mlp with LLVM: < 1.5 s cold, < 50 ms warm. Also shown: tflc loading
the model again in the cold run's process (the backend imported, the cache just filled), and for
the peers the same first step (torch.compile's inductor cache in TORCHINDUCTOR_CACHE_DIR; JAX's
persistent compilation cache in JAX_COMPILATION_CACHE_DIR, set to keep every entry). Imports
are timed apart, in the "import" column.

Python's own bytecode cache is on in these processes (whatever PYTHONDONTWRITEBYTECODE says), and
untimed rounds (WARMUP) first fill it: an installed tflc has its .pyc files, and compiling every
module from source adds ~0.1 s to each process start.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time

import benchlib
from benchlib import NETS, Options

IMPLS = ["tflc-llvm", "tflc-numpy", "torch.compile", "jax.jit"]
THREADS = None
WARMUP, REPEATS = 1, 3
SMOKE_NETS = ["logistic_regression"]
PEER_NETS = ["mnist_mlp"]  # torch.compile takes ~20 s a network
FRAMEWORK = {"tflc-llvm": "tflc", "tflc-numpy": "tflc", "torch.compile": "torch", "jax.jit": "jax"}


def cache_environment(directory: str) -> dict[str, str]:
    return {"TFLC_CACHE_DIR": os.path.join(directory, "tflc"),
            "TORCHINDUCTOR_CACHE_DIR": os.path.join(directory, "inductor"),
            "JAX_COMPILATION_CACHE_DIR": os.path.join(directory, "jax"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def first_step(impl: str, net_name: str, feeds: dict, params: dict) -> dict[str, float]:
    """Run in a fresh process, which has imported only NumPy: seconds to import the framework,
    to build the trainer and run its first step, and (tflc) to do that again in the same
    process."""
    sys.dont_write_bytecode = False  # before importing tflc: see the module's docstring
    import train

    net = NETS[net_name]
    start = time.perf_counter()
    __import__(FRAMEWORK[impl])
    imported = time.perf_counter()
    run = train.trainer(impl, net, params)
    run.step(run.prepare(feeds))
    stepped = time.perf_counter()
    times = {"import": imported - start, "first_step": stepped - imported}
    if impl.startswith("tflc-"):
        again = train.trainer(impl, net)
        again.step(again.prepare(feeds))
        times["same_process"] = time.perf_counter() - stepped
    return times


def in_fresh_process(function, *args):
    """`function(*args)` in a new interpreter (spawned, not forked: nothing is initialised)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def measure(impl: str, options: Options) -> list[dict]:
    import train

    batch = benchlib.mnist(8 if options.smoke else train.BATCH)
    names = SMOKE_NETS if options.smoke else list(NETS) if impl.startswith("tflc") else PEER_NETS
    records = []
    for number, net_name in enumerate(names):
        net = NETS[net_name]
        args = (impl, net_name, train.feeds(net, batch, net.keep_prob),
                benchlib.initial_params(net))
        rounds = options.repeats + (options.warmup if number == 0 else 0)
        colds, warms = zip(*[cold_and_warm(args) for _ in range(rounds)][-options.repeats:])
        record = {"case": net_name,
                  "seconds": statistics.median(cold["first_step"] for cold in colds),
                  "warm": statistics.median(warm["first_step"] for warm in warms),
                  "import": statistics.median(cold["import"] for cold in colds)}
        if "same_process" in colds[0]:
            record["same_process"] = statistics.median(cold["same_process"] for cold in colds)
        records.append(record)
    return records


def cold_and_warm(args: tuple) -> tuple[dict, dict]:
    """The first step in a fresh process with empty caches, then in another using them."""
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as directory:
        os.environ.update(cache_environment(directory))
        return in_fresh_process(first_step, *args), in_fresh_process(first_step, *args)


def table(records: list[dict]) -> str:
    rows = []
    for r in records:
        same = "—" if r.get("same_process") is None else benchlib.duration(r["same_process"])
        rows.append([r["case"], r["impl"], benchlib.duration(r["seconds"]),
                     benchlib.duration(r["warm"]), same, benchlib.duration(r["import"])])
    return ("Compile time: source to the end of the first training step, fresh process, median of "
            "the repeats\n\n"
            + benchlib.markdown(["network", "compiler", "cold cache", "warm cache",
                                 "again, same process", "import"], rows))


if __name__ == "__main__":
    benchlib.child_main()
