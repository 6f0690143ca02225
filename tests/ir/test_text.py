"""The IR's text form: print → parse → print is identical (every registered op, every attribute
kind, tricky floats, decls, regions, steps, locations), parsed IR equals what was printed, and
mistakes in IR text are located errors."""

import decimal
import itertools
import logging
import math
import re
from fractions import Fraction
from pathlib import Path

import lark
import numpy as np
import pytest

from tflc.ir import (REGISTRY, Builder, Decl, Error, Function, Init, Loc, Module, Op, Output,
                     TensorType, Value, parse_function, parse_module, print_function,
                     print_module, verify)
from tflc.ir.builder import result_type
from tflc.ir.types import NUMPY_DTYPES

EXAMPLES = Path(__file__).parents[2] / "examples"


def T(dtype, *shape):
    return TensorType(dtype, shape)


def roundtrip(module: Module) -> Module:
    """Prints, parses and prints again; the two texts must be identical, and both modules valid."""
    verify(module)
    text = print_module(module)
    parsed = parse_module(text, "test.ir")
    assert print_module(parsed) == text
    verify(parsed)
    return parsed


def same(a, b) -> bool:
    """Equal attribute values: arrays bit for bit (NaN included), lists as tuples."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or a != a and b != b)
    return type(a) is type(b) and a == b


def module_of(func: Function, decls=()) -> Module:
    return Module("m", tuple(decls), (func,))


# -- a small use of every registered op, found from its type rule --------------------------------

# Operand types to try, and attribute values to try before the op's default (a default of None
# often means "required"). New ops are covered as long as these can give them a valid use.
OPERAND_TYPES = [T("f32", "N", 3), T("f32", 3, 4), T("f32"), T("bool", "N", 3), T("i64", "N"),
                 T("i64"), T("i32", "N", 3)]
ATTR_CHOICES = {
    "axis": [1, [0, 1], -1], "keepdims": [True], "dtype": ["f64"], "shape": [[3, "N"], [-1]],
    "perm": [[1, 0]], "begin": [[0, 1]], "size": [[-1, 2]], "before": [[0, 1]],
    "after": [[0, 2]], "depth": [5], "seed": [7], "stream": [2],
}


def find_use(opcode: str):
    """Operand types and attributes the type rule of `opcode` accepts, or None."""
    opdef = REGISTRY[opcode]
    arities = [opdef.arity] if opdef.arity is not None else [2, 3]
    choices = [ATTR_CHOICES.get(name, []) + [default] for name, default in opdef.attrs.items()]
    for values in itertools.product(*choices):
        attrs = dict(zip(opdef.attrs, values))
        for arity in arities:
            for types in itertools.product(OPERAND_TYPES, repeat=arity):
                try:
                    result_type(opcode, types, attrs)
                except Exception:
                    continue
                return types, attrs
    return None


def use_of(opcode: str) -> Function:
    """A function whose one op is a use of `opcode` (as a fused-style region op where the
    type rule accepts none of the tried operands, e.g. an op that only makes sense with a body)."""
    if opcode == "const":
        b = Builder()
        b.const([[1.5, -2.0]], "f32", name="c")
        return Function("use", (), (), tuple(b.ops), (Output("c", b.ops[0].result),))
    found = find_use(opcode)
    if found is not None:
        types, attrs = found
        args = tuple(Value(t, f"a{i}") for i, t in enumerate(types))
        b = Builder(Loc("ops.tfl", 1, 1))
        result = b.emit(opcode, *args, **attrs)
        outputs = (Output("r", result),)
    else:
        args = (Value(T("f32", "N", 3), "x"),)
        inner = Value(T("f32", "N", 3), "x_in")
        body_result = Value(T("f32", "N", 3))
        body = Op("neg", (inner,), (body_result,), {})
        region = Function(opcode, ("N",), (inner,), (body,), (Output("0", body_result),))
        result = Value(T("f32", "N", 3))
        op = Op(opcode, args, (result,), dict(REGISTRY[opcode].attrs), None, region)
        b = Builder()
        b.ops.append(op)
        outputs = (Output("r", result),)
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    return Function("use", dims, args, tuple(b.ops), outputs)


@pytest.mark.parametrize("opcode", sorted(REGISTRY))
def test_every_op_roundtrips(opcode):
    func = use_of(opcode)
    parsed = roundtrip(module_of(func)).functions[0]
    (op,), (back,) = func.ops, parsed.ops
    assert back.opcode == op.opcode
    assert list(back.attrs) == list(op.attrs)
    assert all(same(back.attrs[k], v) for k, v in op.attrs.items()), (back.attrs, op.attrs)
    assert [r.type for r in back.results] == [r.type for r in op.results]
    assert back.loc == op.loc


def test_most_ops_are_used_through_their_type_rule():
    """The region fallback in `use_of` is for ops with bodies; every other op's use is found."""
    untyped = [name for name in REGISTRY if name != "const" and find_use(name) is None]
    assert all(REGISTRY[name].kind not in ("elementwise", "reduction", "matmul", "shape",
                                           "composite") for name in untyped), untyped


