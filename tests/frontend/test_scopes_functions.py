"""Scopes (dotted names, lookup outwards) and functions (pure, inlined at each call)."""

import numpy as np


def test_scoped_names_lookup_and_use_from_outside(parse, sexpr):
    module = parse("""
        input x: f32[2, 3]
        param W: f32[3, 3] = 1
        scope fc1 {
            param W: f32[3, 4] = 0.5
            h = x @ W
            scope inner {
                g = h + 1
                k = W
            }
            m = inner.g * 2
        }
        out = fc1.h + fc1.inner.g
        """)
    assert [d.name for d in module.decls] == ["x", "W", "fc1.W"]
    func = module.function("model")
    assert func.fetchable == ("fc1.h", "fc1.inner.g", "fc1.inner.k", "fc1.m", "out")
    assert sexpr(module, "fc1.h") == "(matmul x fc1.W)"  # the innermost W wins
    assert sexpr(module, "fc1.inner.k") == "fc1.W"
    assert sexpr(module, "fc1.m") == "(mul fc1.inner.g 2.0:f32)"
    assert sexpr(module, "out") == "(add fc1.h fc1.inner.g)"


def test_a_scope_can_be_left_and_its_names_stay_dotted(parse, error):
    module = parse("scope a {\n h = 1\n}\nscope b {\n h = a.h + 1\n}\n")
    assert module.function("model").fetchable == ("a.h", "b.h")
    e = error("scope a {\n h = 1\n}\nk = h\n")
    assert e.message == "undefined name 'h'"
    assert e.hint == "did you mean 'a.h'?"


def test_scope_errors(error):
    e = error("scope a {\n}\nscope a {\n}\n")
    assert e.message == "'a' is already defined" and e.notes[0][1].line == 1
    assert error("scope a {\n}\nz = a\n").message.startswith("'a' is a scope")
    assert error("z = 1\nscope z {\n}\n").message == "'z' is already defined"
    e = error("scope a {\n}\na.h = 1\n")
    assert e.message == "cannot define the dotted name 'a.h' here"
    assert e.hint == "define it inside `scope a { ... }`"


def test_fn_expression_and_block_forms_inline_at_each_call(parse, sexpr):
    module = parse("""
        input x: f32[2, 3]
        param W: f32[3, 4] = 1
        param b: f32[4] = 0
        param V: f32[4, 5] = 1
        fn dense(x, W, b) = x @ W + b
        fn layer(x, W) {
            z = x @ W
            return relu(z)
        }
        h = layer(x, W)
        h2 = layer(h, V)
        d = dense(x, W, b)
        """)
    func = module.function("model")
    assert sexpr(module, "h") == "(relu (matmul x W))"
    assert sexpr(module, "h2") == "(relu (matmul h V))"
    assert sexpr(module, "d") == "(add (matmul x W) b)"
    assert func.fetchable == ("h", "h2", "d")  # a fn's locals are not outputs
    assert [op.result.type.shape for op in func.ops if op.opcode == "relu"] == [(2, 4), (2, 5)]


def test_fn_parameters_take_their_types_from_each_call(parse):
    module = parse("""
        input a: f64[3]
        input b: i32[2, 2]
        fn twice(v) = v * 2
        x = twice(a)
        y = twice(b)
        z = twice(0.5)
        """)
    types = {o.label: str(o.value.type) for o in module.function("model").outputs}
    assert types == {"x": "f64[3]", "y": "i32[2,2]", "z": "f32[]"}


def test_each_call_is_shape_checked_and_the_error_names_the_call(error):
    e = error("""fn dense(x, W) = x @ W
input x: f32[2, 3]
param W: f32[4, 5] = 0
h = dense(x, W)
""")
    assert e.message.startswith("matmul: f32[2,3] @ f32[4,5]: inner dimensions 3 and 4 differ")
    assert (e.loc.line, e.loc.col) == (1, 20)
    assert [(note, loc.line, loc.col) for note, loc in e.notes] == [
        ("in this call of 'dense'", 4, 5)]


