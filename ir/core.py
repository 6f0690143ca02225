"""The IR's data: values, ops, functions and modules.

Values and ops compare by identity: a value is defined once (SSA) and every use holds the same
object. Passes never mutate these objects; they build new ones (`Function.replace`, `Builder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .errors import Loc
from .types import TensorType


@dataclass(eq=False, frozen=True)
class Value:
    """An SSA value. `name` is the user's name where there is one (`hidden_out`, `fc1.W`)."""

    type: TensorType
    name: str | None = None

    def __repr__(self) -> str:
        return f"Value({self.name or hex(id(self))}: {self.type})"


@dataclass(eq=False, frozen=True)
class Op:
    """One operation: `results = opcode[attrs](operands)`, with an optional body (fused ops)."""

    opcode: str
    operands: tuple[Value, ...]
    results: tuple[Value, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    loc: Loc | None = None
    region: Function | None = None

    @property
    def result(self) -> Value:
        assert len(self.results) == 1, self.opcode
        return self.results[0]


@dataclass(frozen=True)
class Output:
    """What a function returns: a fetchable name, or (with `step`) a step's new value of `label`."""

    label: str
    value: Value
    step: str | None = None


@dataclass(eq=False, frozen=True)
class Function:
    name: str
    dims: tuple[str, ...]
    args: tuple[Value, ...]
    ops: tuple[Op, ...]
    outputs: tuple[Output, ...]

    def replace(self, **changes) -> Function:
        return replace(self, **changes)

    def output(self, label: str, step: str | None = None) -> Output | None:
        for out in self.outputs:
            if out.label == label and out.step == step:
                return out
        return None

    @property
    def fetchable(self) -> tuple[str, ...]:
        return tuple(out.label for out in self.outputs if out.step is None)

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(out.step for out in self.outputs if out.step is not None))


@dataclass(frozen=True)
class Init:
    """How a param or state starts: `kind` is an initializer name or `value` (a literal)."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, name: str, default=None):
        return dict(self.args).get(name, default)


@dataclass(frozen=True)
class Decl:
    """A model-level declaration: an input, a param or a state, with its type and initializer."""

    kind: str  # "input" | "param" | "state"
    name: str
    type: TensorType
    init: Init | None = None
    loc: Loc | None = None


@dataclass(frozen=True)
class Module:
    name: str
    decls: tuple[Decl, ...]
    functions: tuple[Function, ...]

    def decl(self, name: str) -> Decl | None:
        for d in self.decls:
            if d.name == name:
                return d
        return None

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)

    def replace(self, **changes) -> Module:
        return replace(self, **changes)

    def with_function(self, func: Function) -> Module:
        names = [f.name for f in self.functions]
        if func.name not in names:
            return replace(self, functions=self.functions + (func,))
        functions = list(self.functions)
        functions[names.index(func.name)] = func
        return replace(self, functions=tuple(functions))
