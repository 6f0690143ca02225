"""Every builtin makes its op (docs/ops.md), with positional and keyword arguments; indexing."""

import numpy as np
import pytest

from tflc.frontend.builtins import ALIASES, BUILTINS
from tflc.ir.registry import REGISTRY

DECLS = """
input x: f32[2, 3]
input v: f32[3]
input m: f32[3, 4]
input i: i32[2]
input c: bool[2, 3]
input n: f32[N, 3]
"""

UNARY = ["neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "square", "sin", "cos", "tanh",
         "sigmoid", "relu", "softplus"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_builtins(parse, sexpr, name):
    assert sexpr(parse(DECLS + f"z = {name}(x)\n"), "z") == f"({name} x)"
    assert sexpr(parse(DECLS + f"z = {name}(x=v)\n"), "z") == f"({name} v)"


@pytest.mark.parametrize("expression, expected", [
    ("pow(x, 2)", "(pow x 2.0:f32)"),
    ("maximum(x, v)", "(maximum x v)"),
    ("minimum(a=x, b=0)", "(minimum x 0.0:f32)"),
    ("clip(x, 0, 1)", "(clip x 0.0:f32 1.0:f32)"),
    ("clip(x, lo=-1, hi=v)", "(clip x -1.0:f32 v)"),
    ("where(c, x, 0)", "(where c x 0.0:f32)"),
    ("cast(x, i32)", "(cast[dtype=i32] x)"),
    ("cast(c, dtype=f64)", "(cast[dtype=f64] c)"),
    ("sum(x)", "(sum[keepdims=False] x)"),
    ("sum(x, 1)", "(sum[axis=1, keepdims=False] x)"),
    ("sum(x, axis=[0, -1], keepdims=true)", "(sum[axis=[0, -1], keepdims=True] x)"),
    ("reduce_sum(x, axis=0)", "(sum[axis=0, keepdims=False] x)"),
    ("mean(x, axis=1)", "(mean[axis=1, keepdims=False] x)"),
    ("reduce_mean(x)", "(mean[keepdims=False] x)"),
    ("max(x, 0, true)", "(max[axis=0, keepdims=True] x)"),
    ("reduce_max(x, axis=1)", "(max[axis=1, keepdims=False] x)"),
    ("min(x)", "(min[keepdims=False] x)"),
    ("prod(x, axis=-1)", "(prod[axis=-1, keepdims=False] x)"),
    ("argmax(x, axis=1)", "(argmax[axis=1] x)"),
    ("argmin(x, 0)", "(argmin[axis=0] x)"),
    ("reshape(x, [3, 2])", "(reshape[shape=[3, 2]] x)"),
    ("reshape(x, shape=[-1])", "(reshape[shape=[-1]] x)"),
    ("reshape(n, [N, 3, 1])", "(reshape[shape=['N', 3, 1]] n)"),
    ("transpose(x)", "(transpose x)"),
    ("transpose(x, perm=[1, 0])", "(transpose[perm=[1, 0]] x)"),
    ("expand_dims(x, 0)", "(expand_dims[axis=0] x)"),
    ("squeeze(expand_dims(x, 0))", "(squeeze (expand_dims[axis=0] x))"),
    ("squeeze(expand_dims(x, 0), axis=0)", "(squeeze[axis=0] (expand_dims[axis=0] x))"),
    ("broadcast_to(v, [2, 3])", "(broadcast_to[shape=[2, 3]] v)"),
    ("broadcast_to(v, shape=[N, 3])", "(broadcast_to[shape=['N', 3]] v)"),
    ("concat([x, x], axis=0)", "(concat[axis=0] x x)"),
    ("concat([x, x, [[1.0, 2.0, 3.0]]])", "(concat[axis=0] x x [[1.0, 2.0, 3.0]]:f32)"),
    ("slice(x, begin=[0, 1], size=[2, -1])", "(slice[begin=[0, 1], size=[2, -1]] x)"),
    ("slice(x, [1, 0], [1, 3])", "(slice[begin=[1, 0], size=[1, 3]] x)"),
    ("one_hot(i, 4)", "(one_hot[depth=4] i)"),
    ("one_hot(indices=i, depth=4)", "(one_hot[depth=4] i)"),
    ("shape(n, 0)", "(shape[axis=0] n)"),
    ("matmul(x, m)", "(matmul x m)"),
    ("softmax(x)", "(softmax[axis=-1] x)"),
    ("softmax(x, axis=0)", "(softmax[axis=0] x)"),
    ("log_softmax(x, 1)", "(log_softmax[axis=1] x)"),
    ("softmax_cross_entropy_with_logits(labels=x, logits=x)",
     "(softmax_cross_entropy_with_logits x x)"),
    ("sparse_softmax_cross_entropy_with_logits(labels=i, logits=x)",
     "(sparse_softmax_cross_entropy_with_logits i x)"),
    ("sigmoid_cross_entropy_with_logits(labels=x, logits=x)",
     "(sigmoid_cross_entropy_with_logits x x)"),
    ("mse(x, 0)", "(mse x 0.0:f32)"),
    ("grad(sum(x), x)", "(grad (sum[keepdims=False] x) x)"),
    ("grad(y=mean(x * x), x=x)", "(grad (mean[keepdims=False] (mul x x)) x)"),
])
def test_builtins_make_their_ops(parse, sexpr, expression, expected):
    assert sexpr(parse(DECLS + f"z = {expression}\n"), "z") == expected


def test_dropout_gets_the_run_counter_and_a_stream_per_site(parse, sexpr):
    module = parse(DECLS + """
        fn drop(t) = dropout(t, 0.5)
        a = dropout(x, 0.9)
        b = dropout(x, keep_prob=0.8, seed=42)
        c2 = drop(x)
        d = drop(v)
        """)
    func = module.function("model")
    counters = [d for d in module.decls if d.kind == "counter"]
    assert [(d.name, str(d.type), d.init) for d in counters] == [("__run", "i64[]", None)]
    assert func.args[-1].name == "__run"
    assert sexpr(module, "a") == "(dropout[seed=0, stream=0] x 0.9:f32 __run)"
    assert sexpr(module, "b") == "(dropout[seed=42, stream=1] x 0.8:f32 __run)"
    assert sexpr(module, "c2") == "(dropout[seed=0, stream=2] x 0.5:f32 __run)"
    assert sexpr(module, "d") == "(dropout[seed=0, stream=3] v 0.5:f32 __run)"


def test_the_run_counter_is_declared_where_the_first_dropout_is(parse):
    module = parse("input a: f32[2]\ny = dropout(a, 0.5)\ninput b: f32[2]\n")
    assert [d.name for d in module.decls] == ["a", "__run", "b"]
    assert parse("input a: f32[2]\n").decl("__run") is None


def test_grad_of_a_list_gives_a_tuple(parse, sexpr):
    module = parse(DECLS + "gx, gv = grad(sum(x * v), [x, v])\n")
    assert sexpr(module, "gx") == "(grad (sum[keepdims=False] (mul x v)) x)"
    assert sexpr(module, "gv") == "(grad (sum[keepdims=False] (mul x v)) v)"
    producers = [op for op in module.function("model").ops if op.opcode == "sum"]
    assert len(producers) == 1  # y is built once for both


@pytest.mark.parametrize("expression, expected", [
    ("x[0]", "(reshape[shape=[3]] (slice[begin=[0, 0], size=[1, 3]] x))"),
    ("x[-1]", "(reshape[shape=[3]] (slice[begin=[1, 0], size=[1, 3]] x))"),
    ("x[:, 1:3]", "(slice[begin=[0, 1], size=[2, 2]] x)"),
    ("x[:, 1:]", "(slice[begin=[0, 1], size=[2, 2]] x)"),
    ("x[:, :-1]", "(slice[begin=[0, 0], size=[2, 2]] x)"),
    ("x[1, -2:]", "(reshape[shape=[2]] (slice[begin=[1, 1], size=[1, 2]] x))"),
    ("x[0, 2]", "(reshape[shape=[]] (slice[begin=[0, 2], size=[1, 1]] x))"),
    ("x[:, 0:100]", "x"),
    ("n[:, 1]", "(reshape[shape=['N']] (slice[begin=[0, 1], size=[-1, 1]] n))"),
    ("v[2:1]", "(slice[begin=[2], size=[0]] v)"),
])
def test_indexing_is_sugar_for_slice_and_reshape(parse, sexpr, expression, expected):
    assert sexpr(parse(DECLS + f"z = {expression}\n"), "z") == expected


def test_whole_slices_are_the_value_itself(parse, sexpr):
    assert sexpr(parse(DECLS + "z = x[:, :]\n"), "z") == "x"
    assert sexpr(parse(DECLS + "z = n[:]\n"), "z") == "n"


def test_indexing_values(parse, evaluate):
    module = parse("input x: f32[3, 4]\nconst k = 1\na = x[k, 1:-1]\nb = x[-2:, -1]\n")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(evaluate(module, "a", x=x), x[1, 1:-1])
    np.testing.assert_array_equal(evaluate(module, "b", x=x), x[-2:, -1])


@pytest.mark.parametrize("text, message", [
    ("z = x[0, 0, 0]", "too many indices: f32[2,3] has 2 dims, got 3"),
    ("z = x[2]", "index 2 is out of range for axis 0 of f32[2,3]"),
    ("z = x[-3]", "index -3 is out of range"),
    ("z = x[0.5]", "an index must be an integer constant, got 0.5"),
    ("z = x[i]", "an index must be a constant known when compiling"),
    ("z = n[0]", "axis 0 of f32[N,3] has the symbolic size N: only all of it (`:`) can be taken"),
    ("z = n[1:]", "has the symbolic size N"),
])
def test_indexing_errors(error, text, message):
    e = error(DECLS + text + "\n")
    assert message in e.message
    assert e.loc.line == 8


@pytest.mark.parametrize("text, message, col", [
    ("z = relu(x, v)", "relu takes at most 1 argument, got 2", 13),
    ("z = relu()", "relu needs the argument 'x'", 5),
    ("z = relu(y=x)", "relu has no argument 'y'", 10),
    ("z = sum(x, axs=1)", "sum has no argument 'axs'", 12),
    ("z = sum(x, 1, true, 2)", "sum takes at most 3 arguments, got 4", 21),
    ("z = sum(x, axis=1, axis=0)", "the argument 'axis' is given twice", 20),
    ("z = sum(x, 1, axis=0)", "sum got two values for 'axis'", 15),
    ("z = sum(axis=1, x)", "a positional argument cannot follow keyword arguments", 17),
    ("z = sum(x, axis=1.5)", "sum's axis must be an integer or a list of integers, got 1.5", 17),
    ("z = sum(x, keepdims=1)", "sum's keepdims must be true or false, got 1", 21),
    ("z = sum(x, axis=i)", "sum's axis must be a constant known when compiling", 17),
    ("z = argmax(x)", "argmax needs the argument 'axis'", 5),
    ("z = argmax(x, axis=[0])", "argmax's axis must be an integer, got [0]", 20),
    ("z = cast(x)", "cast needs the argument 'dtype'", 5),
    ("z = cast(x, f16)", "cast's dtype must be a dtype (f32, f64, i32, i64 or bool)", 13),
    ("z = reshape(x, [Q, 3])", "undefined name 'Q'", 17),
    ("z = reshape(x, [2.5])", "reshape's shape must be a list of sizes", 16),
    ("z = reshape(x, [4, 4])", "reshape: cannot reshape f32[2,3]", 5),
    ("z = transpose(x, perm=1)", "transpose's perm must be a list of integers, got 1", 23),
    ("z = concat(x, 0)", "concat takes a list of tensors, as in concat([a, b], axis=0)", 12),
    ("z = one_hot(x, 3)", "one_hot: indices must be integers", 5),
    ("z = grad(sum(x), x * 2)", "grad differentiates with respect to a name", 18),
    ("z = grad(sum(x), [])", "grad differentiates with respect to a name", 18),
    ("z = grad(x, x)", "grad: grad needs a scalar to differentiate", 5),
    ("const k = 2\nz = grad(sum(x), k)", "'k' is a constant: it has no gradient", 18),
    ("z = grad(sum(x), [x, v])", "this is a tuple of 2 values, not one tensor", 5),
    ("z = exp", "'exp' is a builtin function: call it, as in exp(...)", 5),
    ("z = normal()", "'normal' is an initializer", 5),
    ("z = dropout(x, x)", "dropout: keep_prob must be a f32[] scalar", 5),
    ("z = dropout(x, 0.5, seed=-1)", "seed must be an int in [0, 2**64)", 5),
])
def test_builtin_errors(error, text, message, col):
    e = error(DECLS + text + "\n")
    assert message in e.message
    assert (e.loc.line, e.loc.col) == (8 + text.count("\n"), col)


def test_every_builtin_matches_its_op_in_the_registry():
    for name, spec in BUILTINS.items():
        opdef = REGISTRY[spec.op]
        assert opdef.name == (ALIASES.get(name, name)), name
        operands = len(spec.operands) + (1 if spec.name == "dropout" else 0)
        assert opdef.arity in (operands, None), name
        attrs = {a for a, _ in spec.attrs} | ({"stream"} if spec.name == "dropout" else set())
        assert attrs == set(opdef.attrs), name
