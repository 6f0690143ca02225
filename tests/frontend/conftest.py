"""Helpers for the frontend tests, as fixtures: parse a program, read its IR back as
S-expressions, and evaluate its outputs with the ops' NumPy references."""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

from tflc.frontend import parse_source
from tflc.ir import Builder, Error, Module
from tflc.ir.printer import format_array
from tflc.ir.registry import get
from tflc.ir.types import eval_dim


def _parse(text: str, filename: str = "test.tfl") -> Module:
    return parse_source(textwrap.dedent(text), filename)


def _error(text: str, filename: str = "test.tfl") -> Error:
    with pytest.raises(Error) as info:
        _parse(text, filename)
    return info.value


def _sexpr(module: Module, label: str, step: str | None = None) -> str:
    """The expression that computes output `label` (of `step`), as `(op[attrs] operand ...)`;
    arguments and named values other than the root are written by name, constants by value."""
    func = module.function("model")
    producers = {id(r): op for op in func.ops for r in op.results}

    def show(value, root=False) -> str:
        op = producers.get(id(value))
        if op is None or (value.name and not root):
            return value.name
        if op.opcode == "const":
            return f"{format_array(op.attrs['value'])}:{value.type.dtype}"
        attrs = {k: v for k, v in op.attrs.items() if v is not None}
        head = op.opcode + ("" if not attrs else "[" + ", ".join(
            f"{k}={v}" for k, v in attrs.items()) + "]")
        return "(" + " ".join([head] + [show(v) for v in op.operands]) + ")"

    return show(func.output(label, step).value, root=True)


def _evaluate(module: Module, fetch: str, step: str | None = None, **feeds) -> np.ndarray:
    """Output `fetch` (of `step` when given), computed op by op from the NumPy references;
    composites are expanded first. Feeds name inputs, params and state."""
    func = module.function("model")
    values: dict[int, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for arg in func.args:
        array = np.asarray(feeds[arg.name])
        for dim, size in zip(arg.type.shape, array.shape):
            if isinstance(dim, str):
                sizes[dim] = size
        values[id(arg)] = array
    target = func.output(fetch, step).value
    needed = {id(target)}
    for op in reversed(func.ops):  # only what the fetch needs: grad ops have no reference
        if id(op.result) in needed:
            needed.update(id(v) for v in op.operands)
    for op in func.ops:
        if id(op.result) in needed:
            _run(op, values, sizes)
    return values[id(target)]


def _run(op, values, sizes) -> None:
    opdef = get(op.opcode)
    if op.opcode == "const":
        values[id(op.result)] = op.attrs["value"]
        return
    if opdef.kind == "composite":
        b = Builder()
        result = opdef.expand(b, op.operands, op.attrs)
        for inner in b.ops:
            _run(inner, values, sizes)
        values[id(op.result)] = values[id(result)]
        return
    attrs = dict(op.attrs)
    if "out_shape" in inspect.signature(opdef.reference).parameters:
        attrs["out_shape"] = tuple(eval_dim(d, sizes) for d in op.result.type.shape)
    result = opdef.reference(*(values[id(v)] for v in op.operands), **attrs)
    values[id(op.result)] = np.asarray(result)


@pytest.fixture
def parse():
    return _parse


@pytest.fixture
def error():
    return _error


@pytest.fixture
def sexpr():
    return _sexpr


@pytest.fixture
def evaluate():
    return _evaluate