# -- values, attributes, literals ----------------------------------------------------------------

TRICKY = {
    "f32": [0.1, 1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38, 16777217.0, 0.3, 1 / 3,
            float("inf"), float("-inf"), float("nan"), -0.0, 0.0, 1e16, 123456789.0, 1e-5],
    "f64": [0.1, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, 1e23,
            float("inf"), float("-inf"), float("nan"), -0.0, 123456789.0, 2.0**53 + 2],
    "i32": [0, 1, -1, 2**31 - 1, -2**31],
    "i64": [0, -7, 2**63 - 1, -2**63],
    "bool": [True, False],
}


def const_function(arrays) -> Function:
    b = Builder()
    values = [b.const(a, dtype) for dtype, a in arrays]
    return Function("consts", (), (), tuple(b.ops),
                    tuple(Output(f"c{i}", v) for i, v in enumerate(values)))


def test_consts_of_every_dtype_keep_their_bits():
    arrays = []
    for dtype, values in TRICKY.items():
        array = np.array(values, NUMPY_DTYPES[dtype])
        arrays += [(dtype, array), (dtype, array[0]), (dtype, array.reshape(1, -1, 1))]
    arrays += [("f32", np.zeros((0,), np.float32)), ("f64", np.zeros((2, 0, 3)))]
    func = const_function(arrays)
    parsed = roundtrip(module_of(func)).functions[0]
    for op, back in zip(func.ops, parsed.ops):
        assert same(back.attrs["value"], op.attrs["value"]), (op.attrs["value"], back.attrs)


@pytest.mark.parametrize("dtype,bits", [("f32", np.uint32), ("f64", np.uint64)])
def test_random_floats_keep_their_bits(dtype, bits):
    rng = np.random.default_rng(1)
    pattern = rng.integers(0, np.iinfo(bits).max, 3000, dtype=bits, endpoint=True)
    array = pattern.view(NUMPY_DTYPES[dtype])
    array = array[~np.isnan(array)]  # a NaN's payload is not kept: every NaN prints as `nan`
    parsed = parse_function(print_function(const_function([(dtype, array)])))
    assert parsed.ops[0].attrs["value"].tobytes() == array.tobytes()


def decimal_text(x: Fraction) -> str:
    with decimal.localcontext() as context:
        context.prec = 100
        return str(decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator))


@pytest.mark.parametrize("halfway,side,expected", [
    (1 + Fraction(1, 2**24), +1, 1 + 2.0**-23),       # ties-to-even would give 1.0
    (1 + Fraction(3, 2**24), -1, 1 + 2.0**-23),       # ties-to-even would give 1 + 2**-22
    (1 + Fraction(1, 2**24), 0, 1.0),                 # exactly half-way: to even
])
def test_f32_literals_round_once(halfway, side, expected):
    """A decimal a hair from the half-way point between two f32s reads as f64 exactly half-way:
    rounding that to f32 again would pick the wrong side."""
    text = decimal_text(halfway + side * Fraction(1, 2**80))
    assert float(text) == float(halfway)
    func = parse_function(f"func @f() -> (f32[]) {{\n  %c: f32[] = const {text}\n"
                          "  return %c\n}")
    assert func.ops[0].attrs["value"] == np.float32(expected)


