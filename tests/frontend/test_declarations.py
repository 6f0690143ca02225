"""Declarations: model, input, param, state, const; types and initializers."""

import numpy as np
import pytest


def decl(module, name):
    return module.decl(name)


def test_model_name_from_statement_or_file_stem(parse):
    assert parse("model mine\n", "other.tfl").name == "mine"
    assert parse("z = 1\n", "dir/two_layer.tfl").name == "two_layer"
    assert parse("z = 1\n", "2-layer net.tfl").name == "_2_layer_net"


def test_model_must_come_first(error):
    e = error("z = 1\nmodel late\n")
    assert e.message == "`model NAME` must be the first statement of the file"
    assert (e.loc.line, e.loc.col) == (2, 1)
    assert "first statement" in error("model a\nmodel b\n").message
    assert "first statement" in error("scope s {\n model a\n}\n").message


def test_inputs_with_symbolic_and_unknown_dims(parse):
    module = parse("""
        input x: f32[N, 784]
        input y: i64[N]
        input z: f64[?, batch, ?]
        input s: bool[]
        """)
    assert [str(d.type) for d in module.decls] == ["f32[N,784]", "i64[N]", "f64[?1,batch,?2]",
                                                    "bool[]"]
    assert all(d.kind == "input" and d.init is None for d in module.decls)
    func = module.function("model")
    assert func.dims == ("N", "?1", "batch", "?2")
    assert [a.name for a in func.args] == ["x", "y", "z", "s"]
    assert [a.type for a in func.args] == [d.type for d in module.decls]


def test_decl_locations_point_at_the_name(parse):
    module = parse("input x: f32[3]\n  param W: f32[3] = zeros()\n")
    assert [(d.loc.line, d.loc.col) for d in module.decls] == [(1, 7), (2, 9)]
    assert module.decls[1].loc.text == "  param W: f32[3] = zeros()"


@pytest.mark.parametrize("init, kind, args", [
    ("zeros()", "zeros", ()),
    ("ones()", "ones", ()),
    ("fill(0.5)", "fill", (("value", 0.5),)),
    ("fill(value=2)", "fill", (("value", 2.0),)),
    ("normal()", "normal", (("mean", 0.0), ("stddev", 1.0))),
    ("normal(stddev=0.03)", "normal", (("mean", 0.0), ("stddev", 0.03))),
    ("normal(1, 2, seed=7)", "normal", (("mean", 1.0), ("stddev", 2.0), ("seed", 7))),
    ("truncated_normal(stddev=0.1)", "truncated_normal", (("mean", 0.0), ("stddev", 0.1))),
    ("uniform(low=-1, high=1)", "uniform", (("low", -1.0), ("high", 1.0))),
    ("uniform()", "uniform", (("low", 0.0), ("high", 1.0))),
    ("glorot_uniform()", "glorot_uniform", ()),
    ("glorot_uniform(seed=3)", "glorot_uniform", (("seed", 3),)),
])
def test_initializers(parse, init, kind, args):
    module = parse(f"param W: f32[4, 3] = {init}\n")
    assert decl(module, "W").init.kind == kind
    assert decl(module, "W").init.args == args
    assert all(type(v) in (float, int) for _, v in args)


def test_fill_value_takes_the_decl_dtype(parse):
    module = parse("state c: i32[2] = fill(3)\nstate b: bool[] = fill(true)\n")
    assert decl(module, "c").init.args == (("value", 3),)
    assert decl(module, "b").init.args == (("value", True),)


@pytest.mark.parametrize("init, dtype, value", [
    ("0.1", "f32", np.float32(0.1)),
    ("0", "f32", np.float32(0)),
    ("[1, 2, 3]", "f32", np.array([1, 2, 3], np.float32)),
    ("[[1], [2]]", "f32", np.array([[1], [2]], np.float32)),
    ("-2 * 3", "f32", np.float32(-6)),
])
def test_literal_initial_values_are_stored_unbroadcast(parse, init, dtype, value):
    module = parse(f"param W: {dtype}[2, 3] = {init}\n")
    init = decl(module, "W").init
    assert init.kind == "value"
    array = init.arg("value")
    assert array.dtype == np.dtype(np.float32)
    np.testing.assert_array_equal(array, value)


def test_state_literals_and_consts_as_initial_values(parse):
    module = parse("const start = 50\nstate c: i32[] = start\nstate f: bool[3] = false\n")
    assert decl(module, "c").init.arg("value") == 50
    assert decl(module, "c").init.arg("value").dtype == np.int32
    assert decl(module, "f").init.arg("value").dtype == np.bool_


