"""`fused` ops (passes/fuse.py) in the cuda backend, without a GPU: each kind of fused kernel,
with each way of handing out rows (a thread, a warp, a block per row), run on test_ptx_ops.py's
emulator. A fused kernel does the unfused GPU kernels' scalar operations in their order, so
fusing must not change a single bit of any output; NumPy checks both.

Then the example models: how many kernels each entry launches with and without fusion, their
fused and unfused outputs bit for bit (the tutorials' with -m slow); and ptxas on every case
fused and on the examples' fused steps."""

from pathlib import Path

import numpy as np
import pytest
import test_ptx_ops as ops
from codegen_cases import function, needs_toolkit
from tflc.codegen.ptx.lower import lower
from tflc.frontend import parse_file
from tflc.ir import Error, Function
from tflc.passes.fuse import fuse
from tflc.passes.pipeline import DEFAULT_PIPELINE, run_pipeline, select_entry
from tflc.runtime import cuda

emulator, emulated = ops.emulator, ops.emulated  # the emulator's fixtures
UNFUSED_PIPELINE = tuple(name for name in DEFAULT_PIPELINE if name != "fuse")


def kinds(func: Function) -> list[str]:
    return sorted(op.attrs["kind"] for op in func.ops if op.opcode == "fused")


def assert_same_bits(got: list, want: list, func: Function, context: str) -> None:
    for out, g, w in zip(func.outputs, got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (out.label, context)
        assert g.tobytes() == w.tobytes(), f"{out.label} ({context}): {g} != {w}"


CASES: dict[str, tuple[ops.Case, list[str]]] = {}  # name → the unfused case, its fused kinds


def case(args: dict, expected: list[str], ranges=None, fixed=None, tolerance=None):
    """Registers the decorated builder's function, to be fused into kernels of the `expected`
    kinds."""
    def register(build):
        func = function(args, build, build.__name__)
        CASES[build.__name__] = (ops.Case(func, ranges or {}, fixed or {}, tolerance), expected)
        return build
    return register


# -- elementwise: a thread per element -------------------------------------------------------

@case({"x": ("f32", ("N", 3, 8)), "row": ("f32", (8,)), "column": ("f32", ("N", 3, 1)),
       "mask": ("bool", ("N", 1, 8))}, ["elementwise"], tolerance=ops.TOLERANCE["f32"])
def elementwise_chain(b, v):
    """Broadcast operands, yields of three dtypes."""
    t = b.emit("tanh", b.emit("mul", v["x"], v["row"]))
    scaled = b.emit("exp", b.emit("add", t, v["column"]))
    return {"t": t, "y": b.emit("where", v["mask"], scaled, b.const(0.5, "f32")),
            "big": b.emit("gt", scaled, b.const(1.0, "f32")),
            "twice": b.emit("cast", b.emit("mul", scaled, b.const(2.0, "f32")), dtype="f64")}


# -- reductions: a warp, a block or a thread per row ----------------------------------------

def softmax_rows(b, v):
    """Phases over each row: max, then the sum of exp, then the division; argmax joins the
    max, and row-shaped values (the log of the sum) are yields too."""
    x = v["x"]
    e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axis=-1, keepdims=True)))
    total = b.emit("sum", e, axis=-1, keepdims=True)
    return {"softmax": b.emit("div", e, total),
            "log_total": b.emit("log", b.emit("reshape", total, shape=[-1])),
            "best": b.emit("argmax", x, axis=1)}


@case({"x": ("f32", ("N", 100))}, ["reduction"], tolerance=ops.SUMS["f32"])
def softmax_a_warp_per_row(b, v):
    return softmax_rows(b, v)


@case({"x": ("f64", (3, 1500))}, ["reduction"], tolerance=ops.SUMS["f64"])
def softmax_a_block_per_row(b, v):
    """Rows longer than a warp takes (1024): merged across the block in shared memory."""
    return softmax_rows(b, v)


@case({"x": ("f32", ("N", 3, 4))}, ["reduction"], tolerance=ops.SUMS["f32"])
def symbolic_rows(b, v):
    """Reductions over two axes, of symbolic length (a block per row), and their epilogues."""
    x = v["x"]
    total = b.emit("sum", b.emit("square", x), axis=[0, 2])
    return {"total": total, "scaled": b.emit("mul", total, b.const(0.25, "f32")),
            "largest": b.emit("max", b.emit("abs", x), axis=[0, 2], keepdims=True)}


@case({"d": ("f32", ("N", 30)), "b": ("f32", (30,))}, ["reduction"],
      tolerance=ops.SUMS["f32"])