ATTRIBUTE_VALUES = (
    ("int", 3), ("negative", -12), ("big", 2**70), ("float", 0.03), ("whole", 2.0),
    ("tiny", 5e-324), ("inf", float("inf")), ("ninf", float("-inf")), ("nan", float("nan")),
    ("yes", True), ("no", False), ("nothing", None), ("ident", "glorot.v2"),
    ("keywordlike", "true"), ("infword", "inf"), ("nanword", "nan"), ("noneword", "none"),
    ("quoted", 'a "b" // c\\d\nü'), ("empty", ""), ("list", (1, (2.5, "s", None), ())),
    ("numpy", np.float32(0.1)), ("numpy_int", np.int64(4)),
)


def test_every_attribute_kind_roundtrips():
    decl = Decl("param", "w", T("f32", 2), Init("custom", ATTRIBUTE_VALUES), Loc("a.tfl", 2, 1))
    module = Module("attrs", (decl,), ())
    parsed = roundtrip(module)
    for (name, value), (back_name, back) in zip(ATTRIBUTE_VALUES, parsed.decls[0].init.args):
        assert name == back_name
        if isinstance(value, np.generic):
            value = value.item()
        assert same(back, value), (name, back, value)


def test_decls_with_every_initializer():
    decls = (
        Decl("input", "x", T("f32", "N", 784), None, Loc("mnist.tfl", 3, 1)),
        Decl("input", "y", T("i64", "?1")),
        Decl("param", "fc1.W", T("f32", 784, 300), Init("normal", (("mean", 0.0),
                                                                   ("stddev", 0.03))),
             Loc("mnist.tfl", 5, 1)),
        Decl("param", "fc1.b", T("f32", 300), Init("zeros")),
        Decl("param", "o", T("f64", 2, 2), Init("ones")),
        Decl("param", "f", T("f32", 3), Init("fill", (("value", 0.5),))),
        Decl("param", "t", T("f32", 3), Init("truncated_normal", (("stddev", 0.1),
                                                                  ("seed", 4)))),
        Decl("param", "u", T("f32", 3), Init("uniform", (("low", -1.0), ("high", 1.0)))),
        Decl("param", "g", T("f32", 3, 4), Init("glorot_uniform")),
        Decl("state", "s", T("i32"), Init("value", (("value", np.array(50, np.int32)),))),
        Decl("state", "v", T("f32", 2, 2),
             Init("value", (("value", np.array([[0.1, 1e-45], [-0.0, 2]], np.float32)),))),
        Decl("state", "flags", T("bool", 2), Init("value", (("value", np.array([True, False])),))),
        Decl("counter", "__run", T("i64")),
    )
    parsed = roundtrip(Module("mnist_mlp", decls, ()))
    for decl, back in zip(decls, parsed.decls):
        assert (back.kind, back.name, back.type, back.loc) == \
            (decl.kind, decl.name, decl.type, decl.loc)
        assert (back.init is None) == (decl.init is None)
        if decl.init is not None:
            assert back.init.kind == decl.init.kind
            assert all(same(b, a) for (_, a), (_, b) in zip(decl.init.args, back.init.args))


def test_module_names_that_are_not_identifiers_are_quoted():
    for name in ("mnist_mlp", "my-model", "with space", "true"):
        assert roundtrip(Module(name, (), ())).name == name


# -- a model-shaped module: names, numbering, steps, regions, locations --------------------------