def test_params_state_and_inputs_in_scopes_are_dotted(parse):
    module = parse("scope a {\n scope b {\n  param W: f32[1] = 0\n  input x: f32[1]\n }\n}\n")
    assert [d.name for d in module.decls] == ["a.b.W", "a.b.x"]
    assert [a.name for a in module.function("model").args] == ["a.b.W", "a.b.x"]


@pytest.mark.parametrize("text, message, col", [
    ("param W: f32[N] = zeros()", "a param's shape must be known when compiling: 'N'", 14),
    ("state s: f32[?] = zeros()", "a state's shape must be known when compiling: '?'", 14),
    ("input x: f16[3]", "unknown dtype 'f16'", 10),
    ("input x: f32[0]", "a dim must be a positive size, got 0", 14),
    ("input x: f32[a.b]", "a dim name cannot contain '.'", 14),
    ("input x: f32[3] = zeros()", "input 'x' cannot have an initial value", 19),
    ("param W: f32[3]", "param 'W' needs an initial value", 7),
    ("param W: f32[3] = [1, 2]", "an initial value of shape [2] does not broadcast", 19),
    ("param W: f32[3] = true", "initial value true is a bool, not a number", 19),
    ("state s: i32[] = 0.5", "initial value 0.5 is not an integer", 18),
    ("state s: bool[] = 1", "initial value 1 is a number, not a bool", 19),
    ("state s: i32[] = normal()", "normal() draws floats, but 's' is i32[]", 18),
    ("param W: f32[3] = normal(stdev=1)", "normal has no argument 'stdev'", 26),
    ("param W: f32[3] = normal(1, 2, 3, 4)", "normal takes at most 3 arguments, got 4", 35),
    ("param W: f32[3] = normal(stddev=-1)", "normal's stddev must be positive", 33),
    ("param W: f32[3] = uniform(low=1, high=0)", "uniform's high must be above its low", 39),
    ("param W: f32[3] = fill()", "fill needs the argument 'value'", 19),
    ("param W: f32[3] = fill([1, 2, 3])", "fill's value must be one number", 24),
    ("param W: f32[3] = uniform(low=2)", "uniform's high must be above its low", 31),
    ("param W: f32[3] = normal(seed=-1)", "a seed must be an integer in [0, 2**64)", 31),
    ("param W: f32[3] = normal(seed=1.5)", "a seed must be an integer", 31),
    ("param W: f32[3] = normal(mean=true)", "normal's mean must be a number", 31),
    ("input x: f32[3]\nparam W: f32[3] = x", "must be a constant or an initializer", 19),
    ("param W: f32[3] = 1\nparam W: f32[3] = 2", "'W' is already defined", 7),
    ("param exp: f32[3] = 1", "'exp' is a builtin function and cannot be redefined", 7),
    ("param f32: f32[3] = 1", "'f32' is a dtype and cannot be redefined", 7),
    ("input __x: f32[3]", "names starting with '__' are reserved", 7),
])
def test_declaration_errors(error, text, message, col):
    e = error(text + "\n")
    assert message in e.message
    assert e.loc.line == text.count("\n") + 1
    assert e.loc.col == col


def test_redefinition_points_at_both_places(error):
    e = error("input x: f32[3]\n\nx = 1\n")
    assert e.message == "'x' is already defined"
    assert (e.loc.line, e.loc.col) == (3, 1)
    (note, first), = e.notes
    assert note == "first defined here" and (first.line, first.col) == (1, 7)
    assert str(e).splitlines() == [
        "test.tfl:3:1: error: 'x' is already defined", "  x = 1", "  ^",
        "test.tfl:1:7: note: first defined here", "  input x: f32[3]", "        ^"]


def test_const_expressions(parse, error, sexpr):
    module = parse("const a = 2 * 3\nconst b = exp(1.0)\nconst c = a + b\n")
    assert sexpr(module, "a") == "6:i32"
    assert sexpr(module, "b") == "(exp 1.0:f32)"
    assert sexpr(module, "c") == "(add 6.0:f32 b)"
    e = error("input x: f32[3]\nconst k = sum(x) * 2\n")
    assert e.message == "const 'k' is not constant: it depends on input 'x'"
    assert (e.loc.line, e.loc.col) == (2, 7)
    e = error("param W: f32[3] = 1\nh = W * 2\nconst k = shape(h, 0)\n")
    assert e.message == "const 'k' is not constant: it depends on param 'W'"
    e = error("const k = dropout([1.0, 2.0], 0.5)\n")
    assert e.message == "const 'k' is not constant: it depends on dropout's random mask"
