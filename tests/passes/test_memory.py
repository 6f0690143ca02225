"""plan_memory: lifetimes, buffer reuse, views, in-place updates of params and the kernel order
that allows them, the report; and every plan checked by running the function in the very
buffers it assigns (a buffer reused too early corrupts a result), on random graphs and on the
examples."""

import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tflc.codegen import numpy_backend
from tflc.frontend import parse_file
from tflc.ir import (Builder, Function, Output, TensorType, Value, parse_function, print_function,
                     verify)
from tflc.ir.registry import get
from tflc.ir.types import NUMPY_DTYPES, eval_dim
from tflc.passes.fuse import fuse
from tflc.passes.manager import run_pipeline
from tflc.passes.pipeline import select_entry
from tflc.passes.plan_memory import memory_plan, memory_report, plan_memory

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tfl"))


def values(func: Function) -> dict:
    """Every value of `func` by its printed name."""
    named = {a.name: a for a in func.args}
    for op in func.ops:
        named.update((r.name, r) for r in op.results)
    return named


def test_lifetimes_and_reuse_of_dead_buffers_of_the_same_size():
    func = parse_function("""
func @f<N>(%x: f32[N,4]) -> (f32[N], f32[N,4]) {
  %a: f32[N,4] = exp %x
  %b: f32[N,4] = neg %a
  %c: f32[N,4] = tanh %b
  %d: f32[N] = sum[axis=1] %c
  %t: f32[4,N] = transpose %c
  %e: i32[4,N] = cast[dtype=i32] %t
  %f: f32[N,4] = relu %c
  return %d, %f
}""".strip())
    plan = memory_plan(func)
    v = values(func)
    assert plan.lifetimes[v["a"]] == (0, 1)
    assert plan.lifetimes[v["c"]] == (2, 6)
    assert plan.lifetimes[v["f"]] == (6, 7)  # an output lives to the end
    buffer = plan.buffer_of
    assert buffer[v["c"]] == buffer[v["a"]]  # a died at op 1
    assert buffer[v["t"]] == buffer[v["b"]]  # another shape, the same bytes
    assert buffer[v["e"]] not in (buffer[v["c"]], buffer[v["t"]])  # both still live
    assert buffer[v["f"]] == buffer[v["e"]]  # t and e died at op 5: e's came free last
    assert buffer[v["d"]] not in (buffer[v["a"]], buffer[v["b"]])  # f32[N] is smaller
    assert [b.nbytes for b in plan.buffers] == ["16*N", "16*N", "4*N", "16*N"]
    assert x_free(plan, func)


def x_free(plan, func) -> bool:
    """Arguments belong to the caller: no buffer of the plan holds one."""
    return not any(a in plan.buffer_of for a in func.args)


def test_outputs_are_never_overwritten():
    func = parse_function("""
func @f(%x: f32[8]) -> (f32[8], f32[8]) {
  %a: f32[8] = exp %x
  %b: f32[8] = neg %a
  %c: f32[8] = tanh %b
  return %a, %c
}""".strip())
    plan = memory_plan(func)
    v = values(func)
    assert plan.buffer_of[v["c"]] not in (plan.buffer_of[v["a"]], plan.buffer_of[v["b"]])
    assert len(plan.buffers) == 3


def test_a_reshape_is_a_view_that_keeps_its_storage_alive():
    func = parse_function("""
func @f(%x: f32[2,4]) -> (f32[8]) {
  %a: f32[2,4] = exp %x
  %r: f32[8] = reshape[shape=[8]] %a
  %b: f32[2,4] = neg %x
  %c: f32[8] = reshape[shape=[8]] %b
  %d: f32[8] = add %r, %c
  return %d
}""".strip())
    plan = memory_plan(func)
    v = values(func)
    assert plan.views[v["r"]] is v["a"] and plan.buffer_of[v["r"]] == plan.buffer_of[v["a"]]
    assert plan.buffer_of[v["b"]] != plan.buffer_of[v["a"]]  # a is read through r at op 4
    assert len(plan.buffers) == 3


STEP = """
func @f<N>(%x: f32[N,4], %W: f32[4,4], %b: f32[4]) -> (f32[N,4], f32[4,4], f32[4]) {
  %y: f32[N,4] = matmul %x, %W
  %g: f32[4] = sum[axis=0] %y
  %lr: f32[] = const 0.5
  %s: f32[4] = mul %lr, %g
  %b2: f32[4] = sub %b, %s
  %xt: f32[4,N] = transpose %x
  %dW: f32[4,4] = matmul %xt, %y
  %t: f32[4,4] = mul %lr, %dW
  %W2: f32[4,4] = sub %W, %t
  return %y, train: W <- %W2, train: b <- %b2
}"""


def test_step_updates_overwrite_their_params():
    func = parse_function(STEP.strip())
    plan = memory_plan(func)
    v = values(func)
    assert plan.in_place == {v["W2"]: v["W"], v["b2"]: v["b"]}
    assert v["W2"] not in plan.buffer_of and v["b2"] not in plan.buffer_of


