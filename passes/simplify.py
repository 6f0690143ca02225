"""`simplify`: constant folding, algebraic identities, CSE and the log-softmax stability rewrite.

One sweep walks the ops in order with every operand already replaced by its simplified value, so
a rule sees simplified inputs and most functions reach the fixpoint in one sweep; a second sweep
confirms it (the loop is capped, and hitting the cap is a compiler bug). Ops left unused by the
rewrites are dropped; arguments are not (that is `prune`'s job).

Results never change, with one documented exception, the stability rewrite: `log(softmax(x))`
becomes `log_softmax(x)`, which is what makes `-sum(y * log(softmax(z)))` the stable
cross-entropy with logits (docs/passes.md). The identities are exact in IEEE arithmetic:

- `x * 1`, `1 * x`, `x / 1`, `neg(neg(x))`, no-op casts and lossless round-trip casts;
- `x + 0` for integers, but for floats only `x + -0.0` and `x - 0.0` (`-0.0 + 0.0` is `+0.0`);
- `x - x` → 0 for integers only (`inf - inf` and `NaN - NaN` are NaN);
- no reassociation: `(a + b) + c` is never regrouped, and constants fold only where all
  operands are constants.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..ir import Builder, Function, Op, Output, Value, print_function
from ..ir.ops.shape import permutation
from ..ir.registry import broadcast_shapes, get
from ..ir.types import INT_DTYPES, NUMPY_DTYPES
from .inline import rename_value

MAX_SWEEPS = 8
# Results of more elements stay computed: a big literal bloats the IR and the generated code.
FOLD_LIMIT = 1024
# (from, to) dtypes where to holds every value of from, so cast(cast(x, to), from) is x.
LOSSLESS_CASTS = {("f32", "f64"), ("i32", "i64"), ("i32", "f64"), ("bool", "i32"),
                  ("bool", "i64"), ("bool", "f32"), ("bool", "f64")}


def simplify(func: Function) -> Function:
    """A new function computing the same outputs with fewer or cheaper ops."""
    for _ in range(MAX_SWEEPS):
        sweep = _Sweep(func.args)
        for op in func.ops:
            sweep.visit(op)
        outputs = tuple(replace(out, value=sweep.lookup(out.value)) for out in func.outputs)
        simplified = func.replace(ops=_live_ops(sweep.ops, outputs), outputs=outputs)
        if not sweep.changed:
            return simplified
        func = simplified
    raise RuntimeError(f"simplify: no fixpoint after {MAX_SWEEPS} sweeps (a rule undoes "
                       f"another):\n{print_function(func)}")


def _live_ops(ops: list[Op], outputs: tuple[Output, ...]) -> tuple[Op, ...]:
    """`ops` without those whose results nothing uses."""
    used = {out.value for out in outputs}
    live = []
    for op in reversed(ops):
        if any(r in used for r in op.results):
            live.append(op)
            used.update(op.operands)
    return tuple(reversed(live))


class _Sweep:
    """One pass over the ops: `ops` is the new list, `values` maps replaced values to theirs."""

    def __init__(self, args: tuple[Value, ...]):
        self.args = args
        # the arguments each value is computed from (an argument: itself)
        self.sources: dict[Value, frozenset[Value]] = {a: frozenset((a,)) for a in args}
        self.ops: list[Op] = []
        self.values: dict[Value, Value] = {}
        self.producers: dict[Value, Op] = {}
        self.seen: dict[tuple, Op] = {}  # CSE: an op's key → the first op with that key
        self.changed = False

    def lookup(self, value: Value) -> Value:
        return self.values.get(value, value)

    def producer(self, value: Value, opcode: str | None = None) -> Op | None:
        """The op defining `value` (None for arguments), if it is an `opcode` op."""
        op = self.producers.get(value)
        return op if op is not None and opcode in (None, op.opcode) else None

    def constant(self, value: Value) -> np.ndarray | None:
        op = self.producer(value, "const")
        return None if op is None else op.attrs["value"]

    def visit(self, op: Op) -> None:
        operands = tuple(self.lookup(v) for v in op.operands)
        if operands != op.operands:
            op = replace(op, operands=operands)
        if op.region is None and self._rewrite(op):
            return
        key = _cse_key(op)
        first = self.seen.get(key) if key is not None else None
        if first is not None:
            self.values.update(zip(op.results, first.results))
            self.changed = True
            return
        if key is not None:
            self.seen[key] = op
        self.ops.append(op)
        self.producers.update((r, op) for r in op.results)
        sources = frozenset().union(*(self.sources[v] for v in op.operands))
        self.sources.update((r, sources) for r in op.results)

    def _rewrite(self, op: Op) -> bool:
        """Applies the first rule that fires; the ops it builds are visited in turn."""
        for rule in RULES.get(op.opcode, ()) + GENERIC_RULES:
            b = Builder(loc=op.loc)
            value = rule(self, op, b)
            if value is None:
                continue
            assert value.type == op.result.type, (rule.__name__, value.type, op.result.type)
            built, value = rename_value(b.ops, value, op.result.name)
            for new in built:
                self.visit(new)
            self.values[op.result] = self.lookup(value)
            self.changed = True
            return True
        return False


def _cse_key(op: Op) -> tuple | None:
    if op.region is not None:
        return None
    return (op.opcode, op.operands, tuple((k, _frozen(v)) for k, v in sorted(op.attrs.items())))


def _frozen(value):
    """A hashable stand-in for an attribute value: arrays by dtype, shape and bytes (so -0.0
    and 0.0 differ), lists and tuples alike (the frontend writes lists, the parser tuples)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_frozen(v) for v in value))
    return (type(value).__name__, repr(value))


