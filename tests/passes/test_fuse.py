"""fuse: kernels on IR text (input → expected), the reasons `can_fuse` gives, the kernel contract
of every fused op, random graphs and every example model giving the same results fused or not
(bit for bit: the NumPy backend runs a region's ops as they are), and kernel counts."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pass_cases import broadcasts, check_pure_and_idempotent, check_rewrite
from tflc.codegen import numpy_backend
from tflc.frontend import parse_file
from tflc.ir import (
    Builder,
    Function,
    Output,
    TensorType,
    Value,
    parse_function,
    verify,
)
from tflc.passes.fuse import can_fuse, explain_fusion, fuse, kernel_count, kernel_space
from tflc.passes.manager import run_pipeline
from tflc.passes.pipeline import select_entry

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tfl"))
PIPELINE = ("inline", "autodiff", "simplify", "prune", "fuse", "plan_memory")

CASES = {
    "an elementwise chain is one kernel; a value used outside is a second result": ("""
func @f<N>(%x: f32[N,4], %y: f32[N,4]) -> (f32[N,4], f32[N,4]) {
  %two: f32[] = const 2.0
  %a: f32[N,4] = mul %x, %two
  %b: f32[N,4] = exp %a
  %c: f32[N,4] = add %b, %y
  %d: f32[N,4] = relu %c
  return %b, %d
}""", """
func @f<N>(%x: f32[N,4], %y: f32[N,4]) -> (f32[N,4], f32[N,4]) {
  %b: f32[N,4], %d: f32[N,4] = fused[kind=elementwise] %x, %y {
    ^(%0: f32[N,4], %1: f32[N,4]):
    %2: f32[] = const 2.0
    %3: f32[N,4] = mul %0, %2
    %4: f32[N,4] = exp %3
    %5: f32[N,4] = add %4, %1
    %6: f32[N,4] = relu %5
    yield %4, %6
  }
  return %b, %d
}"""),
    "a producer over a smaller space is not recomputed for every element": ("""
func @f<N>(%x: f32[N,4], %v: f32[4]) -> (f32[N,4]) {
  %a: f32[4] = exp %v
  %b: f32[N,4] = add %x, %a
  %c: f32[N,4] = neg %b
  return %c
}""", """
func @f<N>(%x: f32[N,4], %v: f32[4]) -> (f32[N,4]) {
  %a: f32[4] = exp %v
  %c: f32[N,4] = fused[kind=elementwise] %x, %a {
    ^(%0: f32[N,4], %1: f32[4]):
    %2: f32[N,4] = add %0, %1
    %3: f32[N,4] = neg %2
    yield %3
  }
  return %c
}"""),
    "bias add and relu are a matmul's epilogue": ("""
func @f<N>(%x: f32[N,4], %W: f32[4,3], %b: f32[3]) -> (f32[N,3]) {
  %0: f32[N,3] = matmul %x, %W
  %1: f32[N,3] = add %0, %b
  %h: f32[N,3] = relu %1
  return %h
}""", """
func @f<N>(%x: f32[N,4], %W: f32[4,3], %b: f32[3]) -> (f32[N,3]) {
  %h: f32[N,3] = fused[kind=matmul] %x, %W, %b {
    ^(%0: f32[N,4], %1: f32[4,3], %2: f32[3]):
    %3: f32[N,3] = matmul %0, %1
    %4: f32[N,3] = add %3, %2
    %5: f32[N,3] = relu %4
    yield %5
  }
  return %h
}"""),
    "a matmul reads its operands from memory, transposed in place where only it uses them": ("""
func @f<N>(%x: f32[N,4], %W: f32[3,4], %g: f32[N,3]) -> (f32[N,3], f32[N,4], f32[4,3], f32[N,3]) {
  %s: f32[N,4] = neg %x
  %t: f32[4,3] = transpose[perm=[1, 0]] %W
  %y: f32[N,3] = matmul %s, %t
  %u: f32[4,3] = transpose[perm=[1, 0]] %W
  %dx: f32[N,4] = matmul %g, %W
  %e: f32[N,3] = matmul %x, %u
  return %y, %dx, u = %u, %e
}""", """
func @f<N>(%x: f32[N,4], %W: f32[3,4], %g: f32[N,3]) -> (f32[N,3], f32[N,4], f32[4,3], f32[N,3]) {
  %s: f32[N,4] = neg %x
  %y: f32[N,3] = fused[kind=matmul] %W, %s {
    ^(%0: f32[3,4], %1: f32[N,4]):
    %2: f32[4,3] = transpose[perm=[1, 0]] %0
    %3: f32[N,3] = matmul %1, %2
    yield %3
  }
  %u: f32[4,3] = transpose[perm=[1, 0]] %W
  %dx: f32[N,4] = matmul %g, %W
  %e: f32[N,3] = matmul %x, %u
  return %y, %dx, %u, %e
}"""),
    "softmax is one row kernel: max, sub, exp, sum and div": ("""
