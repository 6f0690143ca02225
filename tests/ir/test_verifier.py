"""The verifier: accepts valid IR, and catches each kind of broken IR (built by hand, since the
builder and the parser refuse to make it), naming what is wrong and showing the op."""

import numpy as np
import pytest

from tflc.ir import (Builder, Decl, Error, Function, Init, Loc, Module, Op, Output, TensorType,
                     Value, VerifyError, parse_function, verify)


def T(dtype, *shape):
    return TensorType(dtype, shape)


X = T("f32", "N", 3)


def func(args, ops, outputs, dims=("N",), name="f") -> Function:
    return Function(name, dims, tuple(args), tuple(ops), tuple(outputs))


def broken(ir, *needles):
    with pytest.raises(VerifyError) as info:
        verify(ir)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    return info.value


def neg(x, result=None, **kwargs):
    return Op("neg", (x,), (result or Value(x.type),), {}, **kwargs)


def test_a_failed_verify_is_a_compiler_bug_not_a_user_error():
    assert not issubclass(VerifyError, Error)


def test_valid_ir_passes():
    x, w = Value(X, "x"), Value(T("f32", 3, 4), "fc1.W")
    b = Builder(Loc("m.tfl", 1, 1))
    y = b.emit("matmul", x, w, name="y")
    s = b.emit("sum", y, axis=1)
    verify(func([x, w], b.ops, [Output("y", y), Output("s", s), Output("fc1.W", w, "step")]))


# -- SSA and scoping -----------------------------------------------------------------------------

def test_value_defined_twice():
    x = Value(X, "x")
    y = Value(X)
    broken(func([x], [neg(x, y), neg(x, y)], [Output("y", y)]), "a result %0 is defined twice",
           "%0: f32[N,3] = neg %x")
    broken(func([x, x], [], []), "an argument %x is defined twice")
    broken(func([x], [neg(x, x)], []), "a result %x is defined twice")


def test_use_before_definition():
    x = Value(X, "x")
    first, second = neg(x), neg(x)
    late = Op("exp", (second.result,), (Value(X),), {})
    broken(func([x], [first, late, second], []), "operand 0", "is not defined before this op",
           "%1: f32[N,3] = exp %2")


def test_operand_from_nowhere():
    x, stray = Value(X, "x"), Value(X, "stray")
    broken(func([x], [Op("add", (x, stray), (Value(X),), {})], []), "operand 1",
           "<undefined Value(stray: f32[N,3])>")


def fused(operand, body_ops, yielded, results=None, region_args=None):
    region_args = region_args if region_args is not None else [Value(operand.type, "a")]
    region = Function("fused", ("N",), tuple(region_args), tuple(body_ops),
                      tuple(Output(str(i), v) for i, v in enumerate(yielded)))
    results = results or [Value(v.type, "r") for v in yielded]
    return Op("neg", (operand,), tuple(results), {}, None, region)


def test_regions_see_enclosing_values_but_not_the_other_way():
    x, b = Value(X, "x"), Value(T("f32", 3), "b")
    a = Value(X, "a")
    inner = Op("add", (a, b), (Value(X, "inner"),), {})
    op = fused(x, [inner], [inner.result], region_args=[a])
    verify(func([x, b], [op], [Output("r", op.result)]))
    leak = Op("exp", (inner.result,), (Value(X),), {})
    broken(func([x, b], [op, leak], []), "operand 0", "%0: f32[N,3] = exp %inner")
    broken(func([x, b], [op], [Output("inner", inner.result)]),
           "output 'inner' returns %inner, which is not defined there")


def test_region_shape_rules():
    x = Value(X, "x")
    a = Value(T("f32", 3), "a")
    op = fused(x, [], [a], region_args=[a])
    broken(func([x], [op], []), "the region's argument types (f32[3]) are not the operands' "
           "(f32[N,3])", "%r: f32[3] = neg %x {")
    a = Value(X, "a")
    op = fused(x, [], [a], results=[Value(T("f64", "N", 3))], region_args=[a])
    broken(func([x], [op], []), "the region yields (f32[N,3]) but the results are (f64[N,3])")
    region = Function("fused", ("N",), (a,), (), (Output("a", a, "step"),))
    op = Op("neg", (x,), (Value(X),), {}, None, region)
    broken(func([x], [op], []), "the region's output 'a' belongs to a step")


# -- ops, attributes, types ----------------------------------------------------------------------

def test_unregistered_opcode():
    x = Value(X, "x")
    broken(func([x], [Op("frobnicate", (x,), (Value(X),), {})], []),
           "op 'frobnicate' is not registered", "%0: f32[N,3] = frobnicate %x")


def test_attributes_complete_and_printable():
    x = Value(X, "x")
    op = Op("sum", (x,), (Value(T("f32")),), {"axis": None})
    broken(func([x], [op], []), "missing ['keepdims'], unknown []")
    op = Op("neg", (x,), (Value(X),), {"axis": 1})
    broken(func([x], [op], []), "missing [], unknown ['axis']")
    op = Op("cast", (x,), (Value(X),), {"dtype": {"f32": 1}})
    broken(func([x], [op], []), "attribute dtype={'f32': 1} cannot be printed")


def test_result_types_follow_the_type_rule():
    x = Value(X, "x")
    broken(func([x], [neg(x, Value(T("f32", 3, "N")))], []),
           "the result type f32[3,N] is not the type rule's f32[N,3]")
    broken(func([x], [Op("not", (x,), (Value(X),), {})], []),
           "the type rule of not fails: ShapeError: expects a bool tensor")
    broken(func([x], [Op("neg", (x,), (Value(X), Value(X)), {})], []), "neg has one result, not 2")
    broken(func([x], [Op("neg", (x, x), (Value(X),), {})], []), "neg takes 1 operands, not 2")
    const = Op("const", (), (Value(T("f32", 2)),), {"value": np.zeros(2, np.float64)})
    broken(func([x], [const], []), "the result type f32[2] is not the type rule's f64[2]",
           "%0: f32[2] = const [0.0, 0.0]")


