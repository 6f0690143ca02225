"""The CUDA backend: a function becomes PTX (LLVM's NVPTX target, libdevice for math) and a
launch plan, run on an NVIDIA GPU through pycuda by `runtime.cuda.compile`.

    print(emit(func, "ptx", arch="sm_80"))        # no GPU needed: "ptx", "nvvm", "nvvm-opt"

See target.py for architectures, PTX versions and libdevice; lower.py for how ops become kernels
(the CPU backend's rules); kernels.py for how kernels spread work over threads; plan.py for the
host side.
"""

from .program import EMIT_KINDS, Program, build, emit

__all__ = ["EMIT_KINDS", "Program", "build", "emit"]
