"""Threads for the kernels: OpenMP's runtime, libgomp, which the generated code calls directly
(`GOMP_parallel`, `omp_get_thread_num`, `omp_get_num_threads`, `GOMP_barrier`; kernels.py).

libgomp comes with GCC on every Linux machine, has a C ABI that LLVM IR can call without a
compiler's help, and keeps its team of threads alive between parallel regions. Its threads
spin for a while after each region before they sleep; on a machine whose cores are shared
(with other processes, or with Python's own thread) that spinning steals the cores the work
needs, so unless the user chose a policy the threads sleep at once (`OMP_WAIT_POLICY=passive`,
read when libgomp loads). docs/llvm.md has the measurements.
"""

from __future__ import annotations

import ctypes.util
import os
from functools import cache

import llvmlite.binding as llvm

from ...ir.errors import Error


@cache
def runtime() -> bool:
    """Loads libgomp into the process, where MCJIT finds its symbols; False if it is missing
    (kernels then run on one thread)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        llvm.load_library_permanently(ctypes.util.find_library("gomp") or "libgomp.so.1")
    except RuntimeError:
        return False
    return True


def default_count() -> int:
    """`TFLC_NUM_THREADS`, else the cores this process may run on."""
    text = os.environ.get("TFLC_NUM_THREADS")
    if text is None:
        return len(os.sched_getaffinity(0))
    if not text.strip().isdigit() or int(text) < 1:
        raise Error(f"TFLC_NUM_THREADS must be a positive integer, got {text!r}")
    return int(text)