def mnist_like() -> Module:
    x = Value(T("f32", "N", 784), "x")
    y = Value(T("f32", "N", 10), "y")
    w = Value(T("f32", 784, 10), "fc1.W")
    bias = Value(T("f32", 10), "fc1.b")
    run = Value(T("i64"), "__run")
    b = Builder(Loc("mnist.tfl", 12, 14))
    logits = b.emit("add", b.emit("matmul", x, w), bias, name="logits")
    loss = b.emit("mean", b.emit("softmax_cross_entropy_with_logits", y, logits),
                  name="cross_entropy", loc=Loc("mnist.tfl", 13, 17))
    gw = b.emit("grad", loss, w)
    lr = b.const(0.5, "f32")
    new_w = b.emit("sub", w, b.emit("mul", lr, gw), name="fc1.W")  # same name as the arg
    # a fused group: its region reads its own argument and, from outside, `bias`
    inner = Value(logits.type, "l")
    body = Builder(Loc("mnist.tfl", 20, 3))
    relu = body.emit("relu", body.emit("add", inner, bias))
    fused_result = Value(logits.type, "hidden")
    region = Function("neg", ("N",), (inner,), tuple(body.ops), (Output("0", relu),))
    # `neg` stands in for a fused op: regions work with any opcode
    b.ops.append(Op("neg", (logits,), (fused_result,), {}, Loc("mnist.tfl", 20, 1), region))
    unnamed = b.emit("exp", fused_result, loc=None)
    b.loc = None
    twice = b.emit("exp", unnamed, name="logits")  # a second `logits`: printed as %logits.2
    outputs = (Output("logits", logits), Output("cross_entropy", loss),
               Output("hidden_out", fused_result), Output("e", unnamed),
               Output("logits2", twice), Output("fc1.W", new_w, "step"),
               Output("fc1.b", bias, "step"), Output("fc1.W", new_w, "other_step"))
    func = Function("model", ("N",), (x, y, w, bias, run), tuple(b.ops), outputs)
    decls = (Decl("input", "x", x.type), Decl("input", "y", y.type),
             Decl("param", "fc1.W", w.type, Init("normal", (("stddev", 0.03),))),
             Decl("param", "fc1.b", bias.type, Init("zeros")),
             Decl("counter", "__run", run.type))
    return Module("mnist", decls, (func,))


def test_model_roundtrips_with_names_steps_regions_and_locs():
    module = mnist_like()
    parsed = roundtrip(module)
    func, back = module.functions[0], parsed.functions[0]
    assert back.name == "model" and back.dims == ("N",)
    assert [a.name for a in back.args] == ["x", "y", "fc1.W", "fc1.b", "__run"]
    assert [(o.label, o.step) for o in back.outputs] == [(o.label, o.step) for o in func.outputs]
    assert [o.value.type for o in back.outputs] == [o.value.type for o in func.outputs]
    assert [op.opcode for op in back.ops] == [op.opcode for op in func.ops]
    assert [op.loc for op in back.ops] == [op.loc for op in func.ops]
    names = [r.name for op in back.ops for r in op.results]
    assert names == [None, "logits", None, "cross_entropy", None, None, None, "fc1.W.2",
                     "hidden", None, "logits.2"]
    fused = back.ops[8]
    assert fused.region is not None and fused.region.ops[0].operands[1] is back.args[3]
    assert [op.loc for op in fused.region.ops] == [Loc("mnist.tfl", 20, 3)] * 2
    assert back.outputs[2].value is fused.result  # outputs share the values they name


def test_printed_text_reads_as_documented():
    text = print_module(mnist_like())
    assert "func @model<N>(%x: f32[N,784], %y: f32[N,10], %fc1.W: f32[784,10]" in text
    assert "%hidden: f32[N,10] = neg %logits {" in text
    assert "    ^(%l: f32[N,10]):" in text
    assert "    yield %" in text
    assert "step: fc1.W <- %fc1.W.2" in text
    assert "hidden_out = %hidden" in text


def test_hand_written_text_parses():
    """Spacing, comments that are not locations, attributes left out (defaults filled in) and
    in another order, and an op with no operands followed by another op."""
    func = parse_function("""
        // a remark on a line of its own
        func @f<N>( %x : f32[N, 3] ) -> (f32[N], i64[N], f32[]) {
          %s: f32[N] = sum[keepdims=false,axis=1] %x   // sums rows
          %a: i64[N] = argmax[axis=-1] %x              // file with spaces.tfl:4:5
          %c : f32[] = const 2.
          return %s, a = %a, c = %c
        }""")
    assert [op.attrs for op in func.ops[:2]] == [{"keepdims": False, "axis": 1}, {"axis": -1}]
    assert func.ops[0].loc is None and func.ops[1].loc == Loc("file with spaces.tfl", 4, 5)
    assert func.ops[2].attrs["value"] == np.float32(2.0)
    verify(func)


