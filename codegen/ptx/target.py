"""NVIDIA GPUs as an LLVM target: architectures, PTX ISA versions, libdevice, and PTX emission.

LLVM's NVPTX backend turns a module into PTX text; the CUDA driver compiles that for the GPU
when the module is loaded. Two versions have to agree:

- the architecture (`sm_80`, `sm_90`, ...) needs at least some PTX ISA version (LLVM's default
  for the CPU name is exactly that minimum);
- the driver accepts PTX up to the version of the CUDA release it implements.

So offline builds use the architecture's minimum, and at run time the version is the newest the
driver supports (capped at what LLVM can write), with a clear error when that is too old for the
GPU's architecture.

Math functions come from libdevice (NVIDIA's bitcode library, `__nv_expf` ...), linked into each
module that calls one. An LLVM math intrinsic that NVPTX cannot lower (`llvm.exp.f32`,
`llvm.sin.f64`, ...) aborts the whole process inside LLVM, where Python cannot catch it, so the
lowering only declares functions from `VETTED` and `LIBDEVICE` and `check_declarations` refuses
anything else before LLVM sees the module.
"""

from __future__ import annotations

import os
import re
from functools import cache

import llvmlite.binding as llvm

from ...ir.errors import Error

TRIPLE = "nvptx64-nvidia-cuda"

# architecture → the PTX ISA version it needs (LLVM 22's default for that CPU name).
# sm_80 is the oldest supported: NaN-propagating max/min (`max.NaN.f32`) start there.
ARCHES = {"sm_80": (7, 0), "sm_86": (7, 1), "sm_87": (7, 4), "sm_89": (7, 8), "sm_90": (7, 8),
          "sm_100": (8, 6), "sm_120": (8, 7)}
DEFAULT_ARCH = "sm_90"
LLVM_MAX_PTX = (9, 0)  # the newest `+ptxNN` feature LLVM 22 knows

# CUDA release (the driver's API version) → the newest PTX ISA version it accepts
CUDA_PTX = {(11, 0): (7, 0), (11, 1): (7, 1), (11, 2): (7, 2), (11, 3): (7, 3), (11, 4): (7, 4),
            (11, 5): (7, 5), (11, 6): (7, 6), (11, 7): (7, 7), (11, 8): (7, 8), (12, 0): (8, 0),
            (12, 1): (8, 1), (12, 2): (8, 2), (12, 3): (8, 3), (12, 4): (8, 4), (12, 5): (8, 5),
            (12, 6): (8, 5), (12, 7): (8, 6), (12, 8): (8, 7), (12, 9): (8, 8), (13, 0): (9, 0)}

# Every function the lowering may declare, each checked by tests to pass `ptxas` on sm_80 and
# sm_90 (tests/codegen/test_ptx_target.py). Float math beyond these goes through libdevice.
VETTED = frozenset(
    [f"llvm.{name}.{t}" for name in ("sqrt", "fabs", "rint", "fma", "maximum", "minimum",
                                      "copysign") for t in ("f32", "f64")]
    + ["llvm.abs.i32", "llvm.abs.i64"]
    + [f"llvm.nvvm.read.ptx.sreg.{reg}.{axis}" for reg in ("tid", "ntid", "ctaid", "nctaid")
       for axis in "xyz"]
    + [f"llvm.nvvm.shfl.sync.{mode}.{t}" for mode in ("down", "idx") for t in ("i32", "f32")]
    + ["llvm.nvvm.barrier.cta.sync.aligned.all"])

# tflc math function → libdevice's f32 and f64 versions
LIBDEVICE = {name: (f"__nv_{name}f", f"__nv_{name}")
             for name in ("exp", "log", "tanh", "sin", "cos", "pow")}
LIBDEVICE_NAMES = frozenset(name for pair in LIBDEVICE.values() for name in pair)


def check_arch(arch: str) -> str:
    if arch not in ARCHES:
        raise Error(f"unknown GPU architecture '{arch}' (one of: {', '.join(ARCHES)})")
    return arch


def arch_of_capability(major: int, minor: int) -> str:
    """The architecture to compile for on a GPU of compute capability major.minor: its own, or
    the newest known one below it (PTX runs on later GPUs)."""
    capability = major * 10 + minor
    known = [arch for arch in ARCHES if int(arch[3:]) <= capability]
    if not known:
        raise Error(f"the GPU has compute capability {major}.{minor}; the cuda backend needs "
                    "8.0 (sm_80) or newer")
    return max(known, key=lambda arch: int(arch[3:]))


