"""No input makes the frontend raise anything but `tflc.Error`: garbage, token soups, and
mutations of the sample programs (deleted, repeated and swapped pieces)."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tflc.frontend import parse_source
from tflc.frontend.builtins import BUILTINS, INITIALIZERS
from tflc.ir import Error

SAMPLES = [p.read_text() for p in sorted(Path(__file__).with_name("samples").glob("*.tfl"))]
TOKENS = ["model", "input", "param", "state", "const", "train", "step", "fn", "return", "scope",
          "true", "false", "and", "or", "not", "x", "W", "b", "fc1.h", "N", "?", "f32", "i32",
          "bool", "f64", "i64", "0", "1", "-1", "2.5", ".5", "2.", "1e-10", "99999999999",
          "1e999", "+", "-", "*", "/", "@", "**", "==", "!=", "<", "<=", ">", ">=", "<-", "=",
          ",", ":", "(", ")", "[", "]", "{", "}", "\n", " ", "#", "relu", "sum", "grad",
          "dropout", "concat", "reshape", "sgd", "adam", "normal", "zeros", "axis", "keepdims",
          "shape", "cast", "where", "softmax", "mean", "one_hot", "slice", "lr", "params"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def compiles_or_reports(text: str) -> None:
    try:
        parse_source(text, "fuzz.tfl")
    except Error as e:
        assert e.loc is None or e.loc.line >= 1 and e.loc.col >= 1
        str(e)  # rendering never fails either


@FUZZ
@given(st.text())
def test_arbitrary_text(text):
    compiles_or_reports(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    compiles_or_reports(" ".join(tokens))


@st.composite
def mutated_sample(draw):
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        action = draw(st.sampled_from(["delete", "repeat", "insert", "move"]))
        piece = text[start:end]
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "repeat":
            text = text[:end] + piece + text[end:]
        elif action == "insert":
            text = text[:start] + draw(st.sampled_from(TOKENS)) + text[start:]
        else:
            rest = text[:start] + text[end:]
            where = draw(st.integers(0, len(rest)))
            text = rest[:where] + piece + rest[where:]
    return text


@FUZZ
@given(mutated_sample())
def test_mutated_samples(text):
    compiles_or_reports(text)


@FUZZ
@given(st.lists(st.sampled_from(SAMPLES[0].splitlines() + SAMPLES[1].splitlines()
                                + SAMPLES[2].splitlines()), max_size=30))
def test_shuffled_sample_lines(lines):
    compiles_or_reports("\n".join(lines))


def test_deep_nesting_is_an_error_not_a_crash():
    for text in ["z = " + "(" * 5000 + "1" + ")" * 5000,
                 "z = " + "-" * 5000 + "1",
                 "z = " + " + ".join(["1.0"] * 3000),
                 "input x: f32[]\nz = " + " * ".join(["x"] * 3000)]:
        compiles_or_reports(text)


CALL_DECLS = "input x: f32[2, 3]\ninput v: f32[3]\ninput i: i32[2]\ninput c: bool[2, 3]\n" \
             "input n: f32[N, 3]\ninput s: f32[]\n"
ARGUMENTS = ["x", "v", "i", "c", "n", "s", "0", "1", "-1", "5", "-7", "1.5", "true", "[0]",
             "[1, 0]", "[-1]", "[0, 0]", "[2, 3]", "[N, 3]", "[]", "f32", "bool", "i64", "[[1]]",
             "[x, x]", "[x]", "[v, x]", "[3, -1]", "[0, 5]", "2 ** 40"]


def call_of(table):
    @st.composite
    def call(draw):
        name = draw(st.sampled_from(sorted(table)))
        args = draw(st.lists(st.sampled_from(ARGUMENTS), max_size=4))
        keywords = draw(st.lists(st.sampled_from(table[name].params + ("axis", "bogus")),
                                 max_size=2, unique=True))
        args += [f"{k}={draw(st.sampled_from(ARGUMENTS))}" for k in keywords]
        return f"{name}({', '.join(args)})"
    return call()


@FUZZ
@given(call_of(BUILTINS), call_of(BUILTINS))
def test_builtin_calls_with_odd_arguments(call, outer):
    compiles_or_reports(CALL_DECLS + f"z = {call}\ny = {outer.replace('x', 'z', 1)}\n")


@FUZZ
@given(st.sampled_from(["f32[2, 3]", "i32[]", "bool[4]", "f64[1]"]),
       st.one_of(call_of(INITIALIZERS), st.sampled_from(ARGUMENTS)))
def test_initializers_with_odd_arguments(type, init):
    compiles_or_reports(CALL_DECLS + f"param W: {type} = {init}\n")
