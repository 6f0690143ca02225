"""The LLVM backend on whole functions: several ops, one native call, against NumPy directly;
and what it emits (verified LLVM, values named after the IR, vector instructions)."""

import dataclasses
import sys
import threading
import time

import llvmlite.binding as llvm
import numpy as np
import pytest
from codegen_cases import dense
from tflc.codegen import numpy_backend
from tflc.codegen.llvm import compile, emit, jit
from tflc.frontend import parse_source
from tflc.ir import Builder, Error, Function, Loc, Output, TensorType, Value
from tflc.passes.pipeline import compile_entry
from tflc.passes.plan_memory import memory_plan

RNG = np.random.default_rng(1)


@pytest.mark.parametrize("fast_math", [False, True])
def test_dense_relu_any_batch(fast_math):
    compiled = compile(dense("relu", argmax=False), fast_math=fast_math)
    w = RNG.standard_normal((20, 30)).astype(np.float32)
    bias = RNG.standard_normal(30).astype(np.float32)
    for n in (1, 7, 100, 1000):
        x = RNG.standard_normal((n, 20)).astype(np.float32)
        hidden, total = compiled({"N": n}, [x, w, bias])
        want = np.maximum(x @ w + bias, 0)
        np.testing.assert_allclose(hidden, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(total, want.sum(axis=1), rtol=1e-5, atol=1e-4)


def softmax_classifier() -> Function:
    """The MNIST tutorial's forward pass, softmax written out as its composite expands."""
    x = Value(TensorType("f32", ("N", 784)), "x")
    w = Value(TensorType("f32", (784, 10)), "W")
    bias = Value(TensorType("f32", (10,)), "b")
    labels = Value(TensorType("i64", ("N",)), "labels")
    b = Builder()
    logits = b.emit("add", b.emit("matmul", x, w), bias, name="logits")
    shifted = b.emit("sub", logits, b.emit("max", logits, axis=-1, keepdims=True))
    e = b.emit("exp", shifted)
    y = b.emit("div", e, b.emit("sum", e, axis=-1, keepdims=True), name="y")
    hits = b.emit("eq", b.emit("argmax", y, axis=1), labels)
    accuracy = b.emit("div", b.emit("sum", b.cast(hits, "f32")),
                      b.cast(b.emit("shape", x, axis=0), "f32"), name="accuracy")
    return Function("classify", ("N",), (x, w, bias, labels), tuple(b.ops),
                    (Output("y", y), Output("accuracy", accuracy), Output("W", w)))


def test_softmax_classifier():
    compiled = compile(softmax_classifier())
    w = (RNG.standard_normal((784, 10)) * 0.05).astype(np.float32)
    bias = RNG.standard_normal(10).astype(np.float32)
    for n in (1, 7, 100):
        x = RNG.random((n, 784), dtype=np.float32)
        labels = RNG.integers(0, 10, n)
        y, accuracy, w_out = compiled({"N": n}, [x, w, bias, labels])
        logits = x @ w + bias
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        want = e / e.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)
        assert accuracy.shape == () and accuracy.dtype == np.float32
        assert accuracy == np.float32(np.mean(want.argmax(axis=1) == labels))
        np.testing.assert_array_equal(w_out, w)


def test_same_bits_for_avx2_code(monkeypatch):
    """Code for 32-byte vectors without masked loop tails (as an AVX2 CPU gets, and runs here
    too) gives the same bits: matmul tiles of another width sum each element in the same
    order, and the math functions are the same formulas."""
    func = softmax_classifier()
    native = compile(func, cache=False)
    options_for = jit.options_for
    monkeypatch.setattr(jit, "options_for", lambda target, fast_math=False: dataclasses.replace(
        options_for(target, fast_math), vector_bytes=32, masked_tails=False))
    avx2 = compile(func, cache=False)
    w = (RNG.standard_normal((784, 10)) * 0.05).astype(np.float32)
    bias = RNG.standard_normal(10).astype(np.float32)
    for n in (1, 7, 100):
        args = [RNG.random((n, 784), dtype=np.float32), w, bias, RNG.integers(0, 10, n)]
        for want, got in zip(native({"N": n}, args), avx2({"N": n}, args)):
            np.testing.assert_array_equal(got, want)


