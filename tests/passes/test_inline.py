"""The inline pass: composites become primitives (recursively), keeping each op's location and
the user's names, without touching its input."""

import textwrap

import numpy as np

from tflc.codegen import numpy_backend
from tflc.ir import REGISTRY, Builder, Function, Loc, Output, TensorType, Value, print_function
from tflc.passes.inline import inline

LOC = Loc("m.tfl", 3, 6)


def value(dtype, *shape, name=None):
    return Value(TensorType(dtype, shape), name)


def function(args, ops, outputs):
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    return Function("model", dims, tuple(args), tuple(ops),
                    tuple(Output(v.name, v) for v in outputs))


def test_softmax_expands_in_place_keeping_its_name_and_location():
    x = value("f32", "N", 10, name="logits")
    b = Builder(LOC)
    y = b.emit("softmax", x, name="y_")
    z = b.emit("neg", y, name="z", loc=Loc("m.tfl", 4, 5))
    expected = """\
        func @model<N>(%logits: f32[N,10]) -> (f32[N,10], f32[N,10]) {
          %0: f32[N,1] = max[axis=-1, keepdims=true] %logits    // m.tfl:3:6
          %1: f32[N,10] = sub %logits, %0                       // m.tfl:3:6
          %2: f32[N,10] = exp %1                                // m.tfl:3:6
          %3: f32[N,1] = sum[axis=-1, keepdims=true] %2         // m.tfl:3:6
          %y_: f32[N,10] = div %2, %3                           // m.tfl:3:6
          %z: f32[N,10] = neg %y_                               // m.tfl:4:5
          return %y_, %z
        }"""
    assert print_function(inline(function([x], b.ops, [y, z]))) == textwrap.dedent(expected)


def test_nested_composites_expand_down_to_primitives():
    """sparse xent → softmax xent → log_softmax; mse → mean: every level is expanded, the
    outermost result keeps the user's name, and every op keeps the composite's location."""
    labels, logits = value("i64", "N", name="labels"), value("f32", "N", 10, name="logits")
    b = Builder(LOC)
    loss = b.emit("sparse_softmax_cross_entropy_with_logits", labels, logits, name="loss")
    other = b.emit("mse", logits, b.emit("softmax", logits), name="other",
                   loc=Loc("m.tfl", 5, 1))
    func = inline(function([labels, logits], b.ops, [loss, other]))
    assert all(REGISTRY[op.opcode].kind != "composite" for op in func.ops)
    assert "one_hot" in [op.opcode for op in func.ops]
    assert [out.value.name for out in func.outputs] == ["loss", "other"]
    defined = [r for op in func.ops for r in op.results]
    assert all(out.value in defined for out in func.outputs)
    assert {op.loc for op in func.ops} == {LOC, Loc("m.tfl", 5, 1)}
    assert [op.result.name for op in func.ops if op.result.name] == ["loss", "other"]


def test_uses_of_a_composite_read_its_expansion():
    x = value("f64", 2, 3, name="x")
    b = Builder(LOC)
    m = b.emit("mean", x, axis=1, name="m")
    s = b.emit("sub", x, b.emit("expand_dims", m, axis=1), name="centered")
    func = inline(function([x], b.ops, [m, s]))
    data = np.arange(6.0).reshape(2, 3) ** 2
    m_out, s_out = numpy_backend.compile(func)({}, [data])
    np.testing.assert_allclose(m_out, data.mean(1))
    np.testing.assert_allclose(s_out, data - data.mean(1, keepdims=True))


def test_primitives_pass_through_and_the_input_is_untouched():
    x = value("f32", 3, name="x")
    b = Builder(LOC)
    e = b.emit("exp", x, name="e")
    c = b.emit("clip", e, b.const(0.5, "f32"), b.const(2.0, "f32"), name="c")
    func = function([x], b.ops, [e, c])
    text = print_function(func)
    inlined = inline(func)
    assert print_function(func) == text
    assert inlined is not func and inlined.ops[0] is func.ops[0]
    assert [op.opcode for op in inlined.ops] == ["exp", "const", "const", "maximum", "minimum"]
    assert inline(inlined).ops == inlined.ops