def sum_over_the_batch(b, v):
    """A bias gradient and its SGD update: the last axis is kept, a thread sums each column."""
    g = b.emit("sum", b.emit("mul", v["d"], v["d"]), axis=0)
    return {"g": g, "b_new": b.emit("sub", v["b"], b.emit("mul", b.const(0.1, "f32"), g))}


@case({"x": ("f64", ("N", 5, 7))}, ["reduction"], tolerance=ops.SUMS["f64"])
def middle_axis(b, v):
    x = v["x"]
    low = b.emit("min", x, axis=1, keepdims=True)
    return {"shifted": b.emit("sub", x, low),
            "spread": b.emit("sum", b.emit("sub", x, low), axis=1)}


@case({"x": ("i64", ("N", 40))}, ["reduction"], ranges={"x": (-2, 2)})  # many ties
def integer_rows_and_argmin(b, v):
    x = v["x"]
    return {"sum": b.emit("sum", b.emit("mul", x, x), axis=1),
            "prod": b.emit("prod", b.emit("add", x, b.const(1, "i64")), axis=1),
            "low": b.emit("argmin", b.emit("mul", x, x), axis=1)}


TIES = np.full((4, 70), 1.0, np.float32)
TIES[0, 40], TIES[0, 7] = 3.0, 3.0  # a tie between lanes 8 and 7, on different turns
TIES[1, 33], TIES[1, 65], TIES[1, 50] = np.nan, np.nan, np.inf  # the first NaN
TIES[2] = -0.0
TIES[2, 3], TIES[2, 36] = 0.0, -1.0  # 0.0 ties -0.0: the first element
TIES[3, 69], TIES[3, 0] = -np.inf, -np.inf


@case({"x": ("f32", (4, 70))}, ["reduction"], fixed={"x": TIES})
def argmax_ties_and_nans(b, v):
    """Lanes merge their best values as a tree; ties and NaNs go to the first, as in order."""
    x = v["x"]
    return {"best": b.emit("argmax", x, axis=1), "worst": b.emit("argmin", x, axis=1),
            "top": b.emit("max", x, axis=1)}


def test_a_rows_total_broadcast_along_the_rows_is_right(emulated):
    """`x + sum(x, axis=1)` for a square x adds row j's total to column j: the fuse pass keeps
    the total out of the row kernel (it would be read at rows not reached yet)."""
    def build(b, v):
        return {"y": b.emit("add", v["x"], b.emit("sum", v["x"], axis=1))}

    func = fuse(function({"x": ("f32", (4, 4))}, build))
    ops.check(ops.Case(func, {}, {}, ops.SUMS["f32"]), emulated(func), (0,))


# -- matmul: the epilogue in registers ---------------------------------------------------------

DENSE = {"x": ("f32", ("N", 40)), "W": ("f32", (40, 30)), "b": ("f32", (30,))}


def dense(b, v, yield_product: bool):
    product = b.emit("matmul", v["x"], v["W"])
    z = b.emit("add", product, v["b"])
    outputs = {"h": b.emit("relu", z), "mask": b.emit("gt", z, b.const(0.0, "f32"))}
    if yield_product:
        outputs["product"] = product
    return outputs


@case(DENSE, ["matmul"], tolerance=ops.SUMS["f32"])
def bias_relu_and_mask(b, v):
    return dense(b, v, yield_product=False)


@case(DENSE, ["matmul"], tolerance=ops.SUMS["f32"])
def product_and_its_epilogue(b, v):
    """The product is a yield too: stored from registers with the epilogue's."""
    return dense(b, v, yield_product=True)


@case({"x": ("f32", ("N", 20)), "g": ("f32", ("N", 30)), "W": ("f32", (20, 30))}, ["matmul"],
      tolerance=ops.SUMS["f32"])
def transposed_operand_and_update(b, v):
    """dW = x^T @ g, then W - lr * dW: the transpose is read through strides."""
    dw = b.emit("matmul", b.emit("transpose", v["x"]), v["g"])
    return {"W_new": b.emit("sub", v["W"], b.emit("mul", b.const(0.5, "f32"), dw))}


@case({"x": ("f64", ("N", 19)), "w": ("f64", (19,)), "s": ("f64", ()),
       "a": ("f64", (2, "N", 5)), "c": ("f64", (5, 3)), "scale": ("f64", (2, 1, 3))},
      ["matmul", "matmul"], tolerance=ops.SUMS["f64"])
def vectors_and_batches(b, v):
    """A 1-D operand (C gets a dim of 1 in the kernel) and batch dims broadcast in the
    epilogue."""
    column = b.emit("matmul", v["x"], v["w"])
    batched = b.emit("matmul", v["a"], v["c"])
    return {"column": b.emit("tanh", b.emit("add", column, v["s"])),
            "batched": b.emit("mul", batched, v["scale"])}