func @f<N>(%x: f32[N,10]) -> (f32[N,10]) {
  %m: f32[N,1] = max[axis=-1, keepdims=true] %x
  %z: f32[N,10] = sub %x, %m
  %e: f32[N,10] = exp %z
  %s: f32[N,1] = sum[axis=-1, keepdims=true] %e
  %p: f32[N,10] = div %e, %s
  return %p
}""", """
func @f<N>(%x: f32[N,10]) -> (f32[N,10]) {
  %p: f32[N,10] = fused[kind=reduction] %x {
    ^(%0: f32[N,10]):
    %1: f32[N,1] = max[axis=-1, keepdims=true] %0
    %2: f32[N,10] = sub %0, %1
    %3: f32[N,10] = exp %2
    %4: f32[N,1] = sum[axis=-1, keepdims=true] %3
    %5: f32[N,10] = div %3, %4
    yield %5
  }
  return %p
}"""),
    "a mean's scaling is its sum's epilogue; a reduction over other rows is a new kernel": ("""
func @f<N>(%x: f32[N,4]) -> (f32[]) {
  %r: f32[N] = sum[axis=1] %x
  %n: f32[N] = neg %r
  %t: f32[] = sum %n
  %four: f32[] = const 4.0
  %m: f32[] = div %t, %four
  return %m
}""", """
func @f<N>(%x: f32[N,4]) -> (f32[]) {
  %n: f32[N] = fused[kind=reduction] %x {
    ^(%0: f32[N,4]):
    %1: f32[N] = sum[axis=1, keepdims=false] %0
    %2: f32[N] = neg %1
    yield %2
  }
  %m: f32[] = fused[kind=reduction] %n {
    ^(%3: f32[N]):
    %4: f32[] = sum[axis=none, keepdims=false] %3
    %5: f32[] = const 4.0
    %6: f32[] = div %4, %5
    yield %6
  }
  return %m
}"""),
    "a reshape between a row's two shapes stays in the row kernel": ("""
func @f<N>(%x: f32[N,4]) -> (f32[N,4]) {
  %s: f32[N] = sum[axis=1] %x
  %t: f32[N,1] = reshape[shape=[N, 1]] %s
  %u: f32[N,4] = mul %x, %t
  return %u
}""", """
func @f<N>(%x: f32[N,4]) -> (f32[N,4]) {
  %u: f32[N,4] = fused[kind=reduction] %x {
    ^(%0: f32[N,4]):
    %1: f32[N] = sum[axis=1, keepdims=false] %0
    %2: f32[N,1] = reshape[shape=[N, 1]] %1
    %3: f32[N,4] = mul %0, %2
    yield %3
  }
  return %u
}"""),
    "a row's total broadcast along the rows stays out of the row kernel": ("""
func @f(%x: f32[4,4]) -> (f32[4,4]) {
  %s: f32[4] = sum[axis=[1], keepdims=false] %x
  %y: f32[4,4] = add %x, %s
  return %y
}""", None),  # NumPy adds row j's total to column j: not the row the kernel is on
    "nor does a row's total reshaped to lie along the rows": ("""
func @f(%x: f32[4,4]) -> (f32[4,4]) {
  %s: f32[4] = sum[axis=[1], keepdims=false] %x
  %r: f32[1,4] = reshape[shape=[1, 4]] %s
  %y: f32[4,4] = add %x, %r
  return %y
}""", None),
    "a column's total broadcast along the rows joins the column kernel": ("""
func @f(%x: f32[4,4]) -> (f32[4,4]) {
  %s: f32[4] = sum[axis=[0], keepdims=false] %x
  %y: f32[4,4] = add %x, %s
  return %y
}""", """
func @f(%x: f32[4,4]) -> (f32[4,4]) {
  %y: f32[4,4] = fused[kind=reduction] %x {
    ^(%0: f32[4,4]):
    %1: f32[4] = sum[axis=[0], keepdims=false] %0
    %2: f32[4,4] = add %0, %1
    yield %2
  }
  return %y
}"""),
    "no kernel takes a producer that feeds it through another kernel (a cycle)": ("""
