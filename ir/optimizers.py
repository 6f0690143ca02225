"""Optimizers: `train S = sgd(loss, lr)` and friends expanded into a step's updates.

The update formulas are exactly TensorFlow 1.x's (`GradientDescentOptimizer`, `MomentumOptimizer`
with `use_nesterov`, `AdamOptimizer`), written with `grad` ops that the autodiff pass expands.
The optimizer's own variables (velocities, moments, Adam's step count) become `state` decls named
`<step>.<slot>.<param>` and `<step>.t`, starting at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .builder import Builder
from .core import Decl, Init, Op, Value
from .errors import Error, Loc
from .types import TensorType

# Each optimizer's arguments after the loss, in positional order, with their defaults
# (None: required). The frontend maps positional arguments with this table.
ARGUMENTS: dict[str, dict[str, float | bool | None]] = {
    "sgd": {"lr": None},
    "momentum": {"lr": None, "momentum": 0.9, "nesterov": False},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
STATIC = ("nesterov",)  # arguments that choose the formula: known when compiling


@dataclass
class OptimizerExpansion:
    """New `state` decls with their function args, and the step's updates (label → new value)."""

    state: list[tuple[Decl, Value]] = field(default_factory=list)
    updates: list[tuple[str, Value]] = field(default_factory=list)

    def new_state(self, name: str, type: TensorType, loc: Loc | None) -> Value:
        value = Value(type, name)
        self.state.append((Decl("state", name, type, Init("zeros"), loc), value))
        return value


def expand_optimizer(kind: str, b: Builder, loss: Value, params: list[Value],
                     hyper: dict[str, Value | float | bool], step: str,
                     loc: Loc | None) -> OptimizerExpansion:
    """The updates of step `step` training `params` (the param args) to minimise `loss`.

    `hyper` holds the user's arguments by name: scalar Values (a constant, an input, any scalar
    expression) or Python numbers; `nesterov` must be known at compile time (a Python bool or a
    bool constant). Ops are appended to `b`, each at `loc`.
    """
    if kind not in ARGUMENTS:
        raise Error(f"unknown optimizer '{kind}'", loc,
                    hint="the optimizers are " + ", ".join(ARGUMENTS))
    ops = Builder(loc)
    args = Arguments(kind, hyper, ops, b.ops, loc)
    expansion = OptimizerExpansion()
    if kind == "adam":
        t = expansion.new_state(f"{step}.t", TensorType("i64", ()), loc)
        t_next = ops.emit("add", t, ops.const(1, "i64"))
        expansion.updates.append((f"{step}.t", t_next))
    for param in params:
        grad = ops.emit("grad", loss, param)
        if kind == "sgd":
            new = _sgd(ops, param, grad, args)
        elif kind == "momentum":
            new = _momentum(ops, param, grad, args, expansion, step, loc)
        else:
            new = _adam(ops, param, grad, args, expansion, step, loc, t_next)
        expansion.updates.append((param.name, new))
    b.ops.extend(ops.ops)
    return expansion


class Arguments:
    """The optimizer's arguments checked against ARGUMENTS, each as a scalar Value of the dtype
    asked for (cast once per dtype), defaults filled in."""

    def __init__(self, kind: str, hyper: dict, ops: Builder, defined: list[Op], loc: Loc | None):
        expected = ARGUMENTS[kind]
        for name in hyper:
            if name not in expected:
                raise Error(f"{kind} has no argument '{name}'", loc,
                            hint=f"{kind} takes " + ", ".join(["loss", *expected]))
        for name, default in expected.items():
            if default is None and name not in hyper:
                raise Error(f"{kind} needs the argument '{name}'", loc)
        self.values = {**expected, **hyper}
        self.ops, self.defined, self.loc, self.kind = ops, defined, loc, kind
        self.cast: dict[tuple[str, str], Value] = {}

    def number(self, name: str, dtype: str) -> Value:
        if (name, dtype) not in self.cast:
            value = self.values[name]
            if isinstance(value, Value):
                if value.type.shape != () or value.type.dtype == "bool":
                    raise Error(f"{self.kind}: {name} must be a scalar number, "
                                f"got {value.type}", self.loc)
                value = self.ops.cast(value, dtype)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = self.ops.const(value, dtype)
            else:
                raise Error(f"{self.kind}: {name} must be a number, got {value!r}", self.loc)
            self.cast[name, dtype] = value
        return self.cast[name, dtype]

    def flag(self, name: str) -> bool:
        value = self.values[name]
        if isinstance(value, Value):  # a bool constant defined earlier in the same function
            for op in self.defined:
                if op.opcode == "const" and op.result is value and value.type.dtype == "bool" \
                        and value.type.shape == ():
                    return bool(op.attrs["value"])
        if not isinstance(value, bool):
            raise Error(f"{self.kind}: {name} must be true or false, known when compiling",
                        self.loc)
        return value


def _sgd(ops: Builder, param: Value, grad: Value, args: Arguments) -> Value:
    """var - lr * grad."""
    lr = args.number("lr", param.type.dtype)
    return ops.emit("sub", param, ops.emit("mul", lr, grad))


def _momentum(ops: Builder, param: Value, grad: Value, args: Arguments,
              expansion: OptimizerExpansion, step: str, loc: Loc | None) -> Value:
    """accum = accum * momentum + grad; var - lr * accum, or with Nesterov
    var - (grad * lr + accum * momentum * lr)."""
    dtype = param.type.dtype
    lr, momentum = args.number("lr", dtype), args.number("momentum", dtype)
    accum = expansion.new_state(f"{step}.velocity.{param.name}", param.type, loc)
    accum_next = ops.emit("add", ops.emit("mul", accum, momentum), grad)
    expansion.updates.append((accum.name, accum_next))
    if args.flag("nesterov"):
        lookahead = ops.emit("mul", ops.emit("mul", accum_next, momentum), lr)
        delta = ops.emit("add", ops.emit("mul", grad, lr), lookahead)
    else:
        delta = ops.emit("mul", accum_next, lr)
    return ops.emit("sub", param, delta)


def _adam(ops: Builder, param: Value, grad: Value, args: Arguments,
          expansion: OptimizerExpansion, step: str, loc: Loc | None, t: Value) -> Value:
    """With t the new step count:
    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    m = m + (grad - m) * (1 - beta1);  v = v + (grad**2 - v) * (1 - beta2)
    var - m * lr_t / (sqrt(v) + eps)."""
    dtype = param.type.dtype
    lr, eps = args.number("lr", dtype), args.number("eps", dtype)
    beta1, beta2 = args.number("beta1", dtype), args.number("beta2", dtype)
    one = ops.const(1, dtype)
    t = ops.cast(t, dtype)

    def one_minus(value: Value) -> Value:
        return ops.emit("sub", one, value)

    bias = ops.emit("div", ops.emit("sqrt", one_minus(ops.emit("pow", beta2, t))),
                    one_minus(ops.emit("pow", beta1, t)))
    lr_t = ops.emit("mul", lr, bias)
    moments = []
    for slot, beta, target in (("m", beta1, grad), ("v", beta2, ops.emit("square", grad))):
        moment = expansion.new_state(f"{step}.{slot}.{param.name}", param.type, loc)
        moment_next = ops.emit("add", moment,
                               ops.emit("mul", ops.emit("sub", target, moment), one_minus(beta)))
        expansion.updates.append((moment.name, moment_next))
        moments.append(moment_next)
    m, v = moments
    denominator = ops.emit("add", ops.emit("sqrt", v), eps)
    return ops.emit("sub", param, ops.emit("div", ops.emit("mul", m, lr_t), denominator))