# -- every case, fused and not ---------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_fused_are_the_unfused_bits(emulated, name):
    """The fused function has a kernel of each expected kind, each launched once, and gives the
    unfused outputs bit for bit, which are NumPy's within the usual tolerance."""
    unfused, expected = CASES[name]
    fused = fuse(unfused.func)
    assert kinds(fused) == sorted(expected)
    assert len(lower(fused, "sm_90").plan.launches) == len(expected)
    joined = emulated(fused)
    check_same_bits(unfused, joined, emulated(unfused.func), ops.EMULATED_BATCHES)
    ops.check(ops.Case(fused, unfused.ranges, unfused.fixed, unfused.tolerance), joined,
              ops.EMULATED_BATCHES)


def check_same_bits(unfused: ops.Case, joined, plain, batches) -> None:
    """The fused and the unfused function compiled, on the case's arguments at each batch size."""
    for n in (0,) if unfused.fixed else batches:
        sizes = {d: n for d in unfused.func.dims}
        args = unfused.args(sizes)
        assert_same_bits(joined(sizes, args), plain(sizes, args), unfused.func, f"N={n}")


# -- the example models ------------------------------------------------------------------------

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tfl"))
QUICK = ("linear_regression", "logistic_regression")  # the others with -m slow

# kernels launched by each example's entries on the GPU (unfused, fused): docs/cuda.md. Fused
# are the `fuse` pass's kernels, one per `shape`, and copies of fetched constants and arguments.
LAUNCHES = {
    "add_mul_fetches": (4, 4),  # copies of constants into their outputs
    "broadcast_fetches": (6, 3),
    "counter_fetches": (0, 0),
    "counter_c_update": (1, 1),
    "hello_fetches": (4, 2),
    "linear_regression_fetches": (23, 3),
    "logistic_regression_fetches": (22, 4),
    "logistic_regression_step": (32, 6),
    "mnist_dropout_fetches": (39, 11),
    "mnist_dropout_step": (160, 20),
    "mnist_mlp_fetches": (31, 5),
    "mnist_mlp_step": (63, 10),
    "mnist_relu_fetches": (28, 8),
    "mnist_relu_train_step": (57, 15),
    "placeholder_fetches": (3, 2),
}


def entries(pipeline):
    for path in EXAMPLES:
        module = parse_file(path)
        model = module.function("model")
        for fetches, step in [(model.fetchable, None)] + [((), step) for step in model.steps]:
            entry = run_pipeline(select_entry(module, list(fetches), step), pipeline)
            yield entry.function.replace(name=f"{path.stem}_{step or 'fetches'}")


@pytest.fixture(scope="module")
def examples():
    """Each example entry, fused and unfused, by name."""
    return {fused.name: (fused, plain)
            for fused, plain in zip(entries(DEFAULT_PIPELINE), entries(UNFUSED_PIPELINE))}


def test_kernels_launched_by_each_example(examples):
    counts = {name: tuple(len(lower(func, "sm_90").plan.launches) for func in (plain, fused))
              for name, (fused, plain) in examples.items()}
    assert counts == LAUNCHES


@pytest.mark.parametrize("name", [
    pytest.param(f"{path.stem}_{entry}", marks=() if path.stem in QUICK else pytest.mark.slow)
    for path in EXAMPLES for entry in ["fetches", *parse_file(path).function("model").steps]])
def test_examples_fused_are_the_unfused_bits(emulated, examples, name):
    check_example_bits(examples[name], emulated)


def check_example_bits(entry: tuple[Function, Function], compile_) -> None:
    fused, plain = entry
    sizes = {d: 5 for d in fused.dims}
    args = ops.example_args(fused, sizes)
    assert_same_bits(compile_(fused)(sizes, args), compile_(plain)(sizes, args), fused,
                     fused.name)


@needs_toolkit
def test_ptxas_accepts_the_fused_cases_and_steps(examples, tmp_path):
    funcs = [fuse(unfused.func) for unfused, _ in CASES.values()]
    funcs += [fused for name, (fused, _) in examples.items() if not name.endswith("_fetches")]
    ops.assemble_all([ops.Case(func, {}, {}) for func in funcs], tmp_path)


# -- on the GPU ---------------------------------------------------------------------------------

gpu = ops.gpu  # the fixture: skips without a GPU and pycuda


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(CASES))
def test_on_gpu_fused_are_the_unfused_bits(gpu, name):
    unfused, _ = CASES[name]
    check_same_bits(unfused, cuda.compile(fuse(unfused.func)), cuda.compile(unfused.func),
                    ops.BATCHES)


@pytest.mark.gpu
def test_on_gpu_examples_fused_are_the_unfused_bits(gpu, examples):
    for entry in examples.values():
        check_example_bits(entry, cuda.compile)
