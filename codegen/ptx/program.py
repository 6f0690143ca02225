"""From a `Function` to a `Program` (PTX text and its launch plan), with no GPU needed
(`runtime.cuda.compile` loads a program on the GPU).

    program = build(func, "sm_90")         # PTX for sm_90 at the arch's PTX version
    print(emit(func, "ptx", arch="sm_80"))  # or "nvvm" (as generated), "nvvm-opt" (after O3)
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.core import Function
from ...ir.errors import Error
from .lower import lower
from .plan import Plan
from .target import DEFAULT_ARCH, check_arch, emit_ptx, finish, ptx_version

EMIT_KINDS = ("ptx", "nvvm", "nvvm-opt")


@dataclass(frozen=True)
class Program:
    """Everything the GPU runtime needs: PTX for one architecture and PTX version, and the
    plan that launches its kernels."""

    name: str
    arch: str
    ptx_version: tuple[int, int]
    ptx: str
    plan: Plan


def build(func: Function, arch: str = DEFAULT_ARCH, ptx: tuple[int, int] | None = None) -> Program:
    """PTX for `arch`, at PTX ISA version `ptx` (default: the arch's minimum)."""
    version = ptx or ptx_version(check_arch(arch))
    lowered = lower(func, arch)
    module = finish(str(lowered.module), arch, version)
    return Program(func.name, arch, version, emit_ptx(module, arch, version), lowered.plan)


def emit(func: Function, kind: str = "ptx", arch: str = DEFAULT_ARCH) -> str:
    """The NVPTX LLVM IR as generated (`nvvm`), after libdevice and O3 (`nvvm-opt`), or the PTX
    (`ptx`, headed by the launch plan as comments)."""
    if kind not in EMIT_KINDS:
        raise Error(f"unknown emit kind '{kind}' (one of: {', '.join(EMIT_KINDS)})")
    check_arch(arch)
    if kind == "ptx":
        program = build(func, arch)
        plan = "".join(f"// {line}\n" for line in program.plan.describe().splitlines())
        return f"// launches, in order:\n{plan}\n{program.ptx}"
    lowered = lower(func, arch)
    if kind == "nvvm":
        return str(lowered.module)
    return str(finish(str(lowered.module), arch, ptx_version(arch)))

