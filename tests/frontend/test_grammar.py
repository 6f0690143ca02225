"""The grammar: lexical rules, statements, and every operator at its precedence level."""

import pytest

DECLS = """
input a: f32[]
input b: f32[]
input c: f32[]
input d: f32[]
input p: bool[]
input q: bool[]
input r: bool[]
"""


def tree_of(parse, sexpr, expression):
    return sexpr(parse(DECLS + f"z = {expression}\n"), "z")


@pytest.mark.parametrize("expression, expected", [
    ("a + b * c", "(add a (mul b c))"),
    ("a * b + c", "(add (mul a b) c)"),
    ("a - b - c", "(sub (sub a b) c)"),
    ("a / b / c", "(div (div a b) c)"),
    ("a * b / c", "(div (mul a b) c)"),
    ("(a + b) * c", "(mul (add a b) c)"),
    ("-a ** 2", "(neg (pow a 2.0:f32))"),
    ("a ** b ** c", "(pow a (pow b c))"),
    ("a ** -b", "(pow a (neg b))"),
    ("-a * b", "(mul (neg a) b)"),
    ("- -a", "(neg (neg a))"),
    ("a - -b", "(sub a (neg b))"),
    ("a + b == c * d", "(eq (add a b) (mul c d))"),
    ("a != b", "(ne a b)"),
    ("a < b", "(lt a b)"),
    ("a <= b", "(le a b)"),
    ("a > b", "(gt a b)"),
    ("a >= b", "(ge a b)"),
    ("not a == b", "(not (eq a b))"),
    ("not not p", "(not (not p))"),
    ("p and q or r", "(or (and p q) r)"),
    ("p or q and r", "(or p (and q r))"),
    ("not p and q", "(and (not p) q)"),
    ("p and not q", "(and p (not q))"),
    ("a < b and c > d", "(and (lt a b) (gt c d))"),
    ("p == q", "(eq p q)"),
    ("exp(a) * 2", "(mul (exp a) 2.0:f32)"),
    ("-exp(a)", "(neg (exp a))"),
])
def test_precedence(parse, sexpr, expression, expected):
    assert tree_of(parse, sexpr, expression) == expected


def test_matmul_binds_like_multiplication(parse, sexpr):
    module = parse("""
        input x: f32[2, 3]
        input W: f32[3, 4]
        input b: f32[4]
        z = x @ W + b
        y = 2 * x @ W
        """)
    assert sexpr(module, "z") == "(add (matmul x W) b)"
    assert sexpr(module, "y") == "(matmul (mul 2.0:f32 x) W)"


def test_comparisons_do_not_chain(error):
    e = error("input a: f32[]\nz = a < a < a\n")
    assert "unexpected '<'" in e.message
    assert (e.loc.line, e.loc.col) == (2, 11)
    assert "do not chain" in e.hint


@pytest.mark.parametrize("text, value, dtype", [
    ("3", 3, "i32"), ("0", 0, "i32"), ("0.5", 0.5, "f32"), (".5", 0.5, "f32"),
    ("2.", 2.0, "f32"), ("1e-10", 1e-10, "f32"), ("1E3", 1000.0, "f32"), ("2.5e+2", 250.0, "f32"),
    ("-2", -2, "i32"), ("true", True, "bool"), ("false", False, "bool"),
])
def test_number_and_bool_literals(parse, text, value, dtype):
    module = parse(f"z = {text}\n")
    op, = module.function("model").ops
    assert op.opcode == "const" and op.result.type.dtype == dtype
    assert op.attrs["value"].item() == pytest.approx(value)


def test_comments_blank_lines_and_newlines_inside_brackets(parse, sexpr):
    module = parse("""
        # a comment on its own line

        input a: f32[]     # a comment after a statement
        input b: f32[2]
        z = maximum(a,     # newlines inside ( ) do not end the statement
                    b)
        t = [1.0,
             # even with a comment between
             2.0] * b
        y = (a
             + 1)
        """)
    assert sexpr(module, "z") == "(maximum a b)"
    assert sexpr(module, "t") == "(mul [1.0, 2.0]:f32 b)"
    assert sexpr(module, "y") == "(add a 1.0:f32)"


def test_a_newline_ends_a_statement(error):
    e = error("input a: f32[]\nz = a +\n  a\n")
    assert e.message == "unexpected newline, expected an expression"
    assert (e.loc.line, e.loc.col) == (2, 8)


def test_crlf_tabs_and_trailing_commas(parse, sexpr):
    module = parse("input a: f32[2,]\r\nz = maximum(\ta, 1,)\r\nw = [1, 2,]\r\n")
    assert sexpr(module, "z") == "(maximum a 1.0:f32)"
    assert sexpr(module, "w") == "[1, 2]:i32"


def test_empty_and_comment_only_files(parse):
    for text in ["", "\n\n", "# nothing here\n", "   \n# x\n  # y"]:
        module = parse(text, "empty.tfl")
        assert module.name == "empty"
        assert module.decls == () and module.function("model").ops == ()


def test_statements_may_end_at_the_end_of_file(parse):
    assert parse("z = 1").function("model").fetchable == ("z",)


def test_dotted_names_and_keywords_inside_them(parse, sexpr):
    module = parse("""
        scope model_part {
            input notes: f32[]
            andy = notes * 2
        }
        z = model_part.andy + model_part.notes
        """)
    assert sexpr(module, "z") == "(add model_part.andy model_part.notes)"


@pytest.mark.parametrize("word", ["model", "input", "param", "state", "const", "train", "step",
                                  "fn", "return", "scope", "true", "false", "and", "or", "not"])
def test_keywords_cannot_be_names(error, word):
    texts = [f"{word} = 1\n", f"fn f({word}) = 1\n", f"input {word}: f32[]\n"]
    if word not in ("true", "false", "not"):  # those three are also expressions
        texts.append(f"x = {word}(1)\n")
    for text in texts:
        e = error(text)
        assert e.message in (f"'{word}' is a keyword and cannot be used as a name",
                             f"'{word}' is a keyword, not a function"), text
        assert e.loc.line == 1


def test_statement_kinds_all_parse(parse):
    module = parse("""
        model everything
        input x: f32[N, ?]
        param W: f32[3] = zeros()
        state s: i32[] = 0
        const k = 2
        y = x * 2
        g1, g2 = grad(sum(W), [W, W])
        fn f(a) = a + 1
        fn g(a) {
            t = a * 2
            return t
        }
        scope sc {
            h = f(W)
        }
        step up { s <- s + 1 }
        train t = sgd(sum(W), 0.1)
        """)
    func = module.function("model")
    assert module.name == "everything"
    assert func.fetchable == ("k", "y", "g1", "g2", "sc.h")
    assert func.steps == ("up", "t")