def test_fn_keywords_tuple_returns_and_free_names(parse, sexpr):
    module = parse("""
        param W: f32[3] = 1
        fn affine(x, scale, shift) = x * scale + shift
        fn both(y) {
            doubled = y * 2
            return doubled, y + W
        }
        a = affine(W, shift=1, scale=3)
        p, q = both(W)
        """)
    assert sexpr(module, "a") == "(add (mul W 3.0:f32) 1.0:f32)"
    assert sexpr(module, "p") == "(mul W 2.0:f32)"
    assert sexpr(module, "q") == "(add W W)"


def test_fn_defined_in_a_scope_sees_that_scope(parse, sexpr):
    module = parse("""
        scope s {
            param W: f32[2] = 1
            fn f(x) = x * W
        }
        input x: f32[2]
        y = s.f(x)
        """)
    assert sexpr(module, "y") == "(mul x s.W)"


def test_fn_errors(error):
    e = error("fn f(x) = f(x)\nz = f(1)\n")
    assert e.message == "'f' calls itself: functions are inlined, so they cannot recurse"
    assert e.notes[-1][0] == "in this call of 'f'"
    e = error("fn f(x) = g(x)\nfn g(x) = f(x)\nz = f(1.0)\n")
    assert "'f' calls itself" in e.message
    assert error("fn f(x, y) = x\nz = f(1)\n").message == "f needs the argument 'y'"
    e = error("fn f(x) = x\nz = f(1, 2)\n")
    assert e.message == "f takes at most 1 argument, got 2"
    assert e.hint == "f takes (x)"
    e = error("fn f(x) = x\nz = f(y=1)\n")
    assert e.message == "f has no argument 'y'"
    assert error("fn f(x) = x\nz = f\n").message == "'f' is a function: call it, as in f(...)"
    assert error("z = 1\ny = z(2)\n").message == "'z' is a defined value, not a function"
    assert error("fn f(x, x) = x\n").message == "'f' has two parameters named 'x'"
    assert error("fn f(exp) = exp\n").message == \
        "'exp' is a builtin function and cannot be redefined"
    assert error("fn exp(x) = x\n").message == \
        "'exp' is a builtin function and cannot be redefined"
    assert error("fn f(x) {\n x = 1\n return x\n}\nz = f(1)\n").message == \
        "'x' is already defined"
    e = error("fn f(x) {\n y = x * q\n return y\n}\nz = f(1)\n")
    assert e.message == "undefined name 'q'" and (e.loc.line, e.loc.col) == (2, 10)
    e = error("z = fn_missing(1)\n")
    assert e.message == "undefined function 'fn_missing'"
    assert error("z = rleu(1.0)\n").hint == "did you mean 'relu'?"


def test_fn_values_are_right(parse, evaluate):
    module = parse("""
        input x: f32[2, 3]
        param W: f32[3, 2] = 0
        fn layer(x, W) {
            z = x @ W
            return relu(z - 1)
        }
        y = layer(x, W) + layer(x, W * 2)
        """)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    W = np.ones((3, 2), np.float32)
    expected = np.maximum(x @ W - 1, 0) + np.maximum(x @ (W * 2) - 1, 0)
    np.testing.assert_array_equal(evaluate(module, "y", x=x, W=W), expected)


def test_unpacking(parse, sexpr, error):
    module = parse("""
        param W: f32[2] = 1
        param b: f32[] = 0
        loss = sum(W) + b
        gW, gb = grad(loss, [W, b])
        only, = grad(loss, [W])
        fn two(x) {
            return x, x * 2
        }
        p, q, = two(b)
        """)
    assert module.function("model").fetchable == ("loss", "gW", "gb", "only", "p", "q")
    assert sexpr(module, "gb") == "(grad loss b)"
    assert sexpr(module, "only") == "(grad loss W)"
    assert sexpr(module, "p") == "b"  # an alias: b is not renamed
    assert sexpr(module, "q") == "(mul b 2.0:f32)"
    assert error("a, b = 1\n").message == "only a tuple, such as grad(y, [a, b]), can be " \
        "unpacked into 2 names"
    assert error("input x: f32[]\na, b, c = grad(x, [x, x])\n").message == \
        "2 values cannot be unpacked into 3 names"
    e = error("input x: f32[]\na, a = grad(x, [x, x])\n")
    assert e.message == "'a' is already defined" and (e.loc.line, e.loc.col) == (2, 4)
    assert error("input x: f32[]\ng = grad(x, [x])\n").hint == "unpack it: a, = ..."
