"""What a module lower.py makes promises its caller: the options it was compiled with and the
entry function's signature. Apart from the code generator, so that a process loading cached code
(jit.py, cache.py) need not import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.types import Dim, eval_dim

SCRATCH_ALIGN = 64  # bytes: a cache line, and the widest vector load
# what the Python-callable entry calls, through globals named "tflc.NAME" that the loader sets:
# CPython's C API functions, and None
PYTHON_API = ("PyLong_AsSsize_t", "PyEval_SaveThread", "PyEval_RestoreThread", "Py_IncRef",
              "Py_None")


@dataclass(frozen=True)
class Options:
    fast_math: bool = False  # reassociate float sums/products (vectorised reductions)
    fma: bool = True  # matmul steps and math functions use fused multiply-adds (CPU has FMA)
    vector_bytes: int = 32  # the widest vector registers (AVX2: 32, AVX-512: 64)
    masked_tails: bool = False  # loops end with a masked vector step (AVX-512's mask registers)
    threads: bool = False  # emit kernels that can run on several threads (threads.py)
    parallel_work: int = 1 << 20  # element operations below which a kernel stays on one thread
    # where a NumPy array object keeps its data pointer, when the caller checked it (jit.py):
    # then the module also has an entry taking the arrays themselves (`Signature.boxed`)
    array_data_offset: int | None = None


@dataclass(frozen=True)
class Signature:
    """What the caller of the entry function needs to know."""

    entry: str
    dims: tuple[str, ...]
    args: tuple[str, ...]  # dtypes
    outputs: tuple[tuple[tuple[Dim, ...], str], ...]  # (shape, dtype)
    scratch: tuple[Dim, ...]  # the bytes of each scratch slot, before alignment
    in_place: tuple[tuple[int, int], ...] = ()  # (output, argument): written into the argument
    boxed: str | None = None  # the CPython function taking NumPy arrays (lower.py)

    def scratch_bytes(self, sizes: dict[str, int]) -> int:
        return sum(align(eval_dim(d, sizes)) for d in self.scratch)


def threads_global(function: str) -> str:
    return f"{function}.threads"


def align(nbytes: int) -> int:
    return -(-nbytes // SCRATCH_ALIGN) * SCRATCH_ALIGN