# -- rules: each returns the value replacing op's result, or None ----------------------------

Rule = Callable[[_Sweep, Op, Builder], "Value | None"]


def fold_constants(s: _Sweep, op: Op, b: Builder) -> Value | None:
    """An op of constants, computed now with its NumPy reference (small results only)."""
    opdef = get(op.opcode)
    if opdef.reference is None or op.opcode == "const" or not op.operands:
        return None
    arrays = [s.constant(v) for v in op.operands]
    shape = op.result.type.shape
    if any(a is None for a in arrays) or not all(isinstance(d, int) for d in shape) \
            or int(np.prod(shape)) > FOLD_LIMIT:
        return None
    kwargs = dict(op.attrs)
    if "out_shape" in inspect.signature(opdef.reference).parameters:
        kwargs["out_shape"] = tuple(shape)
    with np.errstate(all="ignore"):
        value = opdef.reference(*arrays, **kwargs)
    return b.const(np.asarray(value, NUMPY_DTYPES[op.result.type.dtype]), op.result.type.dtype)


def fold_shape(s: _Sweep, op: Op, b: Builder) -> Value | None:
    """`shape` of a dim known at compile time is a constant; of a symbolic one, it is read from
    an argument of that size that the value is computed from (so no other input has to be fed),
    and keeps no computed value alive just to be measured."""
    x = op.operands[0]
    size = x.type.shape[op.attrs["axis"]]
    if isinstance(size, int):
        return b.const(size, "i64")
    if x in s.args:
        return None
    for arg in s.args:
        if arg in s.sources[x] and size in arg.type.shape:
            return b.emit("shape", arg, axis=arg.type.shape.index(size))
    return None


def _is_splat(s: _Sweep, value: Value, number: float, negative_zero: bool = False) -> bool:
    """`value` is a constant whose every element is `number` (with that sign, for a zero)."""
    array = s.constant(value)
    if array is None or array.size == 0 or not np.all(array == number):
        return False
    return number != 0 or not value.type.is_float or bool(np.all(np.signbit(array)
                                                                  == negative_zero))


def _keep(op: Op, x: Value) -> Value | None:
    """`x` in place of op's result, when that changes no type (no hidden broadcast)."""
    return x if x.type == op.result.type else None


def _neutral_operand(s: _Sweep, op: Op, number, *, commutes: bool, negative_zero=False):
    a, other = op.operands
    if _is_splat(s, other, number, negative_zero):
        return _keep(op, a)
    if commutes and _is_splat(s, a, number, negative_zero):
        return _keep(op, other)
    return None


def mul_by_one(s, op, b):
    return _neutral_operand(s, op, 1, commutes=True)


def div_by_one(s, op, b):
    return _neutral_operand(s, op, 1, commutes=False)


def add_zero(s, op, b):
    """x + 0 for integers; for floats only x + -0.0, which keeps x's sign of zero."""
    return _neutral_operand(s, op, 0, commutes=True, negative_zero=op.result.type.is_float)


def sub_zero(s, op, b):
    return _neutral_operand(s, op, 0, commutes=False, negative_zero=False)


def sub_self(s, op, b):
    """x - x is 0 for integers (for floats it is NaN where x is inf or NaN)."""
    a, other = op.operands
    if a is not other or op.result.type.dtype not in INT_DTYPES:
        return None
    zero = b.const(0, op.result.type.dtype)
    shape = op.result.type.shape
    return b.emit("broadcast_to", zero, shape=list(shape)) if shape else zero


def double_negation(s, op, b):
    inner = s.producer(op.operands[0], "neg")
    return None if inner is None else inner.operands[0]


def transpose_of_transpose(s, op, b):
    """Two transposes compose into one, or into nothing when they undo each other."""
    x = op.operands[0]
    outer = permutation(x.type, op.attrs["perm"])
    inner = s.producer(x, "transpose")
    if inner is None:
        return x if outer == list(range(len(outer))) else None
    source = inner.operands[0]
    composed = [permutation(source.type, inner.attrs["perm"])[i] for i in outer]
    if composed == list(range(len(composed))):
        return source
    return b.emit("transpose", source, perm=composed)


