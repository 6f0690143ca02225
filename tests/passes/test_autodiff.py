"""The autodiff pass: every VJP rule of the registry against central finite differences (JAX's
check_vjp idea: <c, (f(x+et) - f(x-et)) / 2e> == <vjp(c), t>, in float64), the driver's
bookkeeping (accumulation, unbroadcasting, shared sweeps, zeros, higher order), the gradient
conventions at kinks and singular points, and located errors."""

from dataclasses import replace

import numpy as np
import pytest

from tflc.codegen import numpy_backend
from tflc.ir import (REGISTRY, Builder, Error, Function, Loc, Op, Output, TensorType, Value,
                     print_function)
from tflc.ir.types import eval_dim
from tflc.passes.autodiff import autodiff
from tflc.passes.inline import inline

RNG = np.random.default_rng(1)
LOC = Loc("m.tfl", 4, 3)


def function(args, ops, outputs) -> Function:
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    return Function("model", dims, tuple(args), tuple(ops), tuple(Output(k, v) for k, v in outputs))


def compile_grad(func: Function):
    return numpy_backend.compile(autodiff(inline(func)))


def normal(*shape):
    return RNG.standard_normal(shape)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    return RNG.uniform(0.5, 2.0, shape) * RNG.choice([-1.0, 1.0], shape)


def distinct(*shape):
    """Values 0.3 apart and off zero, so max/min/maximum/relu stay off their kinks when nudged."""
    size = int(np.prod(shape))
    return (RNG.permutation(size) - size / 2 + 0.25).reshape(shape) * 0.3


# -- finite differences ------------------------------------------------------------------------

def check_vjp(opcode, arrays, attrs=None, shapes=None, eps=1e-6, tol=1e-7):
    """Builds y = sum(opcode(arrays) * c), asks grad(y, a) of every float64 operand, and compares
    <c, central difference of the op along t> with <grad, t>. `shapes` gives the IR shapes when
    they name symbolic dims (bound from the arrays)."""
    shapes = shapes or [a.shape for a in arrays]
    sizes = {}
    for shape, array in zip(shapes, arrays):
        for dim, size in zip(shape, array.shape):
            if isinstance(dim, str):
                sizes[dim] = size
    dtypes = {np.dtype(np.float64): "f64", np.dtype(np.int64): "i64", np.dtype(np.bool_): "bool"}
    args = [Value(TensorType(dtypes[a.dtype], tuple(s)), f"a{i}")
            for i, (a, s) in enumerate(zip(arrays, shapes))]
    b = Builder(LOC)
    result = b.emit(opcode, *args, **(attrs or {}))
    c = Value(result.type, "c")
    y = b.emit("sum", b.emit("mul", result, c))
    wrt = [i for i, a in enumerate(arrays) if a.dtype == np.float64]
    grads = [b.emit("grad", y, args[i]) for i in wrt]
    func = function(args + [c], b.ops, [("r", result)] + [(f"g{i}", g) for i, g in zip(wrt, grads)])
    run = compile_grad(func)
    c_array = normal(*(eval_dim(d, sizes) for d in result.type.shape))
    outputs = run(sizes, list(arrays) + [c_array])
    tangents = {i: normal(*arrays[i].shape) for i in wrt}

    def forward(sign):
        nudged = [a + sign * eps * tangents[i] if i in tangents else a
                  for i, a in enumerate(arrays)]
        return run(sizes, nudged + [c_array])[0]

    numeric = np.sum(c_array * (forward(1) - forward(-1))) / (2 * eps)
    analytic = sum(np.sum(g * tangents[i]) for i, g in zip(wrt, outputs[1:]))
    for i, g in zip(wrt, outputs[1:]):
        assert g.shape == arrays[i].shape and g.dtype == np.float64
    assert abs(numeric - analytic) <= tol * (1 + abs(numeric) + abs(analytic)), \
        (opcode, numeric, analytic)


