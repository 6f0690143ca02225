"""Reductions along rows in the LLVM backend: the documented lane order (codegen/llvm/kernels.py)
reproduced in NumPy bit for bit, special values, integers, and the evidence that the strict
(no fast-math) code is vectorised and gives the same bits for AVX2 and AVX-512 code."""

import dataclasses
import re

import numpy as np
import pytest
from codegen_cases import function
from tflc.codegen.llvm import compile, emit, jit, target, threads
from tflc.codegen.llvm.kernels import LANES
from tflc.passes.fuse import fuse

RNG = np.random.default_rng(11)
LENGTHS = (0, 1, 15, 16, 17, 31, 32, 33, 100, 1000)
COMBINE = {"sum": np.add, "prod": np.multiply}
IDENTITY = {"sum": -0.0, "prod": 1.0}


def lane_order(rows: np.ndarray, opcode: str) -> np.ndarray:
    """The documented order, row by row in the rows' own dtype: lane l combines elements l,
    l + LANES, ... from the identity; then lane i with lane i + LANES/2, ... down to lane 0."""
    combine = COMBINE[opcode]
    lanes = np.full((rows.shape[0], LANES), IDENTITY[opcode], rows.dtype)
    for start in range(0, rows.shape[1], LANES):
        chunk = rows[:, start:start + LANES]
        lanes[:, :chunk.shape[1]] = combine(lanes[:, :chunk.shape[1]], chunk)
    while lanes.shape[1] > 1:
        half = lanes.shape[1] // 2
        lanes = combine(lanes[:, :half], lanes[:, half:])
    return combine(np.asarray(IDENTITY[opcode], rows.dtype), lanes[:, 0])


def in_order(rows: np.ndarray, opcode: str) -> np.ndarray:
    """The sequential order (what strict reductions did before lanes)."""
    result = np.full(rows.shape[0], IDENTITY[opcode], rows.dtype)
    for column in rows.T:
        result = COMBINE[opcode](result, column)
    return result


def row_values(dtype: str, opcode: str, n: int) -> np.ndarray:
    """Rows whose sums depend on the order (magnitudes 1e-3 .. 1e3); products stay finite."""
    if opcode == "prod":
        return RNG.uniform(0.9, 1.1, (3, n)).astype(dtype)
    return (RNG.standard_normal((3, n)) * 10.0 ** RNG.uniform(-3, 3, (3, n))).astype(dtype)


def row_reductions(dtype: str, length):
    """Each reduction alone (an unfused kernel) and after a product (a fused one)."""
    def build(b, v):
        outputs = {}
        for opcode in ("sum", "prod"):
            outputs[opcode] = b.emit(opcode, v["x"], axis=1)
            outputs[f"fused_{opcode}"] = b.emit(opcode, b.emit("mul", v["x"], v["y"]), axis=1)
        return outputs

    return function({"x": (dtype, (3, length)), "y": (dtype, (3, length))}, build)


def test_the_order_can_be_told_apart():
    """The data of these tests sums differently in lanes and in order, so they would notice."""
    rows = row_values("float32", "sum", 1000)
    assert (lane_order(rows, "sum") != in_order(rows, "sum")).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("length", ["L", 100])  # a row length known when compiling, or not
def test_rows_combine_in_the_documented_order(dtype, length):
    func = row_reductions({"float32": "f32", "float64": "f64"}[dtype], length)
    fused = fuse(func)
    assert [op.attrs["kind"] for op in fused.ops if op.opcode == "fused"] == ["reduction"]
    labels = [out.label for out in func.outputs]
    for compiled in (compile(func), compile(fused)):
        for n in LENGTHS if length == "L" else (length,):
            for opcode in ("sum", "prod"):
                x, y = row_values(dtype, opcode, n), row_values(dtype, opcode, n)
                results = dict(zip(labels, compiled({d: n for d in func.dims}, [x, y])))
                np.testing.assert_array_equal(results[opcode], lane_order(x, opcode))
                np.testing.assert_array_equal(results[f"fused_{opcode}"],
                                              lane_order(x * y, opcode))


def test_fused_and_unfused_rows_agree_over_several_reduced_axes():
    """Rows (the last axis) in lanes, the rows of one result combined in memory order."""
    def build(b, v):
        x = v["x"]
        square = b.emit("mul", x, x)
        return {f"{opcode}{axes}": b.emit(opcode, square, axis=axes)
                for opcode in ("sum", "max") for axes in ([1, 2], [0, 2], None)}

    func = function({"x": ("f32", ("N", 3, 70))}, build)
    plain, fused = compile(func), compile(fuse(func))
    x = RNG.standard_normal((5, 3, 70)).astype(np.float32)
    for want, got in zip(plain({"N": 5}, [x]), fused({"N": 5}, [x])):
        np.testing.assert_array_equal(got, want)
    rows = (x * x).reshape(15, 70)
    want = in_order(lane_order(rows, "sum").reshape(5, 3), "sum")  # over [1, 2]: 3 rows each
    np.testing.assert_array_equal(plain({"N": 5}, [x])[0], want)


