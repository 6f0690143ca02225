"""exp, log and tanh written out in IR, so that loops calling them vectorise.

LLVM turns `llvm.exp.f32` into a scalar libm call in every iteration (LLVM-NOTES: 73 ms for 16M
floats, like NumPy, against 9.8 ms written out). These are branch-free straight-line code:
range reduction, a polynomial, reassembly, and selects for the special values (NaN, ±inf, 0,
overflow, subnormals), so every lane of a vector can take its own path.

The polynomials are truncated Taylor/atanh series, coefficients 1/k! and 1/(2k+1), with enough
terms that the truncation error is far below an ulp; the error comes from rounding:
`tests/codegen/test_llvm_math.py` measures it against float64/extended references and holds
it to the bounds stated in each function's docstring. With FMA (`Scalar.fma`) the polynomial
steps are fused multiply-adds, so results can differ by an ulp between machines with and
without FMA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llvmlite import ir

from .scalar import Scalar, const, llvm_type


@dataclass(frozen=True)
class Format:
    """An IEEE binary format, and the constants of the functions below for it."""

    bits: int  # of the whole number
    mantissa: int  # explicit mantissa bits
    exp_degree: int  # Taylor terms of e**r - 1 on |r| <= ln(2)/2
    log_terms: int  # atanh series terms after the first, on |s| <= 0.1716
    ln2_hi: float  # ln(2) = ln2_hi + ln2_lo, ln2_hi with trailing zero bits (n * ln2_hi exact)
    ln2_lo: float

    @property
    def bias(self) -> int:
        return 2 ** (self.bits - self.mantissa - 2) - 1

    @property
    def int_type(self) -> ir.IntType:
        return ir.IntType(self.bits)

    @property
    def exp_limits(self) -> tuple[float, float]:
        """exp(x) is 0 below the first and inf above the second: clamping there keeps n in
        range without changing the result."""
        smallest = self.bias + self.mantissa - 1  # 2**-smallest is the smallest subnormal
        return -(smallest + 2) * math.log(2), (self.bias + 2) * math.log(2)


FORMATS = {
    # truncation: 0.3466**8/8! = 5e-9 (f32: ulp 6e-8); 0.3466**14/14! = 4e-18 (f64)
    # atanh series after s**9/9: s**10/11 = 2e-9; after s**19/19: s**20/21 = 2e-17
    "f32": Format(32, 23, exp_degree=7, log_terms=4, ln2_hi=0.693359375, ln2_lo=-2.12194440e-4),
    "f64": Format(64, 52, exp_degree=13, log_terms=9, ln2_hi=6.93147180369123816490e-01,
                  ln2_lo=1.90821492927058770002e-10),
}


def mul_add(s: Scalar, a: ir.Value, b: ir.Value, c: ir.Value, dtype: str) -> ir.Value:
    """a * b + c: one fused multiply-add where the CPU has FMA."""
    if s.fma:
        return s.intrinsic("fma", dtype, [a, b, c])
    return s.b.fadd(s.b.fmul(a, b), c)


def polynomial(s: Scalar, x: ir.Value, coefficients: list[float], dtype: str) -> ir.Value:
    """c0 + c1 x + c2 x**2 + ... by Horner's rule."""
    result = const(dtype, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = mul_add(s, result, x, const(dtype, c), dtype)
    return result


def is_nan(s: Scalar, x: ir.Value) -> ir.Value:
    return s.b.fcmp_unordered("uno", x, x)


def power_of_two(s: Scalar, n: ir.Value, dtype: str) -> ir.Value:
    """2**n for an integer n in the normal exponent range, built from its bits."""
    f = FORMATS[dtype]
    biased = s.b.add(n, ir.Constant(f.int_type, f.bias))
    return s.b.bitcast(s.b.shl(biased, ir.Constant(f.int_type, f.mantissa)), llvm_type(dtype))


def reduce_exp(s: Scalar, x: ir.Value, dtype: str) -> tuple[ir.Value, ir.Value]:
    """x = n ln2 + r with |r| <= ln2/2: returns (n as an integer, e**r - 1). x must be finite
    and within `exp_limits`."""
    f, b = FORMATS[dtype], s.b
    n = s.intrinsic("rint", dtype, [b.fmul(x, const(dtype, 1 / math.log(2)))])
    minus_n = b.fneg(n)
    r = mul_add(s, minus_n, const(dtype, f.ln2_hi), x, dtype)  # exact: ln2_hi has spare bits
    r = mul_add(s, minus_n, const(dtype, f.ln2_lo), r, dtype)
    taylor = [1 / math.factorial(k + 1) for k in range(f.exp_degree)]  # (e**r - 1) / r
    return b.fptosi(n, f.int_type), b.fmul(r, polynomial(s, r, taylor, dtype))


def clamp(s: Scalar, x: ir.Value, low: float, high: float, dtype: str) -> ir.Value:
    """x limited to [low, high]; NaN becomes 0 (the caller returns NaN for it)."""
    b = s.b
    x = b.select(b.fcmp_ordered(">", x, const(dtype, high)), const(dtype, high), x)
    x = b.select(b.fcmp_ordered("<", x, const(dtype, low)), const(dtype, low), x)
    return b.select(is_nan(s, x), const(dtype, 0), x)


def exp(s: Scalar, x: ir.Value, dtype: str, name: str = "") -> ir.Value:
    """e**x within 1.5 ulp, subnormal results included; exp(NaN) = NaN, exp(-inf) = 0,
    overflow gives inf."""
    f, b = FORMATS[dtype], s.b
    low, high = f.exp_limits
    n, q = reduce_exp(s, clamp(s, x, low, high, dtype), dtype)
    # 2**n in two factors, each a normal number even where 2**n is subnormal or overflows;
    # the second product rounds once, to the right subnormal, 0 or inf
    half = b.ashr(n, ir.Constant(f.int_type, 1))
    scaled = b.fmul(b.fadd(const(dtype, 1), q), power_of_two(s, half, dtype))
    result = b.fmul(scaled, power_of_two(s, b.sub(n, half), dtype))
    return b.select(is_nan(s, x), x, result, name=name)


def tanh(s: Scalar, x: ir.Value, dtype: str, name: str = "") -> ir.Value:
    """tanh(x) = t / (t + 2) with t = e**(2|x|) - 1, sign restored; within 3.5 ulp.
    e**y - 1 = 2**n (e**r - 1) + (2**n - 1) keeps the relative accuracy of e**r - 1 near 0,
    where 1 - 2 / (e**2x + 1) would cancel."""
    f, b = FORMATS[dtype], s.b
    magnitude = s.intrinsic("fabs", dtype, [x])
    # tanh is 1 in this precision long before 2|x| reaches the clamp (9 in f32, 19 in f64)
    y = clamp(s, b.fmul(magnitude, const(dtype, 2)), 0.0, f.exp_limits[1] - 2, dtype)
    n, q = reduce_exp(s, y, dtype)
    two_n = power_of_two(s, n, dtype)
    t = mul_add(s, two_n, q, b.fsub(two_n, const(dtype, 1)), dtype)
    positive = b.fdiv(t, b.fadd(t, const(dtype, 2)))
    result = s.intrinsic("copysign", dtype, [positive, x])
    return b.select(is_nan(s, x), x, result, name=name)


def log(s: Scalar, x: ir.Value, dtype: str, name: str = "") -> ir.Value:
    """ln x within 1 ulp, subnormal inputs included; ln 0 = -inf,
    ln(x < 0) = NaN, ln inf = inf.

    x = m 2**e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with s = (m - 1) / (m + 1),
    |s| <= 0.1716 (m - 1 is exact there, so ln x near 1 keeps its relative accuracy), and
    ln x = e ln2_hi + (ln m + e ln2_lo)."""
    f, b = FORMATS[dtype], s.b
    int_type = f.int_type
    # subnormals: scale into the normal range first, and take the scale back out of e
    subnormal = b.fcmp_ordered("<", s.intrinsic("fabs", dtype, [x]),
                               const(dtype, 2.0 ** (1 - f.bias)))
    scale_bits = f.mantissa + 1
    normal = b.select(subnormal, b.fmul(x, const(dtype, 2.0 ** scale_bits)), x)
    bits = b.bitcast(normal, int_type)
    exponent_field = b.and_(b.lshr(bits, ir.Constant(int_type, f.mantissa)),
                            ir.Constant(int_type, 2 * f.bias + 1))
    e = b.sub(exponent_field, b.select(subnormal, ir.Constant(int_type, f.bias + scale_bits),
                                       ir.Constant(int_type, f.bias)))
    mantissa_mask = ir.Constant(int_type, (1 << f.mantissa) - 1)
    one_bits = ir.Constant(int_type, f.bias << f.mantissa)
    m = b.bitcast(b.or_(b.and_(bits, mantissa_mask), one_bits), normal.type)  # in [1, 2)
    big = b.fcmp_ordered(">", m, const(dtype, math.sqrt(2)))
    m = b.select(big, b.fmul(m, const(dtype, 0.5)), m)
    e = b.add(e, b.zext(big, int_type))

    # ln(1 + f) = 2 atanh(s) = 2s + s R with f = m - 1 (exact), s = f / (2 + f); written as
    # f - (f**2/2 - s (f**2/2 + R)) so that the exact f carries the result and the rounding
    # errors stay in a small correction (fdlibm's e_log.c)
    fraction = b.fsub(m, const(dtype, 1))
    ratio = b.fdiv(fraction, b.fadd(const(dtype, 2), fraction))
    square = b.fmul(ratio, ratio)
    series = [2 / (2 * k + 3) for k in range(f.log_terms)]  # R / s**2
    r_term = b.fmul(square, polynomial(s, square, series, dtype))
    half_square = b.fmul(b.fmul(fraction, fraction), const(dtype, 0.5))
    e_float = b.sitofp(e, normal.type)
    small = mul_add(s, ratio, b.fadd(half_square, r_term),
                    b.fmul(e_float, const(dtype, f.ln2_lo)), dtype)
    ln_m = b.fsub(fraction, b.fsub(half_square, small))
    result = mul_add(s, e_float, const(dtype, f.ln2_hi), ln_m, dtype)

    inf = const(dtype, math.inf)
    result = b.select(b.fcmp_ordered("==", x, inf), inf, result)
    result = b.select(b.fcmp_ordered("==", x, const(dtype, 0)), const(dtype, -math.inf), result)
    result = b.select(b.fcmp_ordered("<", x, const(dtype, 0)), const(dtype, math.nan), result)
    return b.select(is_nan(s, x), x, result, name=name)


WRITTEN_OUT = {"exp": exp, "log": log, "tanh": tanh}  # Scalar.math's functions
