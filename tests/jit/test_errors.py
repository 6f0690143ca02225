"""Mistakes in traced Python: located tflc.Errors at the user's line, with the usual fixes."""

import inspect

import numpy as np
import pytest

import tflc

Error = tflc.Error

X = np.ones((8, 784), np.float32)
W_BAD = np.ones((300, 10), np.float32)


def line_of(fn, text: str) -> int:
    """The line number, in this file, of the line of `fn` that contains `text`."""
    lines, first = inspect.getsourcelines(fn)
    matches = [first + i for i, line in enumerate(lines) if text in line]
    assert len(matches) == 1, (text, matches)
    return matches[0]


def error_of(fn, *args, **options) -> Error:
    with pytest.raises(Error) as info:
        tflc.jit(fn, **options)(*args)
    return info.value


def assert_at(error: Error, fn, text: str) -> None:
    assert error.loc is not None, error
    assert error.loc.file.endswith("test_errors.py")
    assert error.loc.line == line_of(fn, text), str(error)
    assert str(error).startswith(f"{error.loc}: error: ")


def branchy(x):
    y = x * 2
    if y.sum() > 0:
        return y
    return -y


def to_float(x):
    return x * float(x.mean())


def loop_over_batch(x):
    total = 0
    for i in range(x.shape[0]):
        total = total + x[i]
    return total


def length(x):
    return x.sum() / len(x)


def iterate(x):
    return [row.sum() for row in x]


def test_if_on_a_traced_value():
    error = error_of(branchy, X)
    assert_at(error, branchy, "if y.sum() > 0")
    assert "truth value" in error.message and "traced bool[]" in error.message
    assert "tflc.where" in error.hint and "static_argnums" in error.hint


def test_float_of_a_traced_value():
    error = error_of(to_float, X)
    assert_at(error, to_float, "float(x.mean())")
    assert error.message.startswith("float() of a traced f32[] value")


@pytest.mark.parametrize("fn, text", [(loop_over_batch, "range("), (length, "len(x)"),
                                      (iterate, "for row in x")])
def test_python_needs_the_size_of_a_symbolic_dim(fn, text):
    error = error_of(fn, X)
    assert_at(error, fn, text)
    assert "symbolic" in error.message and "only known at run time" in error.message
    assert "symbolic_dims" in error.hint


def test_the_same_loop_works_over_a_static_dim():
    got = tflc.jit(iterate, symbolic_dims={"x": ()})(X[:3])
    assert [float(v) for v in got] == [784.0] * 3


def linear(x, W):
    return x @ W


def test_shape_errors_point_at_the_users_line_with_both_shapes():
    error = error_of(linear, X, W_BAD)
    assert_at(error, linear, "x @ W")
    assert error.message == "matmul: f32[N,784] @ f32[300,10]: inner dimensions 784 and 300 differ"
    assert error.loc.col == len("    return x") - len("x") + 1


def dense(x, W):
    return x @ W


def model(x, W):
    return tflc.relu(dense(x, W))


def test_errors_in_helpers_point_at_the_innermost_line_of_user_code():
    assert_at(error_of(model, X, W_BAD), dense, "x @ W")


def test_broadcast_errors_show_the_sizes_at_fault():
    error = error_of(lambda x, b: x + b, X, np.ones(10, np.float32))
    assert error.message == "add: f32[N,784] and f32[10]: dims 784 and 10 do not broadcast"
    error = error_of(lambda x, y: x - y, X, X[:5])
    assert error.message == "sub: f32[8,784] and f32[5,784]: dims 8 and 5 do not broadcast"


def test_a_dim_marked_symbolic_stays_symbolic():
    error = error_of(linear, X, np.ones((784, 10), np.float32), symbolic_dims={"W": (0,)})
    assert error.message == "matmul: f32[N,784] @ f32[N2,10]: inner dimensions 784 and N2 differ"
    assert "symbolic_dims" in error.hint


def test_integer_division_and_floor_division():
    ints = np.arange(6, dtype=np.int32)
    assert "expects a float tensor" in error_of(lambda n: n / 2, ints).message
    assert "floor division" in error_of(lambda n: n // 2, ints).message


def test_numpy_functions_without_a_tflc_counterpart():
    error = error_of(lambda x: np.sum(x), X)
    assert error.message == "numpy.sum is not supported on traced values"
    assert "tflc.sum" in error.hint
    assert "cannot become a NumPy array" in error_of(lambda x: np.asarray(x) + 1, X).message


def test_traced_values_do_not_escape():
    kept = []
    tflc.jit(lambda x: kept.append(x) or x)(X)
    with pytest.raises(Error, match="outside the function call that traced it"):
        tflc.jit(lambda y: y + kept[0])(X)


def test_bad_arguments_and_results():
    assert "static_argnums" in error_of(lambda x, mode: x, X, "fast").hint
    assert "convert it" in error_of(lambda x: x, X.astype(np.uint8)).hint
    assert "returned a str" in error_of(lambda x: "done", X).message
    assert "too many indices" in error_of(lambda x: x[0, 0, 0], X).message
    assert "step" in error_of(lambda x: x[:, ::2], X).message
    assert "in place" in error_of(lambda x: x.__setitem__(0, 1.0), X).message
    assert "indexing with a traced value" in error_of(lambda x, i: x[:, i], X, np.arange(3)).message
    with pytest.raises(Error, match="no parameter 'y'"):
        tflc.jit(lambda x: x, static_argnames="y")
    with pytest.raises(Error, match="too many positional arguments"):
        tflc.jit(lambda x: x)(X, X)


def test_dump_before_any_call_asks_for_example_arguments():
    with pytest.raises(Error, match="has not been called yet"):
        tflc.jit(linear).dump()