def collapse_repeated(s, op, b):
    """A reshape (or broadcast_to) to its operand's shape is nothing; one of another of the same
    kind is one, straight from the inner one's operand."""
    x = op.operands[0]
    if x.type == op.result.type:
        return x
    inner = s.producer(x, op.opcode)
    if inner is None:
        return None
    return _keep(op, inner.operands[0]) or b.emit(op.opcode, inner.operands[0],
                                                  shape=list(op.result.type.shape))


def broadcast_of_reshape(s, op, b):
    """broadcast_to(reshape(x)) is broadcast_to(x) when the reshape only put 1s in front, or x
    has a single element: either way every element of the result is the same element of x."""
    inner = s.producer(op.operands[0], "reshape")
    if inner is None:
        return None
    x = inner.operands[0]
    padded = inner.result.type.shape[:inner.result.type.rank - x.type.rank]
    if not (_one_element(x) or inner.result.type.shape[len(padded):] == x.type.shape
            and all(d == 1 for d in padded)):
        return None
    return b.emit("broadcast_to", x, shape=list(op.result.type.shape))


def reshape_of_broadcast(s, op, b):
    """A reshape of a broadcast single element is that element broadcast to the new shape."""
    inner = s.producer(op.operands[0], "broadcast_to")
    if inner is None or not _one_element(inner.operands[0]):
        return None
    return b.emit("broadcast_to", inner.operands[0], shape=list(op.result.type.shape))


def _one_element(x: Value) -> bool:
    return all(d == 1 for d in x.type.shape)


def select_constant(s, op, b):
    """where(c, a, b) with c the same constant everywhere is a or b (if no broadcast hides)."""
    cond = s.constant(op.operands[0])
    if cond is None or cond.size == 0 or not (cond.all() or not cond.any()):
        return None
    return _keep(op, op.operands[1] if cond.all() else op.operands[2])


def unary_of_broadcast(s, op, b):
    """f(broadcast_to(x)) → broadcast_to(f(x)) for elementwise f of one operand: f runs once
    per element of x instead of once per copy."""
    if get(op.opcode).kind != "elementwise" or len(op.operands) != 1:
        return None
    inner = s.producer(op.operands[0], "broadcast_to")
    if inner is None:
        return None
    applied = b.emit(op.opcode, inner.operands[0], **op.attrs)
    return b.emit("broadcast_to", applied, shape=list(op.result.type.shape))


def no_op_cast(s, op, b):
    """A cast to the same dtype, or back through a wider dtype that held every value."""
    x = op.operands[0]
    if x.type == op.result.type:
        return x
    inner = s.producer(x, "cast")
    if inner is not None and inner.operands[0].type == op.result.type \
            and (op.result.type.dtype, x.type.dtype) in LOSSLESS_CASTS:
        return inner.operands[0]
    return None


def implicit_broadcast(s, op, b):
    """An elementwise op broadcasts its operands itself: `mul(broadcast_to(c, [N,10]), y)` is
    `mul(c, y)` when y already gives the result its shape (a scalar broadcast, typically)."""
    if get(op.opcode).kind != "elementwise":
        return None
    operands = list(op.operands)
    for i, v in enumerate(operands):
        inner = s.producer(v, "broadcast_to")
        if inner is None:
            continue
        trial = operands[:i] + [inner.operands[0]] + operands[i + 1:]
        if broadcast_shapes(*(t.type.shape for t in trial)) == op.result.type.shape:
            operands = trial
    if operands == list(op.operands):
        return None
    return b.emit(op.opcode, *operands, **op.attrs)


def log_of_softmax(s, op, b):
    """log(e / sum(e)) with e = exp(z) (softmax's expansion) → z - log(sum(e)), log_softmax's:
    the naive form is -inf where a probability underflows to 0, and `0 * -inf` is the NaN of
    the tutorial cross-entropy."""
    quotient = s.producer(op.operands[0], "div")
    if quotient is None:
        return None
    e, total = quotient.operands
    exp = s.producer(e, "exp")
    if exp is None or not _is_sum_of(s, total, e):
        return None
    return b.emit("sub", exp.operands[0], b.emit("log", total))


def _is_sum_of(s: _Sweep, total: Value, e: Value) -> bool:
    """`total` is a sum of `e`, possibly reshaped or broadcast back to e's shape."""
    op = s.producer(total)
    while op is not None and op.opcode in ("reshape", "broadcast_to"):
        op = s.producer(op.operands[0])
    return op is not None and op.opcode == "sum" and op.operands[0] is e


RULES: dict[str, tuple[Rule, ...]] = {
    "shape": (fold_shape,),
    "mul": (mul_by_one,),
    "div": (div_by_one,),
    "add": (add_zero,),
    "sub": (sub_zero, sub_self),
    "neg": (double_negation,),
    "transpose": (transpose_of_transpose,),
    "reshape": (collapse_repeated, reshape_of_broadcast),
    "broadcast_to": (collapse_repeated, broadcast_of_reshape),
    "where": (select_constant,),
    "cast": (no_op_cast,),
    "log": (log_of_softmax,),
}
GENERIC_RULES: tuple[Rule, ...] = (fold_constants, implicit_broadcast, unary_of_broadcast)
