"""The host CPU as an LLVM target: machine, O3 pipeline, assembly.

The target machine gets the host's CPU name AND its feature list: some VMs report a CPU model
(`znver4`) whose features they do not all expose, and the name alone makes LLVM emit
instructions the machine cannot run.

Asking LLVM what the host is means loading LLVM (~30 ms), which a process that only loads cached
code as a shared library has no other use for. So LLVM's answer is kept in the cache directory
(ir/diskcache.py) under a fingerprint of what it depends on: the CPU as the kernel describes it
(/proc/cpuinfo, less what changes from one read to the next), the kernel and the LLVM build. A
machine without /proc/cpuinfo asks LLVM every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from ...ir import diskcache

# /proc/cpuinfo fields that differ between cores or reads of one machine
VOLATILE_CPUINFO = frozenset({"processor", "cpu MHz", "bogomips", "BogoMIPS", "core id",
                              "physical id", "siblings", "apicid", "initial apicid", "cpu cores"})


@cache
def initialize() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@dataclass(frozen=True)
class Target:
    triple: str
    cpu: str
    features: str  # LLVM's "+avx2,-avx512f,..." list
    llvm: str  # the version of the LLVM that generates the code

    def has(self, feature: str) -> bool:
        return f"+{feature}" in self.features.split(",")

    @property
    def data_layout(self) -> str:
        return data_layout(self)

    def machine(self):
        """A new target machine (an execution engine takes ownership of the one it is given).
        Position-independent code, so that the object code also links into a shared library;
        MCJIT's code model, whose addresses reach anywhere."""
        import llvmlite.binding as llvm

        initialize()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                            reloc="pic", codemodel="jitdefault", jit=True)


@cache
def host() -> Target:
    """The host, as LLVM sees it: from the cache directory where this machine was seen before."""
    fingerprint = host_fingerprint()
    name = diskcache.file_name("host", fingerprint) if fingerprint else None
    known = diskcache.read(name) if name else None
    if known is not None:
        try:
            return Target(**json.loads(known))
        except (ValueError, TypeError):
            pass  # made by another version of this file: asked again and overwritten
    target = detect_host()
    if name:
        diskcache.write(name, json.dumps(asdict(target)).encode())
    return target


def detect_host() -> Target:
    import llvmlite.binding as llvm

    initialize()
    return Target(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                  llvm.get_host_cpu_features().flatten(),
                  ".".join(map(str, llvm.llvm_version_info)))


def host_fingerprint() -> str | None:
    """A SHA-256 of the CPU (/proc/cpuinfo's lines that stay put, from every core), the kernel
    and the LLVM build (llvmlite's version, the size and time of its library); None where there
    is no /proc/cpuinfo or no llvmlite."""
    import llvmlite  # the package only: its version; LLVM itself is llvmlite.binding

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        binding = Path(llvmlite.__file__).parent / "binding"
        builds = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in binding.iterdir()
                        if p.name.startswith(("libllvmlite", "llvmlite.")))
    except OSError:
        return None
    if not builds:
        return None
    lines = {line.strip() for line in cpuinfo.splitlines()
             if line.strip() and line.partition(":")[0].strip() not in VOLATILE_CPUINFO}
    kernel = os.uname()
    facts = {"cpu": sorted(lines), "kernel": [kernel.sysname, kernel.release, kernel.version,
                                              kernel.machine],
             "llvmlite": llvmlite.__version__, "build": builds}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@cache
def data_layout(target: Target) -> str:
    return str(target.machine().target_data)


def optimize(module, machine) -> None:
    """O3 with the new pass manager, loop and SLP vectorisation on."""
    import llvmlite.binding as llvm

    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)
