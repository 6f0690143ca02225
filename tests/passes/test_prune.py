"""prune keeps exactly the ops the outputs need and drops unused arguments and dims."""

from tflc.ir import Builder, Function, Output, TensorType, Value, print_function
from tflc.passes.prune import prune


def arg(name, dtype, *shape):
    return Value(TensorType(dtype, shape), name)


def build():
    x, y, W = arg("x", "f32", "N", 3), arg("y", "f32", "M"), arg("W", "f32", 3)
    b = Builder()
    h = b.emit("add", x, W, name="h")
    b.emit("mul", y, b.const(2.0, "f32"), name="unused")
    out = b.emit("relu", h, name="out")
    twice = b.emit("add", h, out, name="twice")
    return Function("model", ("N", "M"), (x, y, W), tuple(b.ops), ()), h, out, twice


def test_keeps_only_what_outputs_need():
    func, h, out, twice = build()
    pruned = prune(func.replace(outputs=(Output("out", out),)))
    assert print_function(pruned) == "\n".join([
        "func @model<N>(%x: f32[N,3], %W: f32[3]) -> (f32[N,3]) {",
        "  %h: f32[N,3] = add %x, %W",
        "  %out: f32[N,3] = relu %h",
        "  return %out",
        "}",
    ])


def test_value_used_twice_is_kept_once_and_unused_arg_dims_go():
    func, h, out, twice = build()
    pruned = prune(func.replace(outputs=(Output("twice", twice), Output("h", h))))
    assert [op.opcode for op in pruned.ops] == ["add", "relu", "add"]
    assert [a.name for a in pruned.args] == ["x", "W"]
    assert pruned.dims == ("N",)


def test_nothing_unused_is_left():
    func, h, out, twice = build()
    pruned = prune(func.replace(outputs=(Output("out", out),)))
    used = {v for op in pruned.ops for v in op.operands} | {o.value for o in pruned.outputs}
    assert all(r in used for op in pruned.ops for r in op.results)
    assert all(a in used for a in pruned.args)


def test_outputs_that_are_arguments_need_no_ops():
    func, *_ = build()
    y = func.args[1]
    pruned = prune(func.replace(outputs=(Output("y", y),)))
    assert pruned.ops == () and pruned.args == (y,) and pruned.dims == ("M",)


def test_input_function_is_not_changed():
    func, h, out, twice = build()
    entry = func.replace(outputs=(Output("out", out),))
    before = print_function(entry)
    prune(entry)
    assert print_function(entry) == before and len(entry.ops) == 5
