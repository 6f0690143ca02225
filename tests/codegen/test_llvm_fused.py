"""`fused` ops (passes/fuse.py) in the LLVM backend: each kind of kernel, and whole training
steps. A fused kernel does the same scalar operations in the same order as the unfused kernels,
so fusing must not change a single bit of any output."""

import numpy as np
import pytest
from codegen_cases import function
from tflc.codegen.llvm import compile
from tflc.frontend import parse_source
from tflc.ir import Function
from tflc.ir.types import NUMPY_DTYPES, eval_dim
from tflc.passes.fuse import fuse
from tflc.passes.pipeline import compile_entry
from tflc.passes.simplify import simplify

RNG = np.random.default_rng(3)


def random_args(func: Function, sizes: dict) -> list:
    args = []
    for v in func.args:
        shape = tuple(eval_dim(d, sizes) for d in v.type.shape)
        if v.type.dtype == "bool":
            args.append(RNG.random(shape) < 0.5)
        elif v.type.dtype in ("i32", "i64"):
            args.append(RNG.integers(0, 10, shape).astype(NUMPY_DTYPES[v.type.dtype]))
        else:
            args.append(RNG.standard_normal(shape).astype(NUMPY_DTYPES[v.type.dtype]))
    return args


def kinds(func: Function) -> list[str]:
    return sorted(op.attrs["kind"] for op in func.ops if op.opcode == "fused")


def check_fusion_changes_nothing(func: Function, expected_kinds: list[str], batches=(1, 7, 100)):
    """The fused function has the expected kernels and gives the unfused outputs bit for bit."""
    fused = fuse(func)
    assert kinds(fused) == sorted(expected_kinds)
    plain, joined = compile(func), compile(fused)
    for n in batches:
        sizes = {d: n for d in func.dims}
        args = random_args(func, sizes)
        # copies: a step's updates overwrite their params in place
        want_all = plain(sizes, [a.copy() for a in args])
        for out, want, got in zip(func.outputs, want_all, joined(sizes, args)):
            np.testing.assert_array_equal(got, want, err_msg=f"{out.label}, N={n}")


def test_elementwise_chain_with_broadcasts_and_two_yields():
    def build(b, v):
        t = b.emit("tanh", b.emit("mul", v["x"], v["row"]))
        scaled = b.emit("add", t, b.emit("exp", v["column"]))
        return {"t": t, "y": b.emit("where", v["mask"], scaled, b.const(0.5, "f32"))}

    func = function({"x": ("f32", ("N", 3, 8)), "row": ("f32", (8,)),
                     "column": ("f32", ("N", 3, 1)), "mask": ("bool", ("N", 1, 8))}, build)
    check_fusion_changes_nothing(func, ["elementwise"])


def test_softmax_rows_and_argmax():
    """Phases over each row: max, then sum of exp, then the division; argmax joins the max."""
    def build(b, v):
        x = v["x"]
        e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axis=-1, keepdims=True)))
        total = b.emit("sum", e, axis=-1, keepdims=True)
        return {"softmax": b.emit("div", e, total),
                "log_total": b.emit("log", b.emit("reshape", total, shape=["N"])),
                "best": b.emit("argmax", x, axis=1)}

    func = function({"x": ("f32", ("N", 10))}, build)
    check_fusion_changes_nothing(func, ["reduction"])


def test_reduction_over_leading_axis_with_epilogue():
    """A bias gradient and its SGD update: summed over the batch, vectorised along the row."""
    def build(b, v):
        g = b.emit("sum", b.emit("mul", v["d"], v["d"]), axis=0)
        return {"b_new": b.emit("sub", v["b"], b.emit("mul", b.const(0.1, "f32"), g))}

    func = function({"d": ("f32", ("N", 300)), "b": ("f32", (300,))}, build)
    check_fusion_changes_nothing(func, ["reduction"])


def test_reduction_middle_axis_and_min():
    def build(b, v):
        x = v["x"]
        low = b.emit("min", x, axis=1, keepdims=True)
        return {"shifted": b.emit("sub", x, low),
                "spread": b.emit("sum", b.emit("sub", x, low), axis=1)}

    func = function({"x": ("f64", ("N", 5, 7))}, build)
    check_fusion_changes_nothing(func, ["reduction"])


@pytest.mark.parametrize("yield_preactivation", [False, True])
def test_matmul_bias_relu_epilogue(yield_preactivation):
    def build(b, v):
        z = b.emit("add", b.emit("matmul", v["x"], v["W"]), v["b"])
        outputs = {"h": b.emit("relu", z)}
        if yield_preactivation:
            outputs["z"] = z
        return outputs

    func = function({"x": ("f32", ("N", 784)), "W": ("f32", (784, 300)),
                     "b": ("f32", (300,))}, build)
    check_fusion_changes_nothing(func, ["matmul"])


def test_matmul_of_transposed_operand_with_update_epilogue():
    """dW = x^T @ g, then W - lr * dW: the transpose is read through strides."""
    def build(b, v):
        dw = b.emit("matmul", b.emit("transpose", v["x"]), v["g"])
        return {"W_new": b.emit("sub", v["W"], b.emit("mul", b.const(0.5, "f32"), dw))}

    func = function({"x": ("f32", ("N", 50)), "g": ("f32", ("N", 30)),
                     "W": ("f32", (50, 30))}, build)
    check_fusion_changes_nothing(func, ["matmul"])


MLP = """
model mlp
input x: f32[N, 64]
input labels: i64[N]
param W1: f32[64, 40] = glorot_uniform()
param b1: f32[40] = zeros()
param W2: f32[40, 10] = glorot_uniform()
param b2: f32[10] = zeros()
h = relu(x @ W1 + b1)
logits = h @ W2 + b2
loss = mean(sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
accuracy = mean(cast(argmax(logits, axis=1) == labels, f32))
train step = sgd(loss, lr=0.1)
"""


def test_training_step_fused_equals_unfused():
    module = parse_source(MLP, "mlp.tfl")
    func = simplify(compile_entry(module, ["loss", "accuracy"], "step"))
    fused = fuse(func)
    assert {"matmul", "reduction"} <= set(kinds(fused))
    plain, joined = compile(func), compile(fused)
    for n in (1, 7, 100):
        sizes = {"N": n}
        args = random_args(func, sizes)
        # copies: a step's updates overwrite their params in place
        want_all = plain(sizes, [a.copy() for a in args])
        for out, want, got in zip(func.outputs, want_all, joined(sizes, args)):
            np.testing.assert_array_equal(got, want, err_msg=f"{out.label}, N={n}")


@pytest.mark.parametrize("width", [33, 100])
def test_row_kernel_with_whole_chunks_of_lanes(width):
    """The MNIST dropout network's row kernel (softmax and its max's gradient, with an argmax in
    the max's pass) over rows longer than the lanes: whole chunks, then a partial one."""
    def build(b, v):
        x = v["x"]
        high = b.emit("max", x, axis=1, keepdims=True)
        e = b.emit("exp", b.emit("sub", x, high))
        ties = b.emit("cast", b.emit("eq", x, high), dtype="f32")
        return {"softmax": b.emit("div", e, b.emit("sum", e, axis=1, keepdims=True)),
                "tie_share": b.emit("div", ties, b.emit("sum", ties, axis=1, keepdims=True)),
                "best": b.emit("argmin", x, axis=1),
                "total": b.emit("sum", b.emit("mul", x, x))}

    func = function({"x": ("f32", ("N", width))}, build)
    check_fusion_changes_nothing(func, ["reduction", "reduction"])