# (opcode, arrays, attrs, IR shapes or None); every differentiable primitive appears here
PRIMITIVE_CASES = [
    ("neg", [normal(3, 4)], {}, None),
    ("abs", [away_from_zero(3, 4)], {}, None),
    ("sign", [away_from_zero(5)], {}, None),
    ("exp", [normal(2, 3)], {}, None),
    ("log", [positive(2, 3)], {}, None),
    ("sqrt", [positive(4)], {}, None),
    ("rsqrt", [positive(2, 2)], {}, None),
    ("square", [normal(3)], {}, None),
    ("sin", [normal(3)], {}, None),
    ("cos", [normal(3)], {}, None),
    ("tanh", [normal(3, 2)], {}, None),
    ("sigmoid", [normal(3, 2)], {}, None),
    ("relu", [away_from_zero(3, 4)], {}, None),
    ("add", [normal(3, 1, 4), normal(5, 4)], {}, None),
    ("add", [normal(3, 4), normal(3, 4)], {}, [("N", 4), ("N", 4)]),
    ("sub", [normal(), normal(2, 3)], {}, None),
    ("mul", [normal(2, 1), normal(1, 3)], {}, None),
    ("mul", [normal(3, 4), normal(4)], {}, [("N", 4), (4,)]),
    ("div", [normal(2, 3), away_from_zero(3)], {}, None),
    ("div", [normal(3), away_from_zero(2, 1)], {}, None),
    ("pow", [positive(2, 3), normal(3)], {}, None),
    ("pow", [positive(4), normal()], {}, None),
    ("maximum", [distinct(2, 3), distinct(3) + 0.1], {}, None),
    ("minimum", [distinct(1, 3), distinct(2, 1) + 0.1], {}, None),
    ("where", [RNG.random((2, 3)) < 0.5, normal(3), normal(2, 3)], {}, None),
    ("cast", [normal(2, 3)], {"dtype": "f64"}, None),
    ("sum", [normal(2, 3, 4)], {"axis": [0, 2]}, None),
    ("sum", [normal(2, 3, 4)], {"axis": -1, "keepdims": True}, None),
    ("sum", [normal(3, 4)], {"axis": 0}, [("N", 4)]),
    ("sum", [normal(2, 3)], {}, None),
    ("prod", [normal(2, 3)], {"axis": 1}, None),
    ("prod", [np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5]])], {"axis": 1}, None),
    ("max", [distinct(3, 4)], {"axis": 1}, None),
    ("max", [distinct(2, 3, 2)], {"axis": [0, 2], "keepdims": True}, None),
    ("min", [distinct(3, 4)], {}, None),
    ("matmul", [normal(3, 4), normal(4, 2)], {}, None),
    ("matmul", [normal(3, 4), normal(4, 2)], {}, [("N", 4), (4, 2)]),
    ("matmul", [normal(2, 3, 4), normal(4, 5)], {}, None),
    ("matmul", [normal(2, 1, 3, 4), normal(5, 4, 2)], {}, None),
    ("matmul", [normal(4), normal(4, 5)], {}, None),
    ("matmul", [normal(3, 4), normal(4)], {}, None),
    ("matmul", [normal(4), normal(4)], {}, None),
    ("reshape", [normal(2, 3, 4)], {"shape": [6, -1]}, None),
    ("reshape", [normal(3, 4)], {"shape": [-1]}, [("N", 4)]),
    ("transpose", [normal(2, 3, 4)], {"perm": [2, 0, 1]}, None),
    ("broadcast_to", [normal(3, 1)], {"shape": [2, 3, 4]}, None),
    ("concat", [normal(2, 3), normal(2, 1), normal(2, 2)], {"axis": 1}, None),
    ("slice", [normal(4, 5)], {"begin": [1, -3], "size": [2, -1]}, None),
    ("pad", [normal(2, 3)], {"before": [1, 0], "after": [0, 2]}, None),
]

