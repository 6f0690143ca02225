"""Literal typing: weak literals take the dtype of the tensor they meet; alone they fold."""

import numpy as np
import pytest

DECLS = """
input x: f32[2]
input d: f64[2]
input i: i32[2]
input l: i64[2]
input c: bool[2]
"""


def consts(module):
    """(dtype, value) of every constant the program made, in order."""
    return [(op.result.type.dtype, op.attrs["value"].tolist())
            for op in module.function("model").ops if op.opcode == "const"]


@pytest.mark.parametrize("expression, expected", [
    ("x + 1", [("f32", 1.0)]),
    ("d + 1", [("f64", 1.0)]),
    ("d * 0.1", [("f64", 0.1)]),
    ("x * 0.1", [("f32", np.float32(0.1).item())]),
    ("i + 1", [("i32", 1)]),
    ("l + 1", [("i64", 1)]),
    ("1 - d", [("f64", 1.0)]),
    ("c == true", [("bool", True)]),
    ("d + [1, 2]", [("f64", [1.0, 2.0])]),
    ("l * [[3], [4]]", [("i64", [[3], [4]])]),
    ("maximum(d, 0)", [("f64", 0.0)]),
    ("clip(d, 0, 1)", [("f64", 0.0), ("f64", 1.0)]),
    ("where(c, d, 0)", [("f64", 0.0)]),
    ("where(c, 0, i)", [("i32", 0)]),
    ("pow(2, d)", [("f64", 2.0)]),
    ("l + 3000000000", [("i64", 3000000000)]),
])
def test_a_literal_takes_the_dtype_of_the_tensor_it_meets(parse, expression, expected):
    module = parse(DECLS + f"z = {expression}\n")
    assert consts(module) == expected


@pytest.mark.parametrize("expression, dtype, value", [
    ("1 + 2", "i32", 3),
    ("1 + 2.5", "f32", 3.5),
    ("2 * 3 - 1", "i32", 5),
    ("2 ** 10", "i32", 1024),
    ("2 ** 0.5", "f32", np.float32(2 ** 0.5).item()),
    ("7.0 / 2", "f32", 3.5),
    ("-(3)", "i32", -3),
    ("1 < 2", "bool", True),
    ("true and not false", "bool", True),
    ("[1, 2] + 1", "i32", [2, 3]),
    ("[1, 2.5]", "f32", [1.0, 2.5]),
    ("[[true], [false]]", "bool", [[True], [False]]),
    ("[1, 2] @ [3, 4]", "i32", 11),
])
def test_literals_alone_fold_to_one_constant(parse, expression, dtype, value):
    module = parse(f"z = {expression}\n")
    assert consts(module) == [(dtype, value)]
    assert module.function("model").ops[0].result.name == "z"


def test_folding_happens_in_wide_precision_then_rounds_once(parse):
    module = parse(DECLS + "z = d * (1 - 1e-10)\n")
    assert consts(module) == [("f64", 1 - 1e-10)]


@pytest.mark.parametrize("text, message", [
    ("z = 1 / 2", "div: expects a float tensor, got i32[]"),
    ("z = 2 ** -1", "pow: cannot compute it"),
    ("z = i * 0.5", "operands have different dtypes i32 and f32"),
    ("z = c + 1", "operands have different dtypes bool and i32"),
    ("z = x + true", "operands have different dtypes f32 and bool"),
    ("z = i + 3000000000", "literal 3000000000 does not fit in i32"),
    ("z = 99999999999999999999", "integer literal 99999999999999999999 is too large"),
    ("z = [1, [2]]", "rectangular"),
    ("z = [[1, 2], [3]]", "rectangular"),
    ("z = [1, true]", "mixes bools and numbers"),
    ("z = []", "empty tensor literal"),
    ("z = [x, x]", "a tensor literal holds constants only"),
    ("z = 1 + true", "operands have different dtypes i32 and bool"),
])
def test_literal_errors(error, text, message):
    e = error(DECLS + text + "\n")
    assert message in e.message
    assert e.loc.line == 7


def test_const_literals_stay_weak_but_definitions_are_tensors(parse, error, sexpr):
    module = parse(DECLS + "const k = 2\nz = d * k\n")
    assert sexpr(module, "z") == "(mul d 2.0:f64)"
    assert sexpr(module, "k") == "2:i32"  # fetched alone, a const has the default dtype
    e = error(DECLS + "k = 2\nz = d * k\n")
    assert "operands have different dtypes f64 and i32" in e.message


def test_literal_values_are_computed_right(parse, evaluate):
    module = parse(DECLS + "z = (1 - d) * 0.5 + 2 ** 3\n")
    d = np.array([0.25, 2.0])
    result = evaluate(module, "z", x=np.zeros(2, np.float32), d=d, i=np.zeros(2, np.int32),
                      l=np.zeros(2, np.int64), c=np.zeros(2, bool))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, (1 - d) * 0.5 + 8)


def test_class_index_labels_keep_their_own_dtype(parse):
    module = parse("""
        input logits: f32[2, 3]
        z = sparse_softmax_cross_entropy_with_logits(labels=[0, 2], logits=logits)
        h = one_hot([1, 0], 3)
        """)
    assert consts(module) == [("i32", [0, 2]), ("i32", [1, 0])]