func @f<N>(%x: f32[N,4]) -> (f32[N,4]) {
  %a: f32[N,4] = exp %x
  %t: f32[4,N] = transpose %a
  %u: f32[N,4] = transpose %t
  %c: f32[N,4] = add %a, %u
  return %c
}""", None),
}


@pytest.mark.parametrize("name", CASES)
def test_kernels(name):
    fused = check_rewrite(fuse, *CASES[name])
    for op in fused.ops:
        if op.opcode == "fused":
            assert kernel_space(op).kind == op.attrs["kind"]


@pytest.mark.parametrize("name", CASES)
def test_input_is_left_unchanged_and_a_second_run_changes_nothing(name):
    check_pure_and_idempotent(fuse, CASES[name][0])


def test_can_fuse_says_why_not():
    x, W = Value(TensorType("f32", ("N", 4)), "x"), Value(TensorType("f32", (4, 3)), "W")
    v = Value(TensorType("f32", (4,)), "v")
    b = Builder()
    e = b.emit("exp", x)
    row = b.emit("sum", e, axis=1)
    b.emit("sum", row)
    m = b.emit("matmul", e, W)
    b.emit("relu", m)
    b.emit("sum", m, axis=0)
    t = b.emit("transpose", W)
    b.emit("matmul", x, b.emit("transpose", t))
    b.emit("add", x, b.emit("neg", v))
    b.emit("reshape", b.emit("mul", x, b.const(2.0, "f32")), shape=[4, "N"])
    (exp, rows, total, mm, relu, cols, trans, back, mm2, neg, add, two, mul, regroup) = b.ops
    assert can_fuse(exp, rows) is None
    assert can_fuse(mm, relu) is None
    assert can_fuse(back, mm2) is None
    assert "recomputed for every read" in can_fuse(exp, mm)
    assert "only elementwise epilogues, not another reduction" in can_fuse(mm, cols)
    assert "reductions over different rows" in can_fuse(rows, total)
    assert "reads its operand from memory" in can_fuse(trans, back)
    assert "spaces differ: elementwise [4] and elementwise [N,4]" in can_fuse(neg, add)
    assert "constants are data" in can_fuse(two, mul)
    assert "regroups elements" in can_fuse(mul, regroup)


def test_explain_fusion_lists_kernels_and_reasons():
    func = parse_function(CASES["a producer over a smaller space is not recomputed for every "
                                "element"][0].strip())
    text = explain_fusion(func)
    assert text.splitlines()[0] == "fuse @f: 3 kernels before, 2 after"
    assert "kernel 2 (elementwise [N,4]): add %b, neg %c" in text
    assert "%a (exp) -> %b (add): the kernels would not fit together: their spaces differ: " \
           "elementwise [4] and elementwise [N,4]" in text


def test_kernel_space_refuses_a_region_that_breaks_its_contract():
    func = fuse(parse_function(CASES["bias add and relu are a matmul's epilogue"][0].strip()))
    op = func.ops[0]
    with pytest.raises(ValueError, match="holds a matmul"):
        kernel_space(op.__class__(op.opcode, op.operands, op.results, {"kind": "elementwise"},
                                  op.loc, op.region))
    # a column kernel's region holding a row's total read along the rows
    column = fuse(parse_function(
        CASES["a column's total broadcast along the rows joins the column kernel"][0].strip()))
    op = column.ops[0]
    rows = replace(op.region.ops[0], attrs={**op.region.ops[0].attrs, "axis": [1]})
    region = op.region.replace(ops=(rows, *op.region.ops[1:]))
    with pytest.raises(ValueError, match="reads a value computed for one row at another"):
        kernel_space(replace(op, region=region))


# -- random graphs -------------------------------------------------------------------------------

SHAPES = [("N", 4), ("N", 1), ("N",), (4,), ()]


@st.composite
def graphs(draw):
    """Functions mixing elementwise ops over broadcast shapes, row and column reductions,
    reshapes between a row's shapes, matmuls with transposed operands and bias epilogues."""
    args = (Value(TensorType("f32", ("N", 4)), "x"), Value(TensorType("f32", (4,)), "v"),
            Value(TensorType("f32", (4, 4)), "W"), Value(TensorType("f32", ()), "s"))
    b = Builder()
    pool = list(args)
    for _ in range(draw(st.integers(1, 16))):
        x = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "matmul",
                                     "reshape", "broadcast"]))
        if kind == "unary":
            pool.append(b.emit(draw(st.sampled_from(["neg", "exp", "tanh", "relu"])), x))
        elif kind == "binary":
            y = draw(st.sampled_from(pool + [b.const(draw(st.sampled_from([0.5, 2.0])), "f32")]))
            if broadcasts(x, y):
                pool.append(b.emit(draw(st.sampled_from(["add", "mul", "sub", "maximum"])), x, y))
        elif kind == "reduce" and x.type.rank > 0:
            axis = draw(st.integers(0, x.type.rank - 1))
            pool.append(b.emit(draw(st.sampled_from(["sum", "max"])), x, axis=axis,
                               keepdims=draw(st.booleans())))
        elif kind == "matmul" and x.type.rank == 2 and x.type.shape[-1] == 4:
            w = draw(st.sampled_from([v for v in pool if v.type.shape == (4, 4)]))
            if draw(st.booleans()):
                w = b.emit("transpose", w)
            pool.append(b.emit("matmul", x, w))
        elif kind == "reshape" and x.type.shape == ("N",):
            pool.append(b.emit("reshape", x, shape=["N", 1]))
        elif kind == "broadcast" and x.type.shape in ((4,), ()):
            pool.append(b.emit("broadcast_to", x, shape=["N", 4]))
        pool = [v for v in pool if v.type.shape in SHAPES or v.type.shape == (4, 4)]
    made = [r for op in b.ops for r in op.results]
    outputs = tuple(Output(f"o{n}", v) for n, v in enumerate(made[-draw(st.integers(1, 4)):]))
    return Function("random", ("N",), args, tuple(b.ops), outputs)