COMPOSITE_CASES = [
    ("mean", [normal(3, 4)], {"axis": 0}, [("N", 4)]),
    ("mean", [normal(2, 3, 4)], {"axis": [0, 2], "keepdims": True}, None),
    ("softplus", [normal(3, 4) * 5], {}, None),
    ("clip", [distinct(3, 4), np.array(-0.5), np.array(0.6)], {}, None),
    ("softmax", [normal(3, 5)], {}, None),
    ("softmax", [normal(3, 5)], {"axis": 0}, None),
    ("log_softmax", [normal(2, 3, 4)], {"axis": 1}, None),
    ("softmax_cross_entropy_with_logits", [RNG.dirichlet(np.ones(5), 3), normal(3, 5)], {},
     [("N", 5), ("N", 5)]),
    ("sparse_softmax_cross_entropy_with_logits", [np.array([0, 4, 2]), normal(3, 5)], {}, None),
    ("sigmoid_cross_entropy_with_logits", [RNG.random((3, 4)), normal(3, 4) * 3], {}, None),
    ("mse", [normal(3, 4), normal(4)], {}, [("N", 4), (4,)]),
    ("expand_dims", [normal(3, 4)], {"axis": -1}, None),
    ("squeeze", [normal(3, 1, 4, 1)], {}, None),
    ("dropout", [normal(4, 5), np.array(0.7), np.array(3)], {"seed": 5}, None),
]


@pytest.mark.parametrize("opcode, arrays, attrs, shapes", PRIMITIVE_CASES,
                         ids=[case[0] for case in PRIMITIVE_CASES])
def test_primitive_vjps_match_finite_differences(opcode, arrays, attrs, shapes):
    check_vjp(opcode, arrays, attrs, shapes)


@pytest.mark.parametrize("opcode, arrays, attrs, shapes", COMPOSITE_CASES,
                         ids=[case[0] for case in COMPOSITE_CASES])
def test_composite_gradients_match_finite_differences(opcode, arrays, attrs, shapes):
    check_vjp(opcode, arrays, attrs, shapes)


def test_every_differentiable_op_is_checked_against_finite_differences():
    checked = {case[0] for case in PRIMITIVE_CASES + COMPOSITE_CASES}
    differentiable = {name for name, d in REGISTRY.items()
                      if d.differentiable and d.kind not in ("source", "special")}
    assert differentiable <= checked, sorted(differentiable - checked)


def test_cast_through_f32_passes_the_cotangent_back():
    check_vjp("cast", [normal(3)], {"dtype": "f32"}, eps=1e-3, tol=1e-4)


# -- small graphs --------------------------------------------------------------------------------

def x_value(*shape, name="x", dtype="f64"):
    return Value(TensorType(dtype, shape), name)


def gradients(build, arrays, sizes=None):
    """Runs a graph built by `build(b, *args) -> [(label, value), ...]` on `arrays`."""
    args = [x_value(*np.shape(a), name=f"a{i}") for i, a in enumerate(arrays)]
    b = Builder(LOC)
    func = function(args, b.ops, build(b, *args))
    return compile_grad(func)(sizes or {}, [np.asarray(a, np.float64) for a in arrays])


def test_a_value_used_twice_gets_its_cotangents_added():
    x = np.array([1.0, -2.0, 3.0])

    def build(b, a):
        y = b.emit("sum", b.emit("add", b.emit("mul", a, a), a))
        return [("g", b.emit("grad", y, a))]
    g, = gradients(build, [x])
    np.testing.assert_allclose(g, 2 * x + 1)


def test_broadcast_operands_get_summed_cotangents():
    x, bias = normal(4, 3), normal(3)

    def build(b, a, c):
        y = b.emit("sum", b.emit("square", b.emit("add", a, c)))
        return [("gb", b.emit("grad", y, c))]
    gb, = gradients(build, [x, bias])
    np.testing.assert_allclose(gb, (2 * (x + bias)).sum(0))


