"""From a module to one compiled entry: pick the outputs asked for, then run the passes.

An entry is a set of fetches, optionally with one step whose updates it also computes. Each
entry is pruned for exactly what it needs, so fetching `accuracy` computes nothing of a loss's
gradient.

An entry compiled before is read back from the cache directory (ir/diskcache.py: ~1 ms instead
of ~10 for a tutorial network's step), keyed by what the passes see: the selected function's IR
text and the source lines of its locations (which the text leaves out), the pipeline, the code
of the passes and of the IR, and NumPy's version (the passes fold constants with it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..ir import diskcache
from ..ir.core import Function, Module, Output
from ..ir.errors import Error, did_you_mean
from ..ir.printer import print_function
from .manager import run_pipeline

# The passes every entry goes through, in order (each is `passes/<name>.py`).
DEFAULT_PIPELINE = ("inline", "autodiff", "simplify", "prune", "fuse", "plan_memory")


def select_entry(module: Module, fetches: Sequence[str], step: str | None = None) -> Function:
    """`@model` returning only `fetches` (defined names, or decls: inputs, params, state) and,
    with `step`, that step's updates after them."""
    model = module.function("model")
    outputs = [_fetch(module, model, name) for name in fetches]
    if step is not None:
        if step not in model.steps:
            raise Error(f"unknown step '{step}'" + _listing("steps", model.steps),
                        hint=did_you_mean(step, model.steps))
        outputs += [out for out in model.outputs if out.step == step]
    return model.replace(outputs=tuple(outputs))


def compile_entry(module: Module, fetches: Sequence[str], step: str | None = None) -> Function:
    entry = select_entry(module, fetches, step)
    return diskcache.remembered(
        "entry", _key(entry), lambda: run_pipeline(entry, DEFAULT_PIPELINE).function, Function)


def _key(entry: Function) -> str:
    here = Path(__file__).parent
    facts = {"function": print_function(entry), "lines": _source_lines(entry),
             "pipeline": DEFAULT_PIPELINE, "numpy": np.__version__,
             "code": diskcache.code_digest(here, here.parent / "ir")}
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def _source_lines(func: Function) -> list[str | None]:
    lines = []
    for op in func.ops:
        lines.append(op.loc and op.loc.text)
        if op.region is not None:
            lines += _source_lines(op.region)
    return lines


def _fetch(module: Module, model: Function, name: str) -> Output:
    out = model.output(name)
    if out is not None:
        return out
    for arg in model.args:
        if arg.name == name and module.decl(name) is not None:
            return Output(name, arg)
    if name in model.steps:
        raise Error(f"'{name}' is a step, not a value to fetch",
                    hint="run it as the step of the entry (step=...)")
    names = [*model.fetchable, *(d.name for d in module.decls if not d.name.startswith("__"))]
    raise Error(f"unknown name '{name}': nothing called that is defined or declared in model "
                f"{module.name}", hint=did_you_mean(name, names))


def _listing(what: str, names: Sequence[str]) -> str:
    return f" (the model's {what}: {', '.join(names)})" if names else f" (the model has no {what})"