def test_the_reference_examples_read_back():
    """docs/ir.md's example module prints back exactly; its fused op parses and verifies."""
    doc = (Path(__file__).parents[2] / "docs" / "ir.md").read_text()
    example = re.search(r"## An example\n\n```\n(.*?)```", doc, re.S).group(1)
    module = parse_module(example)
    assert print_module(module) == example
    roundtrip(module)
    fused = re.search(r"\n(%h: f32.*?\n}\n)", doc, re.S).group(1)
    func = parse_function("func @f<N>(%x: f32[N,784], %W1: f32[784,300], %b1: f32[300]) -> "
                          "(f32[N,300]) {\n" + fused + "return h = %h\n}")
    verify(func)
    assert [op.opcode for op in func.ops[0].region.ops] == ["matmul", "add"]


def test_grammar_has_no_conflicts(caplog):
    """LALR resolves a shift/reduce conflict silently (as a shift) unless in strict mode, which
    needs the `interegular` package; lark logs each one, so the log must stay empty."""
    grammar = (Path(__file__).parents[2] / "ir" / "ir.lark").read_text()
    with caplog.at_level(logging.DEBUG, logger="lark"):
        lark.Lark(grammar, parser="lalr", start=["module", "func"])
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]


# -- errors located in the IR text ---------------------------------------------------------------

GOOD = """\
func @f<N>(%x: f32[N,3], %b: bool[N,3]) -> (f32[N,3]) {
  %y: f32[N,3] = neg %x
  return y = %y
}"""


def parse_error(text: str, needle: str, line: int, col: int | None = None) -> Error:
    with pytest.raises(Error) as info:
        parse_module(text, "bad.ir") if text.startswith("model") else \
            parse_function(text, "bad.ir")
    error = info.value
    assert needle in error.message, error.message
    assert (error.loc.file, error.loc.line) == ("bad.ir", line), str(error)
    if col is not None:
        assert error.loc.col == col, str(error)
    assert error.loc.text == text.splitlines()[line - 1]
    assert "^" in str(error)  # the line and a caret
    return error


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize("text,needle,line,col", [
    (edit("= neg", "neg"), "syntax error: unexpected 'neg', expected one of ',', '='", 2, 16),
    (edit("neg %x", "neg %x $"), "unexpected character '$'", 2, 25),
    (GOOD[:-2], "unexpected the end of the text", 3, 16),
    (edit("neg %x", "negate %x"), "unknown op 'negate'", 2, 18),
    (edit("neg %x", "neg %z"), "%z is not defined", 2, 22),
    (edit("%y: f32[N,3] = neg", "%x: f32[N,3] = neg"), "%x is defined twice", 2, 3),
    (edit("%y: f32[N,3] = neg", "%y: f32[3,N] = neg"), "the type rule gives f32[N,3], not the "
     "written f32[3,N]", 2, 7),
    (edit("neg %x", "not %x"), "not: expects a bool tensor, got f32[N,3]", 2, 3),
    (edit("neg %x", "add %x, %b"), "different dtypes", 2, 3),
    (edit("neg %x", "neg %x, %x"), "neg takes 1 operands, got 2", 2, 18),
    (edit("neg %x", "neg[axis=1] %x"), "neg has no attribute 'axis'", 2, 22),
    (edit("f32[N,3], %b", "f31[N,3], %b"), "unknown dtype 'f31'", 1, 16),
    (edit("f32[N,3], %b", "f32[N,-1], %b"), "bad dim '-1': a dim is a size, a symbol", 1, 22),
    (edit("f32[N,3], %b", "f32[N, 2*N*], %b"), "bad dim '2*N*'", 1, 22),
    (edit("-> (f32[N,3])", "-> (f32[N])"), "returns (f32[N]) but it returns (f32[N,3])", 1, 45),
    (edit("neg %x", "const 1.0"), "the type rule gives f32[], not the written f32[N,3]", 2, 7),
    (edit("neg %x", "neg 1.0"), "only const takes a literal value", 2, 22),
    (edit("%y: f32[N,3] = neg %x", "%0: f32[N,3] = neg %x").replace("y = %y", "%0"),
     "an output needs a name: write `NAME = %0`", 3, 10),
])
def test_parse_errors_are_located(text, needle, line, col):
    parse_error(text, needle, line, col)