def test_an_update_moves_after_the_last_read_of_its_param():
    """The new W is computed before the old one is read again: plan_memory moves it after."""
    func = parse_function("""
func @f(%W: f32[4,4], %g: f32[4,4]) -> (f32[4,4], f32[4,4]) {
  %W2: f32[4,4] = sub %W, %g
  %r: f32[4,4] = mul %W, %g
  return %r, train: W <- %W2
}""".strip())
    assert memory_plan(func).in_place == {}
    moved = plan_memory(func)
    verify(moved)
    assert [op.result.name for op in moved.ops] == ["r", "W2"]
    assert memory_plan(moved).in_place == {moved.ops[1].result: func.args[0]}


def test_a_constant_update_is_not_in_place():
    func = parse_function("""
func @f(%c: i32[]) -> (i32[]) {
  %zero: i32[] = const 0
  return reset: c <- %zero
}""".strip())
    assert memory_plan(func).in_place == {} and memory_plan(func).buffers == ()


def test_no_update_in_place_where_the_old_value_is_still_needed():
    func = parse_function("""
func @f(%W: f32[4,4], %g: f32[4,4]) -> (f32[4,4], f32[4,4], f32[4,4]) {
  %W2: f32[4,4] = sub %W, %g
  %r: f32[4,4] = mul %W, %W2
  %s: f32[4,4] = matmul %W, %g
  %W3: f32[4,4] = add %s, %g
  return %r, old = %W, train: W <- %W3
}""".strip())
    # W3 is computed after every read of W, but W is also fetched: its old value must survive
    assert memory_plan(plan_memory(func)).in_place == {}
    assert memory_plan(plan_memory(func.replace(outputs=func.outputs[::2]))).in_place != {}


def test_no_update_in_place_when_its_kernel_reads_the_param_at_other_indices():
    func = parse_function("""
func @f(%W: f32[4,4], %g: f32[4,4]) -> (f32[4,4]) {
  %t: f32[4,4] = transpose %W
  %m: f32[4,4] = matmul %g, %t
  %W2: f32[4,4] = sub %W, %m
  return train: W <- %W2
}""".strip())
    assert memory_plan(func).in_place != {}  # the sub runs after the matmul, alone
    fused = fuse(func)
    assert [op.opcode for op in fused.ops] == ["fused"]  # W is transposed in the kernel
    assert memory_plan(fused).in_place == {}


def test_in_place_inside_kernels_only_where_each_index_is_written_once():
    fused = fuse(parse_function(STEP.strip()))
    kinds = [op.attrs.get("kind") for op in fused.ops if op.opcode == "fused"]
    assert kinds == ["reduction", "matmul"]  # b's update in a column sum, W's in a matmul
    assert sorted(p.name for p in memory_plan(fused).in_place.values()) == ["W", "b"]
    rows = fuse(parse_function("""
func @f<N>(%P: f32[N,4]) -> (f32[N,4]) {
  %m: f32[N,1] = max[axis=1, keepdims=true] %P
  %P2: f32[N,4] = sub %P, %m
  return train: P <- %P2
}""".strip()))
    assert rows.ops[0].attrs["kind"] == "reduction"
    assert memory_plan(rows).in_place == {}  # a row kernel reads P in two passes


def test_memory_report():
    """By hand: y and xt are 1,600 bytes at N=100; g, s 16; dW, t 64; y, xt and dW live at op 6;
    nothing dies in time for another value of its size."""
    func = parse_function(STEP.strip())
    text = memory_report(func, {"N": 100})
    assert text == "\n".join([
        "memory plan of @f (N=100):",
        "  arguments             1,680 bytes (3 values, owned by the caller)",
        "  buffers               3,360 bytes (6 buffers for 6 values; 3,360 bytes without reuse)",
        "  peak live             3,264 bytes (at op 6: matmul)",
        "  in place     W, b",
    ]) + "\n"


# -- every plan, run in its own buffers ----------------------------------------------------------

def run_in_plan(func: Function, sizes: dict, args: list, planned: bool = True) -> list:
    """Runs `func` op by op with every value stored where the plan puts it: in its buffer (a
    view of shared bytes), in its param (in place) or in its operand's storage (views). Without
    `planned`, every value gets a fresh array instead: the same computation, in the same
    contiguous layouts (NumPy's matmul rounds differently on a transposed view)."""
    plan = memory_plan(func)
    arena = {b.index: np.zeros(eval_dim(b.nbytes, sizes), np.uint8) for b in plan.buffers}
    env = {a: np.array(x) for a, x in zip(func.args, args)}  # the caller's buffers

    def storage(value: Value) -> np.ndarray:
        dtype = NUMPY_DTYPES[value.type.dtype]
        if not planned:
            return np.zeros(storage_shape(value, sizes), dtype)
        if value in plan.in_place:
            return env[plan.in_place[value]]
        return arena[plan.buffer_of[value]].view(dtype).reshape(storage_shape(value, sizes))

    for op in func.ops:
        if op.opcode == "reshape":
            env[op.result] = env[op.operands[0]].reshape(storage_shape(op.result, sizes))
            assert np.shares_memory(env[op.result], env[op.operands[0]])
            continue
        results = evaluate(op, [env[v] for v in op.operands], sizes)
        for r, array in zip(op.results, results):
            if op.opcode == "const":
                env[r] = array
            else:
                env[r] = storage(r)
                env[r][...] = array
    return [np.array(env[out.value]) for out in func.outputs]


