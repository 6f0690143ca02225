"""Errors as the user sees them: message, place, the source line with a caret, hints; files
that cannot be read."""

import pytest

from tflc.frontend import parse_file, parse_source
from tflc.frontend.syntax import load_parser
from tflc.ir import Error


def test_the_grammar_loads_strictly_without_conflicts():
    assert load_parser(cache=False).options.strict


@pytest.mark.parametrize("text, rendered", [
    ("x = 1 +\n", ["test.tfl:1:8: error: unexpected newline, expected an expression",
                   "  x = 1 +", "         ^"]),
    ("x = (1 + 2\n", ["test.tfl:1:5: error: '(' is never closed", "  x = (1 + 2", "      ^"]),
    ("x = [1, 2\n\n", ["test.tfl:1:5: error: '[' is never closed", "  x = [1, 2", "      ^"]),
    ("y = 2 $ 3\n", ["test.tfl:1:7: error: unexpected character '$'", "  y = 2 $ 3",
                     "        ^"]),
    ("scope s {\n  h = 1\n", ["test.tfl:1:9: error: '{' is never closed", "  scope s {",
                              "          ^"]),
    ("x = 1)\n", ["test.tfl:1:6: error: ')' has no matching opening bracket", "  x = 1)",
                  "       ^"]),
    ("x = [1, 2)\n", ["test.tfl:1:10: error: ')' does not close '['", "  x = [1, 2)",
                      "           ^", "test.tfl:1:5: note: opened here", "  x = [1, 2)",
                      "      ^"]),
    ("x = 1 2\n", ["test.tfl:1:7: error: unexpected number 2, expected one of an operator, '[', "
                   "a newline", "  x = 1 2", "        ^"]),
    ("input x f32[3]\n", ["test.tfl:1:9: error: unexpected name 'f32', expected ':'",
                          "  input x f32[3]", "          ^"]),
    ("input = 3\n", ["test.tfl:1:1: error: 'input' is a keyword and cannot be used as a name",
                     "  input = 3", "  ^"]),
])
def test_syntax_errors(error, text, rendered):
    assert str(error(text)).splitlines() == rendered


def test_undefined_names_suggest_the_closest(error):
    e = error("param W1: f32[2] = 0\nparam b1: f32[2] = 0\ny = W2 + b1\n")
    assert str(e).splitlines() == ["test.tfl:3:5: error: undefined name 'W2'",
                                   "  y = W2 + b1", "      ^", "hint: did you mean 'W1'?"]
    assert error("z = zzzz\n").hint is None


def test_type_errors_point_at_the_operator(error):
    e = error("input x: f32[N, 784]\nparam W: f32[300, 10] = 0\nh = relu(x @ W)\n")
    assert str(e).splitlines() == [
        "test.tfl:3:12: error: matmul: f32[N,784] @ f32[300,10]: inner dimensions 784 and 300 "
        "differ", "  h = relu(x @ W)", "             ^"]


def test_tabs_keep_the_caret_under_the_place():
    with pytest.raises(Error) as info:
        parse_source("\tz = q\n", "test.tfl")
    e = info.value
    assert e.loc.col == 6
    assert str(e).splitlines()[1:] == ["   z = q", "       ^"]


def test_an_error_inside_a_function_notes_the_call(error):
    e = error("fn f(a) = a @ a\nz = f(2.0)\n")
    lines = str(e).splitlines()
    assert lines[0].startswith("test.tfl:1:13: error: matmul:")
    assert lines[3:] == ["test.tfl:2:5: note: in this call of 'f'", "  z = f(2.0)", "      ^"]


def test_files(tmp_path):
    good = tmp_path / "net.tfl"
    good.write_text("\ufeffinput x: f32[2]\ny = x * 2\n")
    assert parse_file(good).name == "net"
    assert parse_file(str(good)).function("model").fetchable == ("y",)

    missing = tmp_path / "missing.tfl"
    with pytest.raises(Error, match="cannot read .*missing.tfl: No such file"):
        parse_file(missing)
    with pytest.raises(Error, match="cannot read"):
        parse_file(tmp_path)

    binary = tmp_path / "model.tfl"
    binary.write_bytes(b"x = 1\ny = \x00\x01\x02")
    with pytest.raises(Error) as info:
        parse_file(binary)
    assert "is not a text file" in info.value.message
    assert (info.value.loc.line, info.value.loc.col) == (2, 5)

    latin1 = tmp_path / "latin1.tfl"
    latin1.write_bytes("x = 1\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(Error) as info:
        parse_file(latin1)
    assert info.value.message.endswith("is not UTF-8 text (byte 0xe9)")
    assert (info.value.loc.line, info.value.loc.col) == (2, 6)

    empty = tmp_path / "empty.tfl"
    empty.write_bytes(b"")
    assert parse_file(empty).decls == ()


def test_errors_carry_the_file_name(tmp_path):
    path = tmp_path / "bad.tfl"
    path.write_text("x = y\n")
    with pytest.raises(Error) as info:
        parse_file(path)
    assert str(info.value).startswith(f"{path}:1:5: error: undefined name 'y'")
