"""Inference on a 10000-row batch: mnist_mlp's accuracy over the MNIST test set.

Every implementation uses tflc's initial params (seed 0). Its accuracy is checked against tflc's
NumPy backend's: at most one image may be classified differently (a near tie).
"""

from __future__ import annotations

import benchlib
from benchlib import NETS, Options

IMPLS = ["tflc-llvm", "tflc-numpy", "numpy", "torch", "torch.compile", "jax.jit"]
THREADS = None
WARMUP, REPEATS = 5, 50
ROWS, SMOKE_ROWS = 10000, 50


def accuracy(impl: str):
    """(prepare, accuracy): a batch in `impl`'s form, and the accuracy of a prepared batch."""
    if impl.startswith("tflc-"):
        import nets_tflc
        return (lambda batch: batch), nets_tflc.accuracy(impl.removeprefix("tflc-"))
    params = benchlib.initial_params(NETS["mnist_mlp"])
    if impl == "numpy":
        import nets_numpy
        return (lambda batch: batch), nets_numpy.accuracy(params)
    if impl.startswith("torch"):
        import nets_torch
        return nets_torch.prepare, nets_torch.accuracy(params, compiled=impl == "torch.compile")
    import nets_jax
    return nets_jax.prepare, nets_jax.accuracy(params)


def measure(impl: str, options: Options) -> list[dict]:
    rows = SMOKE_ROWS if options.smoke else ROWS
    data = benchlib.mnist(rows)
    batch = {"x": data["x"], "y": data["y"]}
    prepare, run = accuracy(impl)
    prepared = prepare(batch)
    timing = benchlib.time_calls(lambda i: run(prepared), options)
    wanted = accuracy("tflc-numpy")[1](batch)
    agrees = abs(float(run(prepared)) - float(wanted)) <= 1 / rows + 1e-6
    return [{"case": f"mnist_mlp accuracy, {rows} rows", "agrees": agrees, **timing}]


def table(records: list[dict]) -> str:
    return ("Inference: mnist_mlp's accuracy fetched on the 10000 MNIST test images, median "
            "per call (ratio to tflc-llvm)\n\n"
            + benchlib.time_table(records, IMPLS, "fetch"))


if __name__ == "__main__":
    benchlib.child_main()