def storage_shape(value: Value, sizes: dict) -> tuple:
    return tuple(eval_dim(d, sizes) for d in value.type.shape)


def evaluate(op, inputs: list, sizes: dict) -> list:
    """op's results from its NumPy reference, or its region's ops in turn."""
    if op.region is not None:
        env = dict(zip(op.region.args, inputs))
        for inner in op.region.ops:
            env.update(zip(inner.results, evaluate(inner, [env[v] for v in inner.operands],
                                                   sizes)))
        return [env[out.value] for out in op.region.outputs]
    dtype = NUMPY_DTYPES[op.result.type.dtype]
    if op.opcode == "const":
        return [np.asarray(op.attrs["value"], dtype)]
    reference = get(op.opcode).reference
    kwargs = dict(op.attrs)
    if "out_shape" in inspect.signature(reference).parameters:
        kwargs["out_shape"] = storage_shape(op.result, sizes)
    with np.errstate(all="ignore"):
        return [np.asarray(reference(*inputs, **kwargs), dtype)]


def assert_plan_runs(func: Function, sizes: dict, args: list) -> None:
    expected = run_in_plan(func, sizes, args, planned=False)
    for e, reference in zip(expected, numpy_backend.compile(func)(sizes, args)):
        np.testing.assert_allclose(e, reference, rtol=1e-5, atol=1e-6)
    for g, e in zip(run_in_plan(func, sizes, args), expected):
        assert np.array_equal(g, e, equal_nan=True)


@st.composite
def step_graphs(draw):
    """A function of x: f32[N,4] and a param P: f32[4,4] whose values are used a random number
    of times, with reshapes, transposes and reductions, fetched and used as P's update."""
    x, P = Value(TensorType("f32", ("N", 4)), "x"), Value(TensorType("f32", (4, 4)), "P")
    b = Builder()
    pool = [x, P]
    for _ in range(draw(st.integers(1, 14))):
        a = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["unary", "binary", "matmul", "reshape", "transpose",
                                     "reduce"]))
        if kind == "unary":
            pool.append(b.emit(draw(st.sampled_from(["neg", "exp", "tanh"])), a))
        elif kind == "binary":
            same = [v for v in pool if v.type.shape == a.type.shape]
            pool.append(b.emit(draw(st.sampled_from(["add", "mul", "sub"])), a,
                               draw(st.sampled_from(same))))
        elif kind == "matmul" and a.type.shape[-1] == 4:
            w = draw(st.sampled_from([v for v in pool if v.type.shape == (4, 4)]))
            pool.append(b.emit("matmul", a, w))
        elif kind == "reshape" and a.type.shape == (4, 4):
            pool.append(b.emit("reshape", b.emit("reshape", a, shape=[16]), shape=[4, 4]))
        elif kind == "transpose" and a.type.shape == (4, 4):
            pool.append(b.emit("transpose", a))
        elif kind == "reduce" and a.type.shape == ("N", 4):
            pool.append(b.emit("sum", a, axis=0, keepdims=True))
    squares = [v for v in pool[2:] if v.type.shape == (4, 4)]
    outputs = [Output(f"o{n}", v) for n, v in enumerate(pool[-draw(st.integers(1, 3)):])]
    if squares:
        outputs.append(Output("P", draw(st.sampled_from(squares)), "train"))
    return Function("random", ("N",), (x, P), tuple(b.ops), tuple(outputs))


@settings(max_examples=80, deadline=None)
@given(step_graphs(), st.booleans(), st.integers(0, 2 ** 32 - 1))
def test_random_plans_run_in_their_own_buffers(func, fused, seed):
    if fused:
        func = fuse(func)
    ordered = plan_memory(func)
    verify(ordered)
    rng = np.random.default_rng(seed)
    sizes = {"N": 3}
    args = [rng.normal(size=storage_shape(a, sizes)).astype(np.float32) for a in func.args]
    assert_plan_runs(ordered, sizes, args)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_steps_run_in_their_plans(path):
    module = parse_file(path)
    model = module.function("model")
    for step in (None, *model.steps):
        entry = select_entry(module, () if step else model.fetchable, step)
        func = run_pipeline(entry, ("inline", "autodiff", "simplify", "prune", "fuse",
                                    "plan_memory")).function
        sizes = {d: 3 for d in func.dims}
        rng = np.random.default_rng(0)
        args = [rng.integers(0, 10, size=storage_shape(a, sizes)).astype(
            NUMPY_DTYPES[a.type.dtype]) if not a.type.is_float else
            rng.normal(size=storage_shape(a, sizes)).astype(NUMPY_DTYPES[a.type.dtype])
            for a in func.args]
        assert_plan_runs(func, sizes, args)
        if step is not None:
            assert memory_plan(func).in_place, print_function(func)
