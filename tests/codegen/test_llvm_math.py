"""exp, log, tanh and sigmoid as the LLVM backend writes them out (codegen/llvm/mathfns.py):
errors in ulps against a more precise reference (float64 for f32, the x87 long double for f64),
special values, and evidence that they vectorise (no libm call left in the loop)."""

import numpy as np
import pytest

from tflc.codegen.llvm import compile, emit
from tflc.ir import Builder, Function, Output, TensorType, Value

FUNCTIONS = ("exp", "log", "tanh", "sigmoid")
MAX_ULPS = {"exp": 1.5, "log": 1.0, "tanh": 3.5, "sigmoid": 3.0}
PRECISE = {"f32": np.float64, "f64": np.longdouble}
NUMPY = {"f32": np.float32, "f64": np.float64}
RNG = np.random.default_rng(2)


def math_function(dtype: str) -> Function:
    x = Value(TensorType(dtype, ("N",)), "x")
    b = Builder()
    outputs = tuple(Output(name, b.emit(name, x)) for name in FUNCTIONS)
    return Function("math", ("N",), (x,), tuple(b.ops), outputs)


@pytest.fixture(scope="module", params=["f32", "f64"])
def compiled(request):
    return request.param, compile(math_function(request.param))


def precise(name: str, x: np.ndarray, dtype: str) -> np.ndarray:
    x = x.astype(PRECISE[dtype])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return {"exp": np.exp, "log": np.log, "tanh": np.tanh,
                "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[name](x)


def rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # to inf, as the function under test must
        return values.astype(NUMPY[dtype])


def ulp_errors(got: np.ndarray, want: np.ndarray, dtype: str) -> np.ndarray:
    """|got - want| in units of the last place of `want` rounded to dtype."""
    rounded_want = rounded(want, dtype)
    ulp = np.spacing(np.abs(rounded_want)).astype(PRECISE[dtype])
    return (np.abs(got.astype(PRECISE[dtype]) - want) / ulp).astype(np.float64)


def inputs(name: str, dtype: str) -> np.ndarray:
    """Wide ranges (through overflow and subnormal results) and the region near 0 or 1."""
    big = {"f32": 89.0, "f64": 709.0}[dtype]
    tiny = {"f32": 1e-38, "f64": 1e-307}[dtype]
    parts = {
        "exp": [RNG.uniform(-1.2 * big, big, 20000), RNG.uniform(-1, 1, 20000)],
        "log": [np.exp(RNG.uniform(-1.1 * big, big, 20000)), RNG.uniform(0.5, 2, 20000),
                RNG.uniform(0, tiny, 1000)],
        "tanh": [RNG.uniform(-12, 12, 20000), RNG.uniform(-0.01, 0.01, 20000),
                 RNG.uniform(-tiny, tiny, 1000)],
        # sigmoid below -big overflows exp(-x) in the dtype itself, in the reference formula too
        "sigmoid": [RNG.uniform(-big + 1, 100, 20000), RNG.uniform(-1, 1, 20000)],
    }[name]
    return rounded(np.concatenate(parts), dtype)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_error_in_ulps(compiled, name):
    dtype, function = compiled
    x = inputs(name, dtype)
    got = function({"N": len(x)}, [x])[FUNCTIONS.index(name)]
    want = precise(name, x, dtype)
    finite = np.isfinite(rounded(want, dtype))
    np.testing.assert_array_equal(got[~finite], rounded(want[~finite], dtype))
    errors = ulp_errors(got[finite], want[finite], dtype)
    worst = int(np.argmax(errors))
    assert errors[worst] <= MAX_ULPS[name], (x[finite][worst], got[finite][worst])


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0]


def test_special_values(compiled):
    dtype, function = compiled
    x = np.array(SPECIAL, NUMPY[dtype])
    exp, log, tanh, sigmoid = function({"N": len(x)}, [x])
    nan = np.nan
    np.testing.assert_array_equal(exp[:5], [nan, np.inf, 0, 1, 1])
    np.testing.assert_array_equal(log, [nan, np.inf, nan, -np.inf, -np.inf, nan, 0])
    np.testing.assert_array_equal(tanh[:5], [nan, 1, -1, 0, 0])
    assert np.signbit(tanh[4])  # tanh(-0.0) is -0.0
    np.testing.assert_array_equal(sigmoid[:5], [nan, 1, 0, 0.5, 0.5])


def test_no_libm_calls_and_vectorised():
    optimised = emit(math_function("f32"), "llvm-opt")
    for libm in ("@expf", "@logf", "@tanhf", "@llvm.exp.", "@llvm.log.", "@llvm.tanh."):
        assert libm not in optimised
    assert "x float>" in optimised and "llvm.loop.isvectorized" in optimised
