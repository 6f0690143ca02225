"""Compile time of each tutorial network's training step, from source to the end of its first
step, in a fresh process: with a cold cache (an empty cache directory) and a warm one (the
directory the cold run filled).

tflc: `tflc.load` (parse, passes, code generation: for LLVM, O3 and object code, or the
cache's) and the first `run` of the step; TFLC_CACHE_DIR is the cache. The issue's targets, for
mnist_mlp with LLVM: < 1.5 s cold, < 50 ms warm. Also shown: tflc loading the model again in
the same process (LLVM initialised, the backend imported), and for the peers the same first
step (torch.compile's inductor cache in TORCHINDUCTOR_CACHE_DIR; JAX's persistent compilation
cache in JAX_COMPILATION_CACHE_DIR, set to keep every entry). Imports are timed apart, in the
"import" column.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time

import benchlib
from benchlib import NETS, Options

IMPLS = ["tflc-llvm", "tflc-numpy", "torch.compile", "jax.jit"]
THREADS = None
WARMUP, REPEATS = 0, 3
SMOKE_NETS = ["logistic_regression"]
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
    records = []
    import train

    batch = benchlib.mnist(8 if options.smoke else train.BATCH)
    for net_name in SMOKE_NETS if options.smoke else list(NETS):
        net = NETS[net_name]
        args = (impl, net_name, train.feeds(net, batch, net.keep_prob),
                benchlib.initial_params(net))
        runs = []
        for _ in range(options.repeats):
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as directory:
                os.environ.update(cache_environment(directory))
                cold = in_fresh_process(first_step, *args)
                warm = in_fresh_process(first_step, *args)
            runs.append((cold, warm))
        cold_seconds = statistics.median(cold["first_step"] for cold, _ in runs)
        record = {"case": net_name, "seconds": cold_seconds,
                  "warm": statistics.median(warm["first_step"] for _, warm in runs),
                  "import": statistics.median(cold["import"] for cold, _ in runs)}
        if "same_process" in runs[0][0]:
            record["same_process"] = statistics.median(cold["same_process"] for cold, _ in runs)
        records.append(record)
    return records


def table(records: list[dict]) -> str:
    rows = []
    for r in records:
        same = r.get("same_process")
        rows.append([r["case"], r["impl"], benchlib.duration(r["seconds"]),
                     benchlib.duration(r["warm"]), "—" if same is None else benchlib.duration(same),
                     benchlib.duration(r["import"])])
    return ("Compile time: source to the end of the first training step, fresh process, median of "
            "the repeats\n\n"
            + benchlib.markdown(["network", "compiler", "cold cache", "warm cache",
                                 "again, same process", "import"], rows))


if __name__ == "__main__":
    benchlib.child_main(__import__(__name__))