def test_arrays_go_in_as_objects_or_as_addresses(monkeypatch):
    """The entry is a CPython function reading each array's data pointer at the offset checked
    in this process; where none checks out, the module has no `.boxed` entry and the caller
    passes addresses through ctypes."""
    assert jit.array_data_offset() == object.__basicsize__
    func = softmax_classifier()
    boxed = compile(func, cache=False)
    assert boxed.signature.boxed == f"{func.name}.boxed"
    monkeypatch.setattr(jit, "array_data_offset", lambda: None)
    by_address = compile(func, cache=False)
    assert by_address.signature.boxed is None
    w = (RNG.standard_normal((784, 10)) * 0.05).astype(np.float32)
    bias = RNG.standard_normal(10).astype(np.float32)
    for n in (1, 7):
        args = [RNG.random((n, 784), dtype=np.float32), w, bias, RNG.integers(0, 10, n)]
        for want, got in zip(boxed({"N": n}, args), by_address({"N": n}, args)):
            np.testing.assert_array_equal(got, want)



def test_the_python_entry_keeps_reference_counts():
    """It borrows its arguments and returns a new reference to None: after many calls no
    object's count has moved (a missing reference to None would free it in the end)."""
    compiled = compile(dense("relu", argmax=False), cache=False)
    args = [np.ones((3, 20), np.float32), np.ones((20, 30), np.float32), np.ones(30, np.float32)]
    before = [sys.getrefcount(None)] + [sys.getrefcount(a) for a in args]
    for _ in range(1000):
        compiled({"N": 3}, args)
    assert [sys.getrefcount(None)] + [sys.getrefcount(a) for a in args] == before


def test_other_python_threads_run_during_a_native_call():
    """The entry lets go of the GIL while its kernels run (~40 ms here): this thread keeps
    ticking meanwhile, with no gap near the call's length."""
    compiled = compile(parse_source("input a: f32[800, 800]\nc = a @ a @ a @ a\n", "t.tfl")
                       .function("model"), cache=False, threads=1)
    a = np.ones((800, 800), np.float32) / 800
    window = []
    call = threading.Thread(target=lambda: window.extend(
        [time.perf_counter(), compiled({}, [a]), time.perf_counter()][::2]))
    ticks = []
    call.start()
    while call.is_alive():
        ticks.append(time.perf_counter())
    start, end = window
    inside = [start] + [tick for tick in ticks if start < tick < end] + [end]
    longest_gap = max(later - earlier for earlier, later in zip(inside, inside[1:]))
    assert longest_gap < (end - start) / 2, (longest_gap, end - start)

SGD = """
model sgd
input x: f32[N, 8]
input y: f32[N, 3]
param W: f32[8, 3] = glorot_uniform()
param b: f32[3] = zeros()
loss = mse(x @ W + b, y)
train step = sgd(loss, lr=0.1)
"""


def test_step_updates_params_in_place():
    """The memory plan lets each update overwrite its param: the output is the argument."""
    func = compile_entry(parse_source(SGD, "sgd.tfl"), ["loss"], "step")
    compiled = compile(func)
    names = [v.name for v in func.args]
    assert sorted(names[j] for _, j in compiled.signature.in_place) == ["W", "b"]
    args = [RNG.standard_normal(tuple(7 if d == "N" else d for d in v.type.shape))
            .astype(np.float32) for v in func.args]
    want = numpy_backend.compile(func)({"N": 7}, [a.copy() for a in args])
    got = compiled({"N": 7}, args)
    for out, g, w in zip(func.outputs, got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=out.label)
        if out.step is not None:
            assert g is args[names.index(out.label)]


