"""Initializers: values, statistics, seeding, and mistakes."""

import numpy as np
import pytest

from tflc import Error, Model
from tflc.ir import Decl, Init, Loc, TensorType
from tflc.ir.parser import parse_module
from tflc.runtime.init import initial_value

LOC = Loc("m.tfl", 4, 1)


def init(kind, dtype="f32", shape=(200, 300), name="W", model_seed=0, **args):
    decl = Decl("param", name, TensorType(dtype, shape), Init(kind, tuple(args.items())), LOC)
    return initial_value(decl, model_seed)


def test_constant_initializers():
    zeros = init("zeros", "i32", (2, 3))
    assert (zeros == 0).all() and zeros.dtype == np.int32
    assert (init("ones", shape=(4,)) == 1).all()
    np.testing.assert_array_equal(init("fill", "f64", (2,), value=2.5), [2.5, 2.5])


def test_literals_broadcast_to_the_shape_and_take_the_dtype():
    got = init("value", shape=(2, 3), value=np.array([1, 2, 3]))
    assert got.dtype == np.float32 and got.flags.writeable
    np.testing.assert_array_equal(got, [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(Error, match=r"initial value of shape \[2\] does not broadcast to 'W': "
                                    r"f32\[2,3\]") as e:
        init("value", shape=(2, 3), value=np.array([1.0, 2.0]))
    assert e.value.loc == LOC
    with pytest.raises(Error, match="initial value of dtype float64 does not fit 'W': i32"):
        init("value", "i32", (), value=np.array(0.5))


def test_random_initializers_have_their_statistics():
    normal = init("normal", mean=1.0, stddev=0.1)
    assert abs(normal.mean() - 1.0) < 0.01 and abs(normal.std() - 0.1) < 0.01
    assert normal.dtype == np.float32
    truncated = init("truncated_normal", stddev=0.1)
    assert np.abs(truncated).max() <= 0.2 and abs(truncated.std() - 0.088) < 0.005
    uniform = init("uniform", low=-2.0, high=-1.0)
    assert uniform.min() >= -2.0 and uniform.max() < -1.0 and abs(uniform.mean() + 1.5) < 0.01
    glorot = init("glorot_uniform")
    limit = np.sqrt(6 / 500)
    assert np.abs(glorot).max() <= limit and np.abs(glorot).max() > 0.99 * limit


def test_seeds_make_values_reproducible_and_depend_on_the_name():
    assert (init("normal", model_seed=1) == init("normal", model_seed=1)).all()
    assert not (init("normal", model_seed=1) == init("normal", model_seed=2)).any()
    assert not (init("normal", name="W1") == init("normal", name="W2")).any()
    # the decl's own seed replaces the model's
    assert (init("normal", model_seed=1, seed=7) == init("normal", model_seed=2, seed=7)).all()
    assert not (init("normal", seed=7) == init("normal", seed=8)).any()


def model_with(*decls, seed=0):
    text = "model m\n" + "\n".join(decls) + "\n\nfunc @model() -> () {\n  return\n}\n"
    return Model(parse_module(text), seed=seed)


def test_values_do_not_depend_on_other_declarations():
    a = model_with("param A: f32[3] = normal()", "param B: f32[3] = uniform()")
    b = model_with("param C: f32[9] = normal()", "param B: f32[3] = uniform()",
                   "param A: f32[3] = normal()")
    np.testing.assert_array_equal(a.params["A"], b.params["A"])
    np.testing.assert_array_equal(a.params["B"], b.params["B"])
    again = model_with("param A: f32[3] = normal()", "param B: f32[3] = uniform()")
    np.testing.assert_array_equal(a.params["A"], again.params["A"])
    other = model_with("param A: f32[3] = normal()", seed=1)
    assert not (a.params["A"] == other.params["A"]).any()


def test_initializer_mistakes_are_located():
    with pytest.raises(Error, match="unknown initializer 'nromal' for 'W'") as e:
        init("nromal")
    assert e.value.loc == LOC and e.value.hint == "did you mean 'normal'?"
    with pytest.raises(Error, match=r"normal\(\) has no argument 'std'") as e:
        init("normal", std=1.0)
    assert e.value.hint == "did you mean 'stddev'?"
    with pytest.raises(Error, match=r"glorot_uniform\(\) has no argument 'gain'") as e:
        init("glorot_uniform", gain=1.0)
    assert e.value.hint == "glorot_uniform() takes no arguments"
    with pytest.raises(Error, match=r"normal\(\) draws floats; 'W' is i32\[2\]"):
        init("normal", "i32", (2,))
    with pytest.raises(Error, match=r"cannot initialize 'W' with normal\(\): scale < 0"):
        init("normal", stddev=-1.0)
    with pytest.raises(Error, match="seed of 'W' must be a non-negative integer, got -3"):
        init("normal", seed=-3)