@pytest.mark.parametrize("literal,needle", [
    ("[[1.0, 2.0], [3.0]]", "not rectangular"),
    ("[true]", "true is not a f32 value"),
    ("[1e39]", "1e39 is out of range for f32"),
    ("[x]", "syntax error"),
])
def test_bad_literals(literal, needle):
    text = f"func @f() -> (f32[1]) {{\n  %c: f32[1] = const {literal}\n  return c = %c\n}}"
    parse_error(text, needle, 2)


def test_bad_int_and_bool_literals():
    text = "func @f() -> (i32[]) {\n  %c: i32[] = const 3000000000\n  return c = %c\n}"
    parse_error(text, "out of range for i32", 2)
    text = "func @f() -> (bool[]) {\n  %c: bool[] = const 1\n  return c = %c\n}"
    parse_error(text, "1 is not a bool value", 2, 22)
    text = "func @f() -> (i64[]) {\n  %c: i64[] = const 1.5\n  return c = %c\n}"
    parse_error(text, "1.5 is not a i64 value", 2, 21)


def test_region_errors():
    text = """\
func @f(%x: f32[3]) -> (f32[3]) {
  %r: f32[3] = neg %x {
    ^(%a: f32[3]):
    %b: f32[3] = exp %a
    yield %b
  }
  %c: f32[3] = exp %r
  return r = %c
}"""
    parse_function(text)
    parse_error(text.replace("exp %r", "exp %b"),
                "%b is not defined (it is defined inside a region", 7, 20)
    parse_error(text.replace("^(%a: f32[3])", "^(%a: f32[2])")
                .replace("exp %a", "const [1.0, 2.0, 3.0]"),
                "the region's arguments (f32[2]) do not match the op's operands (f32[3])", 2)
    parse_error(text.replace("%r: f32[3] = neg", "%r: f64[3] = neg"),
                "the region yields (f32[3]) but the op's results are (f64[3])", 2, 3)


def test_module_errors():
    text = "model m\n" + GOOD + "\n" + GOOD
    parse_error(text, "function @f is defined twice", 6, 1)
    parse_error("model m\ninput x f32[3]", "syntax error: unexpected 'f32[3]', expected ':'", 2)
    parse_error("model m\nparam w: f32[2] = value(value=[1, 2, 3, x])",
                "x is not a number", 2, 41)


def test_mangled_text_gives_located_errors():
    """Random edits of a printed module: each either reads back (and prints stably) or is a
    located `tflc.Error`, never another exception."""
    text = print_module(mnist_like())
    pieces = list("%@:,=[]{}()<>^-*?.\"/ \n0123456789aefinrstxN") + [
        "inf", "nan", "true", "none", "const", "//", "%0", "f32[", "<-"]
    rng = np.random.default_rng(2)
    for _ in range(300):
        mangled = text
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(len(mangled)))
            piece = pieces[rng.integers(len(pieces))]
            mangled = mangled[:at] + piece + mangled[at + int(rng.integers(0, 3)):]
        try:
            printed = print_module(parse_module(mangled, "mangled.ir"))
        except Error as e:
            assert e.loc is not None and e.loc.file == "mangled.ir", str(e)
            continue
        assert print_module(parse_module(printed)) == printed


# -- the examples, through the frontend and after every pass --------------------------------------

PASSES = ("inline", "autodiff", "simplify", "prune", "fuse")  # DESIGN.md's pipeline


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.tfl")), ids=lambda p: p.name)
def test_examples_roundtrip(path):
    from tflc.frontend import parse_file
    from tflc.passes.manager import run_pipeline
    from tflc.passes.pipeline import select_entry

    module = roundtrip(parse_file(path))
    model = module.function("model")
    for step in (None, *model.steps):
        entry = select_entry(module, model.fetchable if step is None else (), step)
        run = run_pipeline(entry, PASSES, verify=True, print_after="all")
        for record in (r for r in run.records if r.changed):
            parsed = parse_function(record.ir, f"after {record.name}")
            verify(parsed)
            assert print_function(parsed) == record.ir, f"{step}: after {record.name}"