def all_ops(func: Function):
    for op in func.ops:
        if op.region is None:
            yield op
        else:
            yield from all_ops(op.region)


@settings(max_examples=80, deadline=None)
@given(graphs(), st.integers(0, 2 ** 32 - 1))
def test_random_graphs_keep_every_bit_and_compute_each_value_once(func, seed):
    fused = fuse(func)
    verify(fused)
    for op in fused.ops:
        if op.opcode == "fused":
            assert kernel_space(op).kind == op.attrs["kind"]
    # every op is still there exactly once, but scalar constants (copied into regions)
    counts = Counter(op.opcode for op in all_ops(fused) if op.opcode != "const")
    assert counts == Counter(op.opcode for op in func.ops if op.opcode != "const")
    assert kernel_count(fused) <= kernel_count(func)
    sizes = {"N": 3}
    rng = np.random.default_rng(seed)
    args = [rng.normal(size=tuple(sizes.get(d, d) for d in a.type.shape)).astype(np.float32)
            for a in func.args]
    expected = numpy_backend.compile(func)(sizes, args)
    got = numpy_backend.compile(fused)(sizes, args)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and np.array_equal(g, e, equal_nan=True)


# -- the example models --------------------------------------------------------------------------

def entries():
    """(example, fetches, step) for each example: all its fetches, and each of its steps."""
    for path in EXAMPLES:
        model = parse_file(path).function("model")
        yield pytest.param(path, model.fetchable, None, id=f"{path.stem}-fetches")
        for step in model.steps:
            yield pytest.param(path, (), step, id=f"{path.stem}-{step}")


def random_args(func: Function, sizes: dict, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    args = []
    for a in func.args:
        shape = tuple(sizes.get(d, d) for d in a.type.shape)
        if a.type.is_float:
            args.append((0.5 * rng.normal(size=shape)).astype(a.type.dtype.replace("f", "float")))
        else:  # class labels, counters, state counts: small non-negative integers
            args.append(rng.integers(0, 10, size=shape).astype(a.type.dtype.replace("i", "int")))
    return args


@pytest.mark.parametrize("path, fetches, step", list(entries()))
def test_examples_give_the_same_results_without_each_pass(path, fetches, step):
    """The whole pipeline, and the pipeline less simplify, fuse or plan_memory: the same bits
    (the examples have no naive log(softmax), the one rewrite that changes rounding)."""
    entry = select_entry(parse_file(path), list(fetches), step)
    full = run_pipeline(entry, PIPELINE, verify=True).function
    sizes = {d: 3 for d in full.dims}
    args = random_args(full, sizes)
    expected = numpy_backend.compile(full)(sizes, args)
    for left_out in ("simplify", "fuse", "plan_memory"):
        passes = [p for p in PIPELINE if p != left_out]
        without = run_pipeline(entry, passes, verify=True).function
        assert [a.name for a in without.args] == [a.name for a in full.args]
        got = numpy_backend.compile(without)(sizes, args)
        for g, e, out in zip(got, expected, full.outputs):
            assert np.array_equal(g, e, equal_nan=True), (left_out, out.label)


# Kernels per entry after the whole pipeline (docs/passes.md has the table, and how it was made).
KERNELS = {"mnist_mlp-fetches": 4, "mnist_mlp-step": 9, "mnist_relu-fetches": 6,
           "mnist_relu-train_step": 14, "logistic_regression-fetches": 3,
           "logistic_regression-step": 5, "mnist_dropout-fetches": 10, "mnist_dropout-step": 19}


@pytest.mark.parametrize("name", KERNELS)
def test_tutorial_networks_are_a_handful_of_kernels(name):
    stem, entry_name = name.split("-")
    module = parse_file(EXAMPLES[0].with_name(stem + ".tfl"))
    model = module.function("model")
    entry = select_entry(module, model.fetchable if entry_name == "fetches" else (),
                         None if entry_name == "fetches" else entry_name)
    assert kernel_count(run_pipeline(entry, PIPELINE).function) == KERNELS[name]