def test_gradient_with_respect_to_an_intermediate_value():
    x = normal(3)

    def build(b, a):
        h = b.emit("mul", a, b.const(2.0, "f64"))
        y = b.emit("sum", b.emit("mul", h, h))
        return [("gh", b.emit("grad", y, h)), ("gx", b.emit("grad", y, a))]
    gh, gx = gradients(build, [x])
    np.testing.assert_allclose(gh, 4 * x)
    np.testing.assert_allclose(gx, 8 * x)


def test_independent_values_get_zeros_of_their_symbolic_shape():
    x = x_value("N", 3)
    other = x_value("N", 2, name="other")
    b = Builder(LOC)
    y = b.emit("sum", b.emit("exp", other))
    g = b.emit("grad", y, x, name="g")
    func = autodiff(function([x, other], b.ops, [("g", g)]))
    out, = numpy_backend.compile(func)({"N": 5}, [normal(5, 3), normal(5, 2)])
    assert out.shape == (5, 3) and not out.any()
    assert func.outputs[0].value.type == x.type


def test_grad_of_y_itself_is_one():
    def build(b, a):
        y = b.emit("sum", a)
        return [("g", b.emit("grad", y, y))]
    g, = gradients(build, [normal(3)])
    assert g == 1.0


def test_gradient_stops_at_integer_and_bool_values():
    def build(b, a):
        as_int = b.emit("cast", b.emit("mul", a, b.const(10.0, "f64")), dtype="i64")
        y = b.emit("sum", b.emit("add", b.emit("cast", as_int, dtype="f64"), a))
        return [("g", b.emit("grad", y, a))]
    g, = gradients(build, [normal(4)])
    np.testing.assert_array_equal(g, np.ones(4))


def test_second_order_gradients():
    x = normal(4)

    def build(b, a):
        y = b.emit("sum", b.emit("pow", a, b.const(3.0, "f64")))
        g = b.emit("grad", y, a)
        return [("g", g), ("h", b.emit("grad", b.emit("sum", g), a))]
    g, h = gradients(build, [x])
    np.testing.assert_allclose(g, 3 * x ** 2)
    np.testing.assert_allclose(h, 6 * x)


def test_grads_of_the_same_y_share_one_backward_sweep():
    """The exp's VJP (one mul at its location) is built once for both gradients."""
    exp_loc = Loc("m.tfl", 7, 1)
    a, c = x_value(3, name="a"), x_value(3, name="c")
    b = Builder(LOC)
    y = b.emit("sum", b.emit("exp", b.emit("mul", a, c), loc=exp_loc))
    ga, gc = b.emit("grad", y, a, name="ga"), b.emit("grad", y, c, name="gc")
    func = autodiff(function([a, c], b.ops, [("ga", ga), ("gc", gc)]))
    assert [op.opcode for op in func.ops if op.loc == exp_loc] == ["exp", "mul"]
    assert sum(op.opcode == "const" and op.attrs["value"] == 1 for op in func.ops) == 1
    av, cv = normal(3), normal(3)
    out_a, out_c = numpy_backend.compile(func)({}, [av, cv])
    np.testing.assert_allclose(out_a, cv * np.exp(av * cv))
    np.testing.assert_allclose(out_c, av * np.exp(av * cv))


def test_generated_ops_carry_the_forward_ops_locations_and_gradients_keep_names():
    locs = [Loc("m.tfl", line, 1) for line in range(10, 14)]
    x, w = x_value("N", 3), x_value(3, 2, name="W")
    b = Builder(LOC)
    h = b.emit("matmul", x, w, loc=locs[0])
    y = b.emit("mean", b.emit("tanh", h, loc=locs[1]), loc=locs[2])
    g = b.emit("grad", y, w, name="gW", loc=locs[3])
    func = function([x, w], b.ops, [("gW", g)])
    forward = [op for op in inline(func).ops if op.opcode != "grad"]
    after = autodiff(inline(func))
    assert all(op.loc in locs for op in after.ops)
    assert {op.loc for op in after.ops[len(forward):]} == set(locs)
    assert after.outputs[0].value.name == "gW"
    assert after.ops[-1].result is after.outputs[0].value