def special_rows(n: int) -> np.ndarray:
    """Rows of n elements (n >= 3) with NaN, infinities and signed zeros in whole chunks and in
    the last, partial one."""
    rows = np.ones((8, n), np.float32)
    rows[0, n // 2] = np.nan
    rows[1, -1] = np.nan
    rows[2, 0], rows[2, -1] = np.inf, -np.inf  # inf - inf: NaN
    rows[3, 1] = np.inf
    rows[4] = -0.0  # a sum of -0.0 stays -0.0
    rows[5] = -0.0
    rows[5, -1] = 0.0  # +0.0 wins a sum, and max; min keeps -0.0
    rows[6] = 0.0
    rows[6, LANES % n] = -0.0
    rows[7, -2] = -np.inf
    return rows


@pytest.mark.parametrize("n", [3, 40, 100])
def test_nan_inf_and_signed_zeros(n):
    func = function({"x": ("f32", ("N", n))},
                    lambda b, v: {op: b.emit(op, v["x"], axis=1)
                                  for op in ("sum", "prod", "max", "min")})
    rows = special_rows(n)
    results = compile(func)({"N": 8}, [rows])
    with np.errstate(invalid="ignore"):
        for opcode, got in zip(("sum", "prod"), results):
            np.testing.assert_array_equal(got, lane_order(rows, opcode))
            assert np.array_equal(np.signbit(got), np.signbit(lane_order(rows, opcode)))
    high, low = results[2:]
    # NaN propagates; max(-0.0, 0.0) is 0.0 and min is -0.0 in any order (llvm.maximum)
    np.testing.assert_array_equal(high, [np.nan, np.nan, np.inf, np.inf, -0.0, 0.0, 0.0, 1])
    np.testing.assert_array_equal(np.signbit(high), [0, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(low, [np.nan, np.nan, -np.inf, 1, -0.0, -0.0, -0.0, -np.inf])
    np.testing.assert_array_equal(np.signbit(low), [0, 0, 1, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("dtype", ["i32", "i64"])
def test_integer_rows_are_exact(dtype):
    """Integer sums wrap and products overflow exactly as NumPy's, in any order."""
    func = function({"x": (dtype, ("N", 77))},
                    lambda b, v: {op: b.emit(op, v["x"], axis=1)
                                  for op in ("sum", "prod", "max", "min")})
    info = np.iinfo(dtype.replace("i", "int"))
    x = RNG.integers(info.min, info.max, (9, 77), dtype=info.dtype)
    x[0] = info.max  # the sum wraps
    for got, want in zip(compile(func)({"N": 9}, [x]),
                         (x.sum(axis=1, dtype=info.dtype), x.prod(axis=1, dtype=info.dtype),
                          x.max(axis=1), x.min(axis=1))):
        np.testing.assert_array_equal(got, want)


def softmax_rows():
    """The MNIST dropout network's row kernel: softmax and the max's gradient (its tie count),
    with an argmax in the max's pass, and the mean of the rows' sums over the whole batch."""
    def build(b, v):
        x = v["x"]
        high = b.emit("max", x, axis=1, keepdims=True)
        e = b.emit("exp", b.emit("sub", x, high))
        total = b.emit("sum", e, axis=1, keepdims=True)
        ties = b.emit("cast", b.emit("eq", x, high), dtype="f32")
        return {"softmax": b.emit("div", e, total),
                "tie_share": b.emit("div", ties, b.emit("sum", ties, axis=1, keepdims=True)),
                "best": b.emit("argmax", x, axis=1),
                "mean_total": b.emit("div", b.emit("sum", b.emit("reshape", total, shape=["N"])),
                                     b.emit("cast", b.emit("shape", x, axis=0), dtype="f32"))}

    return function({"x": ("f32", ("N", 500))}, build)


def avx2_target():
    """The host without its AVX-512 features: what an AVX2 CPU gets (and runs here too)."""
    host = target.host()
    features = ",".join("-" + f[1:] if f.startswith("+avx512") else f
                        for f in host.features.split(","))
    return dataclasses.replace(host, features=features)


def test_same_bits_for_avx2_code_and_any_batch_size(monkeypatch):
    """The order depends neither on the vector width nor on the rows around a row."""
    func = fuse(softmax_rows())
    native = compile(func, cache=False)
    monkeypatch.setattr(jit, "host", avx2_target)
    avx2 = compile(func, cache=False)
    x = RNG.standard_normal((100, 500)).astype(np.float32)
    x[::3, 7] = x[::3, 400] = 9.0  # ties for the max
    batch = native({"N": 100}, [x])
    for want, got in zip(batch, avx2({"N": 100}, [x])):
        np.testing.assert_array_equal(got, want)
    for row in (0, 3, 99):
        for want, got in zip(batch[:3], native({"N": 1}, [x[row:row + 1]])):
            np.testing.assert_array_equal(got[0], want[row])


@pytest.mark.skipif(not threads.runtime(), reason="libgomp is not installed")
def test_same_bits_on_any_number_of_threads(every_kernel_parallel):
    compiled = compile(fuse(softmax_rows()), threads=1)
    x = RNG.standard_normal((37, 500)).astype(np.float32)
    alone = compiled({"N": 37}, [x])
    compiled.threads = 2
    for want, got in zip(alone, compiled({"N": 37}, [x])):
        np.testing.assert_array_equal(got, want)


def test_strict_row_sum_is_vectorised():
    """Vector adds of whole registers in the assembly, without any fast-math flag."""
    func = function({"x": ("f32", ("N", 500))}, lambda b, v: {"s": b.emit("sum", v["x"], axis=1)})
    assert "reassoc" not in emit(func, "llvm")
    assert re.search(r"vaddps\s+[^\n]*%[yz]mm", emit(func, "asm"))


def test_no_llvm_warning_for_a_row_pass_with_an_argmax(capfd):
    """A pass that also takes an argmax in order is not asked to vectorise (masked) as a whole,
    which LLVM cannot do and says so on stderr."""
    compile(fuse(softmax_rows()), cache=False)
    assert "loop not vectorized" not in capfd.readouterr().err
