"""The host CPU as an LLVM target: machine, O3 pipeline, assembly.

The target machine gets the host's CPU name AND its feature list: some VMs report a CPU model
(`znver4`) whose features they do not all expose, and the name alone makes LLVM emit
instructions the machine cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm


@cache
def initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@dataclass(frozen=True)
class Target:
    triple: str
    cpu: str
    features: str  # LLVM's "+avx2,-avx512f,..." list

    def has(self, feature: str) -> bool:
        return f"+{feature}" in self.features.split(",")

    @property
    def data_layout(self) -> str:
        return data_layout(self)

    def machine(self) -> llvm.TargetMachine:
        """A new target machine: an execution engine takes ownership of the one it is given."""
        initialize()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                            codemodel="jitdefault", jit=True)


@cache
def host() -> Target:
    initialize()
    return Target(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                  llvm.get_host_cpu_features().flatten())


@cache
def data_layout(target: Target) -> str:
    return str(target.machine().target_data)


def optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """O3 with the new pass manager, loop and SLP vectorisation on."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)