def test_the_pass_is_pure():
    x = x_value(3)
    b = Builder(LOC)
    y = b.emit("sum", b.emit("softplus", x))
    func = function([x], b.ops, [("g", b.emit("grad", y, x))])
    text = print_function(func)
    inlined = inline(func)
    inlined_text = print_function(inlined)
    autodiff(inlined)
    assert print_function(func) == text and print_function(inlined) == inlined_text


# -- conventions at kinks and singular points ----------------------------------------------------

def single_gradient(build, x):
    """d sum(build(b, x)) / dx at x."""
    def graph(b, a):
        return [("g", b.emit("grad", b.emit("sum", build(b, a)), a))]
    g, = gradients(graph, [np.asarray(x, np.float64)])
    return g


POINTS = np.array([-1.0, 0.0, 2.0])


def test_relu_maximum_and_where_give_zero_gradient_at_zero():
    def zero(b):
        return b.const(0.0, "f64")
    expected = [0.0, 0.0, 1.0]
    np.testing.assert_array_equal(single_gradient(lambda b, a: b.emit("relu", a), POINTS),
                                  expected)
    np.testing.assert_array_equal(
        single_gradient(lambda b, a: b.emit("maximum", a, zero(b)), POINTS), expected)
    np.testing.assert_array_equal(single_gradient(
        lambda b, a: b.emit("where", b.emit("gt", a, zero(b)), a, zero(b)), POINTS), expected)
    np.testing.assert_array_equal(
        single_gradient(lambda b, a: b.emit("minimum", a, zero(b)), POINTS), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(single_gradient(lambda b, a: b.emit("abs", a), POINTS),
                                  [-1.0, 0.0, 1.0])


def test_maximum_ties_go_to_the_second_operand():
    def build(b, a, c):
        y = b.emit("sum", b.emit("maximum", a, c))
        return [("ga", b.emit("grad", y, a)), ("gc", b.emit("grad", y, c))]
    ga, gc = gradients(build, [[1.0, 2.0, 3.0], [1.0, 0.0, 5.0]])
    np.testing.assert_array_equal(ga, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(gc, [1.0, 0.0, 1.0])


def test_clip_passes_the_gradient_strictly_inside_its_bounds():
    def build(b, a, lo, hi):
        y = b.emit("sum", b.emit("clip", a, lo, hi))
        return [(n, b.emit("grad", y, v)) for n, v in (("gx", a), ("glo", lo), ("ghi", hi))]
    gx, glo, ghi = gradients(build, [[-2.0, -1.0, 0.0, 1.0, 2.0], -1.0, 1.0])
    np.testing.assert_array_equal(gx, [0.0, 0.0, 1.0, 0.0, 0.0])
    assert glo == 2.0 and ghi == 2.0


@pytest.mark.parametrize("opcode", ["log", "sqrt", "rsqrt"])
def test_where_sends_no_nan_from_the_untaken_branch(opcode):
    def build(b, a):
        zero = b.const(0.0, "f64")
        return b.emit("where", b.emit("gt", a, zero), b.emit(opcode, a), zero)
    g = single_gradient(build, POINTS)
    assert np.isfinite(g).all()
    assert g[0] == 0.0 and g[1] == 0.0


def test_where_sends_no_nan_through_a_division_by_zero():
    def build(b, a):
        zero = b.const(0.0, "f64")
        safe = b.emit("ne", a, zero)
        return b.emit("where", safe, b.emit("div", b.const(1.0, "f64"), a), zero)
    g = single_gradient(build, POINTS)
    np.testing.assert_array_equal(g, [-1.0, 0.0, -0.25])


def test_sqrt_at_zero_has_the_infinite_slope_of_the_math():
    g = single_gradient(lambda b, a: b.emit("sqrt", a), [0.0, 4.0])
    np.testing.assert_array_equal(g, [np.inf, 0.25])


def test_pow_at_zero_base_and_zero_exponent_is_finite():
    def build(b, a, e):
        y = b.emit("sum", b.emit("pow", a, e))
        return [("ga", b.emit("grad", y, a)), ("ge", b.emit("grad", y, e))]
    ga, ge = gradients(build, [[0.0, 0.0, 2.0, -2.0], [0.0, 2.0, 3.0, 2.0]])
    np.testing.assert_array_equal(ga, [0.0, 0.0, 12.0, -4.0])
    np.testing.assert_allclose(ge, [0.0, 0.0, 8 * np.log(2.0), 0.0])


# -- errors --------------------------------------------------------------------------------------

def test_grad_of_a_non_scalar_is_a_located_error():
    x = x_value(3)
    b = Builder(LOC)
    with pytest.raises(Error) as info:
        b.emit("grad", b.emit("exp", x), x)
    assert info.value.loc == LOC and "scalar" in info.value.message
    # the same op built without the type rule (as from IR text) fails in the pass, located
    vector = b.emit("exp", x)
    grad = Op("grad", (vector, x), (Value(x.type, "g"),), {}, Loc("m.tfl", 8, 2))
    with pytest.raises(Error) as info:
        autodiff(function([x], b.ops + [grad], [("g", grad.result)]))
    assert info.value.loc == Loc("m.tfl", 8, 2) and "scalar" in info.value.message


def test_gradients_of_integers_are_located_errors():
    n = x_value(3, name="n", dtype="i64")
    b = Builder(LOC)
    y = b.emit("sum", b.emit("cast", n, dtype="f64"))
    with pytest.raises(Error) as info:
        b.emit("grad", y, n)
    assert info.value.loc == LOC and "float" in info.value.message
    grad = Op("grad", (y, n), (Value(n.type, "g"),), {}, Loc("m.tfl", 8, 2))
    with pytest.raises(Error) as info:
        autodiff(function([n], b.ops + [grad], [("g", grad.result)]))
    assert info.value.loc == Loc("m.tfl", 8, 2) and "float" in info.value.message


def test_a_composite_left_over_is_an_error():
    x = x_value(3)
    b = Builder(LOC)
    y = b.emit("mean", x)
    with pytest.raises(Error) as info:
        autodiff(function([x], b.ops, [("g", b.emit("grad", y, x))]))
    assert info.value.loc == LOC and "inline" in info.value.message


def broken_gradient_graph():
    x = x_value(3)
    b = Builder(LOC)
    y = b.emit("sum", b.emit("sin", x, loc=Loc("m.tfl", 2, 9)))
    grad = b.emit("grad", y, x, loc=Loc("m.tfl", 5, 1))
    return function([x], b.ops, [("g", grad)])


def test_errors_while_building_a_gradient_name_the_forward_op(monkeypatch):
    def bad_vjp(b, op, g):
        return (b.emit("add", g, b.const(np.zeros(4), "f64")),)
    monkeypatch.setitem(REGISTRY, "sin", replace(REGISTRY["sin"], vjp=bad_vjp))
    with pytest.raises(Error) as info:
        autodiff(broken_gradient_graph())
    error = info.value
    assert error.message.startswith("in the gradient of `sin` at m.tfl:2:9: add: ")
    assert error.loc == Loc("m.tfl", 2, 9)
    assert error.notes == (("gradient requested here", Loc("m.tfl", 5, 1)),)


def test_a_differentiable_op_without_a_rule_is_a_located_error(monkeypatch):
    monkeypatch.setitem(REGISTRY, "sin", replace(REGISTRY["sin"], vjp=None))
    with pytest.raises(Error, match="no gradient rule for `sin`") as info:
        autodiff(broken_gradient_graph())
    assert info.value.loc == Loc("m.tfl", 2, 9)
