"""Matmul at the MLP's shapes, forward and backward, against NumPy's BLAS sgemm: GFLOP/s on one
thread and on two (OPENBLAS_NUM_THREADS and TFLC_NUM_THREADS, set by run.py).

Operands are laid out as the training step has them: a weight gradient reads the activations
transposed (xᵀ @ dz), an input gradient the weights (dz @ Wᵀ); neither side copies them first
(tflc reads a transposed A through its strides and packs a transposed B; NumPy passes
transpose flags to sgemm). Both write a fresh C each call. The issue's target: tflc at >= 60%
of NumPy's GFLOP/s on one thread and on two, at the MLP's shapes (the last, mnist_relu's first
layer, shows a C whose width is not a whole number of register tiles).
"""

from __future__ import annotations

import benchlib
import numpy as np
from benchlib import Options

IMPLS = ["tflc-llvm", "numpy"]
THREADS = [1, 2]
WARMUP, REPEATS = 20, 200

# (name, layout, M, K, N): C[M, N] = A[M, K] @ B[K, N]; layout says which operand is transposed
SHAPES = [
    ("x @ W1", "nn", 100, 784, 300),
    ("h @ W2", "nn", 100, 300, 10),
    ("dz2 @ W2ᵀ", "nt", 100, 10, 300),
    ("hᵀ @ dz2", "tn", 300, 100, 10),
    ("xᵀ @ dz1", "tn", 784, 100, 300),
    ("mnist_relu: x @ W1", "nn", 100, 784, 50),  # no target: N = 50, not a whole number of tiles
]
PRODUCTS = {"nn": "a @ b", "tn": "transpose(a) @ b", "nt": "a @ transpose(b)"}


def smoke_size(dim: int) -> int:
    return dim // 20 + 1


def operands(layout: str, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if layout == "tn" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout == "nt" else (k, n), dtype=np.float32)
    return a, b


def product(impl: str, layout: str, a: np.ndarray, b: np.ndarray):
    """The call computing C = A @ B from the operands as stored."""
    if impl == "numpy":
        return {"nn": lambda: a @ b, "tn": lambda: a.T @ b, "nt": lambda: a @ b.T}[layout]
    import tflc
    source = (f"input a: f32[{', '.join(map(str, a.shape))}]\n"
              f"input b: f32[{', '.join(map(str, b.shape))}]\n"
              f"c = {PRODUCTS[layout]}\n")
    model = tflc.loads(source, "matmul.tfl", backend="llvm")
    return lambda: model.run("c", a=a, b=b)


def measure(impl: str, options: Options) -> list[dict]:
    records = []
    for name, layout, *dims in SHAPES:
        m, k, n = (smoke_size(d) for d in dims) if options.smoke else dims
        record = measure_shape(impl, layout, m, k, n, options)
        records.append({"case": f"{name} ({m}×{k}×{n})", **record})
    return records


def measure_shape(impl: str, layout: str, m: int, k: int, n: int, options: Options) -> dict:
    a, b = operands(layout, m, k, n)
    call = product(impl, layout, a, b)
    timing = benchlib.time_calls(lambda i: call(), options)
    wanted = product("numpy", layout, a.astype(np.float64), b.astype(np.float64))()
    agrees = np.allclose(call(), wanted, rtol=1e-4, atol=1e-4)
    return {"flops": 2 * m * k * n, "agrees": bool(agrees), **timing}


def table(records: list[dict]) -> str:
    cell = {(r["case"], r["impl"], r["threads"]): r for r in records}
    threads = sorted({r["threads"] for r in records})
    header = ["M×K×N (C = A @ B)"]
    for count in threads:
        header += [f"tflc, {count} thr", f"NumPy, {count} thr", "tflc / NumPy"]
    rows = []
    for case in dict.fromkeys(r["case"] for r in records):
        row = [case]
        for count in threads:
            rates = []
            for impl in IMPLS:
                r = cell.get((case, impl, count))
                rates.append(r and r["flops"] / r["seconds"] / 1e9)
                row.append("—" if r is None else f"{rates[-1]:.1f}"
                           + ("" if r["agrees"] else " ✗ disagrees"))
            row.append(f"{rates[0] / rates[1]:.0%}" if all(rates) else "—")
        rows.append(row)
    return ("Matmul, GFLOP/s from the median call (A transposed: ᵀ as stored)\n\n"
            + benchlib.markdown(header, rows))


if __name__ == "__main__":
    benchlib.child_main()
