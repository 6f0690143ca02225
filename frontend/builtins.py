"""The builtin functions of `.tfl` and the op each one makes (docs/ops.md).

Positional arguments fill a builtin's operands, then its attributes, in the order written here;
keywords name either. Attribute values are compile-time constants of the listed kind. Initializers
and optimizers are listed here too, though they are only meaningful in declarations and `train`.
"""

from __future__ import annotations

from dataclasses import dataclass

# What an attribute accepts, and how to say so in an error.
ATTR_KINDS = {
    "int": "an integer",
    "axes": "an integer or a list of integers",
    "bool": "true or false",
    "dtype": "a dtype (f32, f64, i32, i64 or bool)",
    "ints": "a list of integers",
    "shape": "a list of sizes (integers, -1 or symbolic dims)",
}


@dataclass(frozen=True)
class Builtin:
    """`name(operands..., attrs...)` makes op `op`.

    `required`: attributes with no default. `own_dtype`: operands whose literals keep their own
    dtype instead of taking the other operands' (`where`'s condition, class-index labels).
    `variadic`: the operand given as a list of tensors (`concat([a, b])`).
    """

    name: str
    op: str
    operands: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...] = ()
    required: tuple[str, ...] = ()
    own_dtype: tuple[str, ...] = ()
    variadic: str | None = None

    @property
    def params(self) -> tuple[str, ...]:
        return self.operands + tuple(name for name, _ in self.attrs)


def _unary(*names: str) -> list[Builtin]:
    return [Builtin(name, name, ("x",)) for name in names]


REDUCE_ATTRS = (("axis", "axes"), ("keepdims", "bool"))

_TABLE = [
    *_unary("neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "square", "sin", "cos", "tanh",
            "sigmoid", "relu", "softplus"),
    *(Builtin(name, name, ("a", "b")) for name in ("pow", "maximum", "minimum", "matmul", "mse")),
    Builtin("clip", "clip", ("x", "lo", "hi")),
    Builtin("where", "where", ("cond", "a", "b"), own_dtype=("cond",)),
    Builtin("cast", "cast", ("x",), (("dtype", "dtype"),), required=("dtype",)),
    *(Builtin(name, name, ("x",), REDUCE_ATTRS) for name in ("sum", "mean", "max", "min", "prod")),
    *(Builtin(name, name, ("x",), (("axis", "int"),), required=("axis",))
      for name in ("argmax", "argmin")),
    Builtin("reshape", "reshape", ("x",), (("shape", "shape"),), required=("shape",)),
    Builtin("transpose", "transpose", ("x",), (("perm", "ints"),)),
    Builtin("expand_dims", "expand_dims", ("x",), (("axis", "int"),), required=("axis",)),
    Builtin("squeeze", "squeeze", ("x",), (("axis", "axes"),)),
    Builtin("broadcast_to", "broadcast_to", ("x",), (("shape", "shape"),), required=("shape",)),
    Builtin("concat", "concat", ("xs",), (("axis", "int"),), variadic="xs"),
    Builtin("slice", "slice", ("x",), (("begin", "ints"), ("size", "ints")),
            required=("begin", "size")),
    Builtin("one_hot", "one_hot", ("indices",), (("depth", "int"),), required=("depth",),
            own_dtype=("indices",)),
    Builtin("shape", "shape", ("x",), (("axis", "int"),), required=("axis",)),
    *(Builtin(name, name, ("x",), (("axis", "int"),)) for name in ("softmax", "log_softmax")),
    Builtin("softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
            ("labels", "logits")),
    Builtin("sparse_softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
            ("labels", "logits"), own_dtype=("labels",)),
    Builtin("sigmoid_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits",
            ("labels", "logits")),
    # dropout's third operand, the run counter, and its `stream` are added by the parser.
    Builtin("dropout", "dropout", ("x", "keep_prob"), (("seed", "int"),)),
    # grad's x is a name or a list of names; the parser checks and expands it.
    Builtin("grad", "grad", ("y", "x")),
]

ALIASES = {"reduce_sum": "sum", "reduce_mean": "mean", "reduce_max": "max"}

BUILTINS: dict[str, Builtin] = {b.name: b for b in _TABLE}
BUILTINS.update({alias: BUILTINS[name] for alias, name in ALIASES.items()})


@dataclass(frozen=True)
class Initializer:
    """`name(args)` in a param/state declaration: each arg a compile-time number."""

    name: str
    args: tuple[tuple[str, float | None], ...]  # name and default (None: required)
    random: bool = True

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.args) + (("seed",) if self.random else ())


INITIALIZERS: dict[str, Initializer] = {i.name: i for i in [
    Initializer("zeros", (), random=False),
    Initializer("ones", (), random=False),
    Initializer("fill", (("value", None),), random=False),
    Initializer("normal", (("mean", 0.0), ("stddev", 1.0))),
    Initializer("truncated_normal", (("mean", 0.0), ("stddev", 1.0))),
    Initializer("uniform", (("low", 0.0), ("high", 1.0))),
    Initializer("glorot_uniform", ()),
]}
