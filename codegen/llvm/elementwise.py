"""One element's worth of code: the scalar body of every elementwise op, and casts.

`SCALAR[opcode](s, args, dtypes, attrs, name)` emits the op on scalar LLVM values: `args` are the
operands (bools as `i1`), `dtypes` their tflc dtypes, and it returns the result value. The kernel
templates (kernels.py) wrap these bodies in loop nests. This table is the `lowering` of the
elementwise ops until it moves into their `OpDef`s.

Semantics follow the ops' NumPy references, with strict IEEE arithmetic (no fast-math flags):
NaN propagates through maximum/minimum/relu; integer arithmetic wraps as NumPy's does.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from .scalar import BYTES, I1, Scalar, const, is_float, llvm_type


# -- casts ---------------------------------------------------------------------------------------

def cast(s: Scalar, x: ir.Value, source: str, target: str, name: str = "") -> ir.Value:
    """NumPy's `astype`: C conversions, float→int truncating toward zero."""
    b = s.b
    if source == target:
        return x
    if target == "bool":
        if is_float(source):  # NaN is true, as bool(nan)
            return b.fcmp_unordered("!=", x, const(source, 0), name=name)
        return b.icmp_signed("!=", x, const(source, 0), name=name)
    ty = llvm_type(target)
    if source == "bool":
        return b.uitofp(x, ty, name=name) if is_float(target) else b.zext(x, ty, name=name)
    if is_float(source) and is_float(target):
        return (b.fpext if BYTES[target] > BYTES[source] else b.fptrunc)(x, ty, name=name)
    if is_float(target):
        return b.sitofp(x, ty, name=name)
    if not is_float(source):
        return (b.sext if BYTES[target] > BYTES[source] else b.trunc)(x, ty, name=name)
    return float_to_int(s, x, source, target, name)


def float_to_int(s: Scalar, x: ir.Value, source: str, target: str, name: str) -> ir.Value:
    """Out of range and NaN give the integer minimum, as NumPy does on x86 (cvttss2si); LLVM's
    fptosi alone would give poison there, so the range is checked and a select picks."""
    b = s.b
    bits = BYTES[target] * 8
    low, high = const(source, -(2.0 ** (bits - 1))), const(source, 2.0 ** (bits - 1))
    in_range = b.and_(b.fcmp_ordered(">=", x, low), b.fcmp_ordered("<", x, high))
    minimum = ir.Constant(llvm_type(target), -(2 ** (bits - 1)))
    return b.select(in_range, b.fptosi(x, llvm_type(target)), minimum, name=name)


# -- the scalar bodies ---------------------------------------------------------------------------

Emitter = Callable[[Scalar, list, tuple, dict, str], ir.Value]


def arithmetic(float_op: str, int_op: str) -> Emitter:
    def emit(s, args, dtypes, attrs, name):
        op = float_op if is_float(dtypes[0]) else int_op
        return getattr(s.b, op)(*args, name=name)
    return emit


def float_intrinsic(intrinsic: str) -> Emitter:
    def emit(s, args, dtypes, attrs, name):
        return s.intrinsic(intrinsic, dtypes[0], args, name)
    return emit


def extremum(float_intrinsic_name: str, int_compare: str) -> Emitter:
    """maximum/minimum: NaN propagates for floats (llvm.maximum), signed compare for ints."""
    def emit(s, args, dtypes, attrs, name):
        a, b = args
        if is_float(dtypes[0]):
            return s.intrinsic(float_intrinsic_name, dtypes[0], [a, b], name)
        return s.b.select(s.b.icmp_signed(int_compare, a, b), a, b, name=name)
    return emit


def comparison(operator: str) -> Emitter:
    def emit(s, args, dtypes, attrs, name):
        if is_float(dtypes[0]):  # ordered, except != which is true when either is NaN
            compare = s.b.fcmp_unordered if operator == "!=" else s.b.fcmp_ordered
            return compare(operator, *args, name=name)
        if dtypes[0] == "bool":
            return s.b.icmp_unsigned(operator, *args, name=name)
        return s.b.icmp_signed(operator, *args, name=name)
    return emit


def emit_neg(s, args, dtypes, attrs, name):
    if is_float(dtypes[0]):
        return s.b.fneg(args[0], name=name)
    return s.b.sub(const(dtypes[0], 0), args[0], name=name)


def emit_abs(s, args, dtypes, attrs, name):
    if is_float(dtypes[0]):
        return s.intrinsic("fabs", dtypes[0], args, name)
    # llvm.abs(x, false): the minimum integer maps to itself, as in NumPy
    fn = s.function(f"llvm.abs.{dtypes[0]}", llvm_type(dtypes[0]), [llvm_type(dtypes[0]), I1])
    return s.b.call(fn, [args[0], ir.Constant(I1, 0)], name=name)


def emit_sign(s, args, dtypes, attrs, name):
    x, dtype, b = args[0], dtypes[0], s.b
    if is_float(dtype):  # ±0 and NaN give themselves
        negative = b.select(b.fcmp_ordered("<", x, const(dtype, 0)), const(dtype, -1), x)
        return b.select(b.fcmp_ordered(">", x, const(dtype, 0)), const(dtype, 1), negative,
                        name=name)
    positive = b.zext(b.icmp_signed(">", x, const(dtype, 0)), x.type)
    negative = b.zext(b.icmp_signed("<", x, const(dtype, 0)), x.type)
    return b.sub(positive, negative, name=name)


