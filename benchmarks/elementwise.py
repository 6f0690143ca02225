"""A fused elementwise chain, exp(a) * b + 1, on 16M floats, against a NumPy copy of one array.

The copy is the bandwidth reference: the chain reads two arrays and writes one, the copy reads
one and writes one, and both write a fresh array each call. The issue's target: the chain at
>= 70% of the copy's bandwidth (bytes moved per second). Results are checked against the chain
computed in float64.
"""

from __future__ import annotations

import os

import benchlib
import numpy as np
from benchlib import BASELINE, Options

IMPLS = ["tflc-llvm", "tflc-numpy", "numpy", "torch", "torch.compile", "jax.jit"]
THREADS = None
WARMUP, REPEATS = 3, 30
SIZE, SMOKE_SIZE = 1 << 24, 1000
CHAIN = "exp(a) * b + 1"
COPY = "copy of a"
ARRAYS_MOVED = {CHAIN: 3, COPY: 2}  # arrays read and written per call
MODEL = os.path.join(benchlib.HERE, "chain.tfl")


def chains(impl: str):
    """(prepare, {case: call}): arrays in `impl`'s form, and its calls of them."""
    if impl.startswith("tflc-"):
        import tflc
        model = tflc.load(MODEL, backend=impl.removeprefix("tflc-"))
        return (lambda a, b: (a, b)), {CHAIN: lambda a, b: model.run("c", a=a, b=b)}
    if impl == "numpy":
        return (lambda a, b: (a, b)), {CHAIN: lambda a, b: np.exp(a) * b + 1,
                                        COPY: lambda a, b: a.copy()}
    if impl.startswith("torch"):
        import torch

        def chain(a, b):
            return torch.exp(a) * b + 1
        call = torch.compile(chain) if impl == "torch.compile" else chain
        return (lambda a, b: (torch.from_numpy(a), torch.from_numpy(b))), {CHAIN: call}
    import jax
    import jax.numpy as jnp
    chain = jax.jit(lambda a, b: jnp.exp(a) * b + 1)
    return ((lambda a, b: (jnp.asarray(a), jnp.asarray(b))),
            {CHAIN: lambda a, b: chain(a, b).block_until_ready()})


def measure(impl: str, options: Options) -> list[dict]:
    size = SMOKE_SIZE if options.smoke else SIZE
    rng = np.random.default_rng(0)
    a = rng.uniform(-4, 4, size).astype(np.float32)
    b = rng.standard_normal(size, dtype=np.float32)
    wanted = np.exp(a.astype(np.float64)) * b + 1
    prepare, calls = chains(impl)
    args = prepare(a, b)
    return [measure_call(case, call, args, wanted, options) for case, call in calls.items()]


def measure_call(case: str, call, args: tuple, wanted: np.ndarray, options: Options) -> dict:
    timing = benchlib.time_calls(lambda i: call(*args), options)
    agrees = case == COPY or np.allclose(np.asarray(call(*args)), wanted, rtol=1e-5, atol=1e-6)
    return {"case": case, "agrees": bool(agrees), "bytes": ARRAYS_MOVED[case] * 4 * wanted.size,
            **timing}


def table(records: list[dict]) -> str:
    base = next((r for r in records if r["impl"] == BASELINE), None)
    copy = next((r for r in records if r["case"] == COPY), None)
    rows = []
    for r in records:
        bandwidth = r["bytes"] / r["seconds"]
        rows.append([
            f"{r['impl']}: {r['case']}" + ("" if r["agrees"] else " ✗ disagrees"),
            benchlib.duration(r["seconds"]),
            f"{r['seconds'] / base['seconds']:.2f}×" if base else "—",
            f"{bandwidth / 1e9:.1f}",
            f"{bandwidth / (copy['bytes'] / copy['seconds']):.0%}" if copy else "—",
        ])
    size = records[0]["bytes"] // (4 * ARRAYS_MOVED[records[0]["case"]])
    return (f"Elementwise chain on {size} floats (f32), median per call; bandwidth = arrays read "
            "and written / time\n\n"
            + benchlib.markdown(["call", "median", "ratio to tflc-llvm", "GB/s",
                                 "of NumPy copy's bandwidth"], rows))


if __name__ == "__main__":
    benchlib.child_main()