def driver_ptx(driver_version: int) -> tuple[int, int]:
    """The newest PTX version a driver accepts; `driver_version` is CUDA's number (13000 for
    CUDA 13.0). Drivers newer than the table accept at least its newest entry."""
    release = (driver_version // 1000, driver_version % 1000 // 10)
    known = [r for r in CUDA_PTX if r <= release]
    if not known:
        return (0, 0)
    return CUDA_PTX[max(known)]


def ptx_version(arch: str, driver_version: int | None = None) -> tuple[int, int]:
    """The PTX ISA version to write: the arch's minimum offline; with a driver, the newest it
    accepts (up to LLVM's newest), or an error when the driver is too old for the arch."""
    need = ARCHES[check_arch(arch)]
    if driver_version is None:
        return need
    accepted = driver_ptx(driver_version)
    if accepted < need:
        raise Error(f"the CUDA driver {format_release(driver_version)} supports PTX ≤ "
                    f"{accepted[0]}.{accepted[1]}, but {arch} needs PTX {need[0]}.{need[1]}",
                    hint="update the NVIDIA driver")
    return min(accepted, LLVM_MAX_PTX)


def format_release(driver_version: int) -> str:
    return f"{driver_version // 1000}.{driver_version % 1000 // 10}"


@cache
def initialize() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@cache
def machine(arch: str, ptx: tuple[int, int]) -> llvm.TargetMachine:
    """One target machine per (arch, PTX version): emitting PTX does not consume it."""
    initialize()
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=arch, features=f"+ptx{ptx[0]}{ptx[1]}", opt=3)


def data_layout(arch: str) -> str:
    return str(machine(arch, ARCHES[arch]).target_data)


def check_declarations(names: list[str]) -> None:
    """Refuses, as an error, what would make LLVM abort: a declared function neither vetted
    nor in libdevice. Reaching this is a bug in the lowering, not a user's mistake."""
    for name in names:
        if name not in VETTED and name not in LIBDEVICE_NAMES:
            raise Error(f"internal error in the cuda backend: '{name}' is not a vetted NVPTX "
                        "intrinsic or libdevice function")


# -- libdevice -----------------------------------------------------------------------------------

def libdevice_path() -> str:
    """`$TFLC_LIBDEVICE`, else the CUDA toolkit's `nvvm/libdevice/libdevice.10.bc` under
    `$CUDA_HOME`, `$CUDA_PATH` or `/usr/local/cuda`."""
    explicit = os.environ.get("TFLC_LIBDEVICE")
    if explicit:
        if not os.path.isfile(explicit):
            raise Error(f"TFLC_LIBDEVICE names '{explicit}', which is not a file")
        return explicit
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        path = os.path.join(root, "nvvm", "libdevice", "libdevice.10.bc")
        if os.path.isfile(path):
            return path
    raise Error("libdevice.10.bc (the CUDA toolkit's math library) was not found",
                hint="install the CUDA toolkit, or set CUDA_HOME (or TFLC_LIBDEVICE to the file)")


@cache
def libdevice_bitcode(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def link_libdevice(module: llvm.ModuleRef) -> None:
    """Links libdevice in and makes its functions internal, so O3 keeps only those used (and
    resolves their `__nvvm_reflect` queries, e.g. flush-to-zero, from the module's flags)."""
    library = llvm.parse_bitcode(libdevice_bitcode(libdevice_path()))
    library.triple = module.triple
    library.data_layout = module.data_layout
    module.link_in(library)
    for function in module.functions:
        if function.name.startswith("__nv_") and not function.is_declaration:
            function.linkage = llvm.Linkage.internal


def uses_libdevice(module: llvm.ModuleRef) -> bool:
    return any(f.is_declaration and f.name in LIBDEVICE_NAMES for f in module.functions)


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine) -> None:
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    builder = llvm.create_pass_builder(tm, tuning)
    builder.getModulePassManager().run(module, builder)


def finish(text: str, arch: str, ptx: tuple[int, int]) -> llvm.ModuleRef:
    """The generated IR parsed, verified, libdevice linked where used, and optimised."""
    module = llvm.parse_assembly(text)
    module.verify()
    if uses_libdevice(module):
        link_libdevice(module)
    optimize(module, machine(arch, ptx))
    return module


def emit_ptx(module: llvm.ModuleRef, arch: str, ptx: tuple[int, int]) -> str:
    return machine(arch, ptx).emit_assembly(module)


PTX_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def identifier(name: str) -> str:
    """A valid PTX name (letters, digits, `_`): LLVM would otherwise rename `f.hidden` itself,
    and the runtime looks kernels up by name."""
    cleaned = PTX_IDENTIFIER.sub("_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"