def emit_square(s, args, dtypes, attrs, name):
    mul = s.b.fmul if is_float(dtypes[0]) else s.b.mul
    return mul(args[0], args[0], name=name)


def emit_rsqrt(s, args, dtypes, attrs, name):
    root = s.intrinsic("sqrt", dtypes[0], args)
    return s.b.fdiv(const(dtypes[0], 1), root, name=name)


def emit_sigmoid(s, args, dtypes, attrs, name):
    """1 / (1 + exp(-x)), as the reference."""
    dtype = dtypes[0]
    e = s.math("exp", s.b.fneg(args[0]), dtype)
    return s.b.fdiv(const(dtype, 1), s.b.fadd(const(dtype, 1), e), name=name)


def math_function(function: str) -> Emitter:
    """exp/log/tanh: `Scalar.math` (written out in IR on the CPU, so that loops vectorise)."""
    def emit(s, args, dtypes, attrs, name):
        return s.math(function, args[0], dtypes[0], name)
    return emit


def emit_relu(s, args, dtypes, attrs, name):
    return extremum("maximum", ">")(s, [args[0], const(dtypes[0], 0)], dtypes * 2, attrs, name)


def emit_pow(s, args, dtypes, attrs, name):
    if is_float(dtypes[0]):
        return s.intrinsic("pow", dtypes[0], args, name)
    return s.b.call(integer_power(s, dtypes[0]), args, name=name)


def integer_power(s: Scalar, dtype: str) -> ir.Function:
    """`tflc.ipow.<dtype>(a, n)`: a**n by squaring, wrapping like NumPy. NumPy refuses negative
    exponents; here they give the truncated real result: 1 for a=1, ±1 for a=-1, else 0."""
    name = f"tflc.ipow.{dtype}"
    if name in s.module.globals:
        return s.module.globals[name]
    ty = llvm_type(dtype)
    fn = ir.Function(s.module, ir.FunctionType(ty, [ty, ty]), name)
    fn.linkage = "internal"
    base, exponent = fn.args
    base.name, exponent.name = "a", "n"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    negative, loop, done = (fn.append_basic_block(n) for n in ("negative", "loop", "done"))
    one, zero = const(dtype, 1), const(dtype, 0)
    b.cbranch(b.icmp_signed("<", exponent, zero), negative, loop)

    b.position_at_end(negative)
    odd = b.trunc(exponent, I1)
    minus_one = b.select(odd, const(dtype, -1), one)
    result = b.select(b.icmp_signed("==", base, one), one, zero)
    b.ret(b.select(b.icmp_signed("==", base, const(dtype, -1)), minus_one, result))

    entry = fn.entry_basic_block
    b.position_at_end(loop)
    acc = b.phi(ty, "acc")
    power = b.phi(ty, "power")
    left = b.phi(ty, "left")
    step = b.select(b.trunc(left, I1), power, one)
    next_acc = b.mul(acc, step)
    next_power = b.mul(power, power)
    next_left = b.lshr(left, one)
    for phi, start, update in ((acc, one, next_acc), (power, base, next_power),
                               (left, exponent, next_left)):
        phi.add_incoming(start, entry)
        phi.add_incoming(update, loop)
    b.cbranch(b.icmp_signed("!=", next_left, zero), loop, done)

    b.position_at_end(done)
    b.ret(next_acc)
    return fn


def emit_where(s, args, dtypes, attrs, name):
    return s.b.select(*args, name=name)


def emit_cast(s, args, dtypes, attrs, name):
    return cast(s, args[0], dtypes[0], attrs["dtype"], name)


SCALAR: dict[str, Emitter] = {
    "neg": emit_neg,
    "abs": emit_abs,
    "sign": emit_sign,
    "exp": math_function("exp"),
    "log": math_function("log"),
    "sqrt": float_intrinsic("sqrt"),
    "rsqrt": emit_rsqrt,
    "square": emit_square,
    "sin": float_intrinsic("sin"),
    "cos": float_intrinsic("cos"),
    "tanh": math_function("tanh"),
    "sigmoid": emit_sigmoid,
    "relu": emit_relu,
    "not": lambda s, args, dtypes, attrs, name: s.b.not_(args[0], name=name),
    "add": arithmetic("fadd", "add"),
    "sub": arithmetic("fsub", "sub"),
    "mul": arithmetic("fmul", "mul"),
    "div": lambda s, args, dtypes, attrs, name: s.b.fdiv(*args, name=name),  # floats only
    "pow": emit_pow,
    "maximum": extremum("maximum", ">"),
    "minimum": extremum("minimum", "<"),
    "eq": comparison("=="),
    "ne": comparison("!="),
    "lt": comparison("<"),
    "le": comparison("<="),
    "gt": comparison(">"),
    "ge": comparison(">="),
    "and": arithmetic("and_", "and_"),
    "or": arithmetic("or_", "or_"),
    "where": emit_where,
    "cast": emit_cast,
}
