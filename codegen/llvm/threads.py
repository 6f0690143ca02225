"""Threads for the kernels: OpenMP's runtime, libgomp, which the generated code calls directly
(`GOMP_parallel`, `omp_get_thread_num`, `omp_get_num_threads`, `GOMP_barrier`; kernels.py).

libgomp comes with GCC on every Linux machine, has a C ABI that LLVM IR can call without a
compiler's help, and keeps its team of threads alive between parallel regions.

Waiting: after a region, libgomp's threads spin before they sleep. Spinning for good takes the
cores other work needs on a shared machine, and sleeping at once makes every kernel of a step
pay for waking the team; unless the user chose (`OMP_WAIT_POLICY`, `GOMP_SPINCOUNT`), the
threads spin briefly (`GOMP_SPINCOUNT=10000`), which keeps them awake across the kernels of one
run and asleep between runs. Measured on the shared 2-core machine, the MNIST 784-300-10
training step at batch 100: 1.5 ms on one thread; on two, 1.2 ms sleeping at once, 0.95 ms
with the brief spin, 0.9 ms spinning for good (which also crashed at exit: a thread still
spinning while the libraries unload). docs/llvm.md has the numbers.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

from ...ir.errors import Error


@cache
def runtime() -> bool:
    """Loads libgomp into the process with its symbols global, where the compiled code finds
    them (loaded by MCJIT or as a shared library); False if it is missing (kernels then run on
    one thread)."""
    if "OMP_WAIT_POLICY" not in os.environ:  # read by libgomp when it loads
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    try:
        _load_gomp()
    except OSError:
        return False
    os.register_at_fork(after_in_child=_forked)
    return True


def _load_gomp() -> None:
    """By its usual name, else where ctypes.util.find_library finds it (it runs ldconfig: a few
    milliseconds)."""
    try:
        ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        from ctypes.util import find_library

        ctypes.CDLL(find_library("gomp") or "libgomp.so.1", mode=ctypes.RTLD_GLOBAL)


# libgomp cannot start threads in a process forked from one that used them: the child's first
# parallel region waits forever for the parent's threads. Children run kernels on one thread.
forked = False
after_fork: list = []  # callbacks run in a forked child (jit.py resets thread counts)


def _forked() -> None:
    global forked
    forked = True
    for callback in after_fork:
        callback()


def default_count() -> int:
    """`TFLC_NUM_THREADS`, else the cores this process may run on (1 after a fork)."""
    if forked:
        return 1
    text = os.environ.get("TFLC_NUM_THREADS")
    if text is None:
        return len(os.sched_getaffinity(0))
    if not text.strip().isdigit() or int(text) < 1:
        raise Error(f"TFLC_NUM_THREADS must be a positive integer, got {text!r}")
    return int(text)
