"""Training step of each tutorial network at batch 100: tflc against NumPy, PyTorch and JAX.

Every implementation starts from tflc's initial params (seed 0) and steps through the same ten
batches of MNIST images. Before timing, each is checked: two steps with keep_prob 1 (no
dropout) must give the params that tflc's NumPy backend gives.
"""

from __future__ import annotations

import benchlib
import numpy as np
from benchlib import NETS, Net, Options

IMPLS = ["tflc-llvm", "tflc-numpy", "numpy", "torch", "torch.compile", "jax.jit"]
THREADS = None
WARMUP, REPEATS = 20, 200
BATCH, BATCHES = 100, 10
SMOKE_BATCH = 8
CHECK_STEPS = 2
CHECK_RTOL = 1e-3  # of the largest change of each param


def trainer(impl: str, net: Net, params: dict[str, np.ndarray] | None = None):
    """A fresh trainer for `impl`: step(prepared batch), prepare(batch), values(). Peers start
    from `params`, by default tflc's initial params; tflc from its own (the same)."""
    if impl.startswith("tflc-"):
        import nets_tflc
        return nets_tflc.Trainer(net, backend=impl.removeprefix("tflc-"))
    params = benchlib.initial_params(net) if params is None else params
    if impl == "numpy":
        import nets_numpy
        return nets_numpy.Trainer(net, params)
    if impl.startswith("torch"):
        import nets_torch
        return nets_torch.Trainer(net, params, compiled=impl == "torch.compile")
    import nets_jax
    return nets_jax.Trainer(net, params)


def feeds(net: Net, batch: dict[str, np.ndarray], keep_prob: float | None) -> dict:
    fed = {"x": batch["x"], net.labels: batch[net.labels]}
    if net.keep_prob is not None:
        fed["keep_prob"] = np.float32(keep_prob)
    return fed


def deviation(impl: str, net: Net, batches: list[dict]) -> float:
    """How far CHECK_STEPS steps without dropout change the params from the way tflc's NumPy
    backend changes them: the largest difference, relative to the largest change of that param
    (the changes are compared: they are small next to the params)."""
    start = benchlib.initial_params(net)
    runs = {name: trainer(name, net) for name in (impl, "tflc-numpy")}
    for batch in batches[:CHECK_STEPS]:
        for run in runs.values():
            run.step(run.prepare(feeds(net, batch, keep_prob=1.0)))
    got, want = (runs[name].values() for name in (impl, "tflc-numpy"))
    changes = [(got[name] - initial, want[name] - initial) for name, initial in start.items()]
    return max(float(np.max(np.abs(change - wanted)) / np.max(np.abs(wanted)))
               for change, wanted in changes)


def measure(impl: str, options: Options) -> list[dict]:
    size = SMOKE_BATCH if options.smoke else BATCH
    batches = benchlib.batches(benchlib.mnist(size * BATCHES), size, BATCHES)
    return [measure_net(impl, net, batches, options) for net in NETS.values()]


def measure_net(impl: str, net: Net, batches: list[dict], options: Options) -> dict:
    run = trainer(impl, net)
    prepared = [run.prepare(feeds(net, batch, net.keep_prob)) for batch in batches]
    timing = benchlib.time_calls(lambda i: run.step(prepared[i % len(prepared)]), options)
    off = deviation(impl, net, batches)
    return {"case": net.name, "deviation": off, "agrees": off <= CHECK_RTOL, **timing}


def table(records: list[dict]) -> str:
    return ("Training step at batch 100, median per step (ratio: time / tflc-llvm's; above 1, "
            "tflc is faster)\n\n" + benchlib.time_table(records, IMPLS, "network"))


if __name__ == "__main__":
    benchlib.child_main()