def test_names_and_locations_must_print():
    x = Value(X, "x")
    broken(func([x], [neg(x, Value(X, "a b"))], []), "named 'a b', not an identifier")
    broken(func([x], [neg(x, Value(X, "7"))], []), "named '7', not an identifier")
    broken(func([x], [neg(x, loc="m.tfl:1:1")], []), "loc 'm.tfl:1:1' is not a Loc")
    broken(func([x], [], [], name="<lambda>"), "function name '<lambda>' is not an identifier")
    broken(func([x], [], [Output("a-b", x)]), "output label or step 'a-b' is not an identifier")


# -- outputs and dims ----------------------------------------------------------------------------

def test_output_labels_unique_per_step():
    x, w = Value(X, "x"), Value(T("f32", 3), "w")
    verify(func([x, w], [], [Output("w", w), Output("w", w, "s1"), Output("w", w, "s2")]))
    broken(func([x, w], [], [Output("a", x), Output("a", w)]), "output 'a' is given twice")
    broken(func([x, w], [], [Output("w", w, "s1"), Output("w", w, "s1")]),
           "step 's1' output 'w' is given twice")


def test_step_outputs_keep_the_type_of_what_they_update():
    x, w = Value(X, "x"), Value(T("f32", 3), "w")
    wide = Op("cast", (w,), (Value(T("f64", 3)),), {"dtype": "f64"})
    broken(func([x, w], [wide], [Output("w", wide.result, "step")]),
           "step 'step' gives w the type f64[3], but the argument it updates is f32[3]")


def test_dims_are_the_argument_symbols_in_order():
    x, y = Value(X, "x"), Value(T("f32", "M", "2*N"), "y")
    verify(func([x, y], [], [], dims=("N", "M")))
    broken(func([x, y], [], [], dims=("M", "N")), "dims <M, N> are not", "<N, M>")
    broken(func([x, y], [], [], dims=("N",)), "dims <N> are not")
    broken(func([x, y], [], [], dims=("N", "M", "K")), "dims <N, M, K> are not")


def test_parsed_ir_verifies_and_errors_show_printed_names():
    f = parse_function("""
        func @f<N>(%x: f32[N,3]) -> (f32[N,3]) {
          %0: f32[N,3] = neg %x
          %y: f32[N,3] = exp %0
          return y = %y
        }""")
    verify(f)
    bad = f.replace(ops=(f.ops[1], f.ops[0]))
    broken(bad, "in @f: operand 0 %0 is not defined before this op", "%y: f32[N,3] = exp %0")


# -- modules and decls ---------------------------------------------------------------------------

def model(decls, outputs_of=lambda args: ()) -> Module:
    args = tuple(Value(d.type, d.name) for d in decls)
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    return Module("m", tuple(decls), (Function("model", dims, args, (), outputs_of(args)),))


def test_valid_module_passes():
    decls = [Decl("input", "x", X), Decl("param", "fc1.W", T("f32", 3, 4), Init("zeros")),
             Decl("state", "s", T("i32"), Init("value", (("value", np.array(1, np.int32)),))),
             Decl("counter", "__run", T("i64"))]
    verify(model(decls, lambda args: (Output("fc1.W", args[1], "step"),
                                      Output("s", args[2], "step"))))


@pytest.mark.parametrize("decl,needle", [
    (Decl("output", "x", X), "kind 'output' is not one of input, param, state, counter"),
    (Decl("input", "x y", X), "decl 'x y': the name is not an identifier"),
    (Decl("input", "x", X, Init("zeros")), "an input has no initializer"),
    (Decl("counter", "__run", T("i32")), "a counter is i64[], not i32[]"),
    (Decl("param", "w", T("f32", "N")), "a param's shape is fixed, not f32[N]"),
    (Decl("param", "w", T("f32", 2), Init("value", (("value", np.zeros(2)),))),
     "a value(...) initializer holds one array 'value' of the decl's dtype f32"),
    (Decl("param", "w", T("f32", 2), Init("normal", (("stddev", object()),))),
     "initializer argument stddev=<object"),
    (Decl("param", "w", T("f32", 2), None, "m.tfl:1:1"), "loc 'm.tfl:1:1' is not a Loc"),
])
def test_broken_decls(decl, needle):
    broken(Module("m", (decl,), ()), needle)


def test_module_level_rules():
    x = Decl("input", "x", X)
    w = Decl("param", "w", T("f32", 3), Init("zeros"))
    broken(Module("m", (x, x), ()), "decl 'x' is declared twice")
    f = Function("model", (), (), (), ())
    broken(Module("m", (), (f, f)), "function @model is defined twice")
    broken(model([x, w], lambda args: (Output("x", args[0], "step"),)),
           "step 'step' updates 'x', which is not a param or a state")
    wide = T("f32", 3, 1)
    broken(Module("m", (w,), (Function("model", (), (Value(wide, "v"),), (),
                                       (Output("w", Value(wide, "v"), "step"),)),)),
           "returns %<undefined Value(v: f32[3,1])>, which is not defined there")
    v = Value(wide, "v")
    broken(Module("m", (w,), (Function("model", (), (v,), (), (Output("w", v, "step"),)),)),
           "step 'step' gives w the type f32[3,1], but it is declared f32[3]")
    broken(Module("", (), ()), "module name '' is not a non-empty string")