def test_param_still_read_through_a_view_is_not_overwritten():
    """W - 0.5 may overwrite W as far as the memory plan knows, but W's transpose (a view
    here, not a copy) is read by the matmul after it: the update gets a buffer of its own."""
    x = Value(TensorType("f32", ("N", 3)), "x")
    w = Value(TensorType("f32", (3, 3)), "W")
    b = Builder()
    transposed = b.emit("transpose", w)
    w_new = b.emit("sub", w, b.const(0.5, "f32"))
    y = b.emit("matmul", x, transposed, name="y")
    func = Function("f", ("N",), (x, w), tuple(b.ops),
                    (Output("y", y), Output("W", w_new, step="step")))
    assert memory_plan(func).in_place == {w_new: w}
    compiled = compile(func)
    assert compiled.signature.in_place == ()
    xs, ws = RNG.standard_normal((4, 3)).astype(np.float32), np.eye(3, dtype=np.float32)
    y_out, w_out = compiled({"N": 4}, [xs, ws])
    np.testing.assert_array_equal(ws, np.eye(3))
    np.testing.assert_allclose(y_out, xs @ ws.T, rtol=1e-6)
    np.testing.assert_array_equal(w_out, ws - 0.5)


def test_scratch_buffer_reused_across_sizes():
    """Intermediates live in one scratch buffer per thread, grown for bigger batches."""
    compiled = compile(dense("relu", argmax=False))
    w, bias = np.ones((20, 30), np.float32), np.zeros(30, np.float32)
    for n in (3, 50, 3):
        hidden, _ = compiled({"N": n}, [np.ones((n, 20), np.float32), w, bias])
        np.testing.assert_array_equal(hidden, np.full((n, 30), 20, np.float32))
    assert compiled.signature.scratch_bytes({"N": 50}) >= 50 * 30 * 4


def test_emitted_module_is_verified_and_named_after_the_ir():
    text = emit(dense("relu", argmax=False), "llvm")
    llvm.parse_assembly(text).verify()
    entry = next(line for line in text.splitlines() if line.startswith('define void @"dense"'))
    for param in ('%"x"', '%"W"', '%"b"', '%"hidden.out"', '%"total.out"', '%"scratch"',
                  'i64 %"N"'):
        assert param in entry
    assert 'define internal void @"dense.hidden"' in text
    assert '%"hidden" = call float @"llvm.maximum.f32"' in text


def test_debug_locations_are_the_source_lines():
    x = Value(TensorType("f32", ("N",)), "x")
    b = Builder(loc=Loc("nets/m.tfl", 7, 3))
    y = b.emit("exp", x, name="y")
    z = b.emit("sum", y, name="z", loc=Loc("nets/m.tfl", 9, 5))
    func = Function("f", ("N",), (x,), tuple(b.ops), (Output("y", y), Output("z", z)))
    text = emit(func, "llvm")
    llvm.parse_assembly(text).verify()
    assert '!DIFile(directory: "nets", filename: "m.tfl")' in text
    assert 'name: "f.z"' in text and "line: 9" in text
    assert "!DILocation(column: 3, line: 7" in text
    assert "\t.loc\t1 9 5" in emit(func, "asm")


def test_optimised_code_is_vectorised():
    """The evidence LLVM-NOTES names: vector types and the vectorised-loop marker in the
    optimised IR, vector registers in the assembly."""
    optimised = emit(dense("relu", argmax=False), "llvm-opt")
    assert "x float>" in optimised and "llvm.loop.isvectorized" in optimised
    assembly = emit(dense("relu", argmax=False), "asm")
    assert "%ymm" in assembly or "%zmm" in assembly
    assert "vfmadd" in assembly  # matmul steps are fused multiply-adds


def test_fast_math_only_reassociates_reductions():
    strict = emit(dense("relu", argmax=False), "llvm")
    fast = emit(dense("relu", argmax=False), "llvm", fast_math=True)
    assert "reassoc" not in strict
    assert "fadd reassoc contract float" in fast


def test_unknown_emit_kind():
    with pytest.raises(Error, match="unknown emit kind 'ptx'"):
        emit(dense("relu", argmax=False), "ptx")
