"""The pass manager: runs passes by name, in order, and records what each one did.

A pass is a pure function `Function -> Function` named after its module: `passes/prune.py`
defines `prune`. A pipeline is a list of such names, so `tflc dump --after NAME` and
`--print-after-all` can refer to passes without any table to keep in sync. Each pass's time is
always measured (it costs nothing); its output IR is printed only where asked for, since printing
a large function is not free.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..ir.core import Function
from ..ir.errors import Error, did_you_mean
from ..ir.printer import print_function
from ..ir.verifier import VerifyError, verify

Pass = Callable[[Function], Function]


def load_pass(name: str) -> Pass:
    """The pass called `name`: the function of that name in the module `passes/<name>.py`."""
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.{name}":
            raise  # the pass exists but imports something missing: a bug, not a bad name
        raise Error(f"unknown pass '{name}'") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise Error(f"unknown pass '{name}'")
    return function


@dataclass(frozen=True)
class PassRecord:
    name: str
    seconds: float
    ir: str | None = None  # the function printed after the pass, where asked for
    changed: bool = True  # whether that printed IR differs from the pass's input


@dataclass(frozen=True)
class PipelineRun:
    """A pipeline's result: the final function, the printed input (where asked) and one record
    per pass."""

    function: Function
    input_ir: str | None
    records: tuple[PassRecord, ...]

    def dumps(self) -> str:
        """The IR that `print_after` asked for, each dump under a header naming its pass.

        With `print_after="all"` the input comes first, then only the passes that changed it.
        """
        parts = []
        if self.input_ir is not None:
            parts.append(f"// ----- entry before passes -----\n{self.input_ir}")
        parts += [f"// ----- after {r.name} -----\n{r.ir}"
                  for r in self.records if r.ir is not None and r.changed]
        return "\n\n".join(parts) + "\n" if parts else ""

    def timing_table(self) -> str:
        total = sum(r.seconds for r in self.records)
        width = max([len(r.name) for r in self.records] + [len("total")])
        lines = [f"{'pass'.ljust(width)}  {'ms':>9}"]
        lines += [f"{r.name.ljust(width)}  {r.seconds * 1e3:9.3f}" for r in self.records]
        lines.append(f"{'total'.ljust(width)}  {total * 1e3:9.3f}")
        return "\n".join(lines) + "\n"


def run_pipeline(func: Function, passes: Sequence[str], *, verify: bool = False,
                 print_after: str | None = None) -> PipelineRun:
    """Runs `passes` (names) over `func`.

    `verify` checks the IR before the first pass and after every pass (a failure is a compiler
    bug, raised as `VerifyError` with the offending IR). `print_after` is None, `"all"` (record
    the IR after every pass that changed it) or a pass name (record the IR after that pass).
    """
    passes = list(passes)
    if print_after not in (None, "all") and print_after not in passes:
        raise Error(f"no pass '{print_after}' in the pipeline ({', '.join(passes)})",
                    hint=did_you_mean(print_after, passes))
    functions = [load_pass(name) for name in passes]
    if verify:
        _verify(func, "in the pipeline's input")
    input_ir = print_function(func) if print_after == "all" else None
    previous = input_ir
    records = []
    for name, function in zip(passes, functions):
        start = time.perf_counter()
        func = function(func)
        seconds = time.perf_counter() - start
        if verify:
            _verify(func, f"after pass '{name}'")
        ir, changed = None, True
        if print_after in ("all", name):
            ir = print_function(func)
            changed = previous is None or ir != previous
            previous = ir
        records.append(PassRecord(name, seconds, ir, changed))
    return PipelineRun(func, input_ir, tuple(records))


def _verify(func: Function, where: str) -> None:
    try:
        verify(func)
    except VerifyError as e:
        raise VerifyError(f"invalid IR {where}: {e}\n{print_function(func)}") from e
