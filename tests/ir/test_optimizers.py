"""Optimizer expansions against TensorFlow 1.x's update formulas written out in NumPy, over a few
steps of a small least-squares model, plus their state decls and argument errors."""

import numpy as np
import pytest

from tflc.codegen import numpy_backend
from tflc.ir import Builder, Error, Function, Init, Loc, Output, TensorType, Value
from tflc.ir.optimizers import expand_optimizer
from tflc.ir.types import NUMPY_DTYPES
from tflc.passes.autodiff import autodiff
from tflc.passes.inline import inline

RNG = np.random.default_rng(3)
LOC = Loc("m.tfl", 9, 1)
X, Y = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
START = {"W": RNG.standard_normal((3, 2)), "b": RNG.standard_normal(2)}


def model(kind, hyper, dtype="f64", extra_args=()):
    """loss = mse(x @ W + b, y) trained by `kind`; returns (expansion, compiled step)."""
    x, y = Value(TensorType(dtype, ("N", 3)), "x"), Value(TensorType(dtype, ("N", 2)), "y")
    params = [Value(TensorType(dtype, (3, 2)), "W"), Value(TensorType(dtype, (2,)), "b")]
    b = Builder(Loc("m.tfl", 2, 1))
    prediction = b.emit("add", b.emit("matmul", x, params[0]), params[1])
    loss = b.emit("mse", prediction, y, name="loss")
    expansion = expand_optimizer(kind, b, loss, params, hyper(b) if callable(hyper) else hyper,
                                 "train", LOC)
    args = (x, y, *params, *extra_args, *(v for _, v in expansion.state))
    outputs = (Output("loss", loss),) + tuple(Output(label, v, "train")
                                               for label, v in expansion.updates)
    func = Function("model", ("N",), args, tuple(b.ops), outputs)
    return expansion, numpy_backend.compile(autodiff(inline(func)))


def train(kind, hyper, steps, dtype="f64", extra_args=(), feeds=lambda n: []):
    """Runs `steps` steps (`feeds(n)`: the values of `extra_args` at step n); returns the
    params and state after them."""
    expansion, step = model(kind, hyper, dtype, extra_args)
    state = {name: v.astype(NUMPY_DTYPES[dtype]) for name, v in START.items()}
    state.update({decl.name: np.zeros(decl.type.shape, NUMPY_DTYPES[decl.type.dtype])
                  for decl, _ in expansion.state})
    x, y = X.astype(NUMPY_DTYPES[dtype]), Y.astype(NUMPY_DTYPES[dtype])
    for n in range(steps):
        args = [x, y, state["W"], state["b"], *feeds(n),
                *(state[decl.name] for decl, _ in expansion.state)]
        out = step({"N": 6}, args)
        for (label, _), new in zip(expansion.updates, out[1:]):
            state[label] = new
    return state


def grads(W, b):
    r = X @ W + b - Y
    d = 2 * r / r.size
    return {"W": X.T @ d, "b": d.sum(0)}


def reference(kind, steps, lr, **hyper):
    """TensorFlow's kernels (ApplyGradientDescent, ApplyMomentum, ApplyAdam) in NumPy."""
    params = {k: v.copy() for k, v in START.items()}
    slots = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in params.items()}
    for t in range(1, steps + 1):
        for name, g in grads(params["W"], params["b"]).items():
            var, (m, v) = params[name], slots[name]
            if kind == "sgd":
                var -= lr * g
            elif kind == "momentum":
                m[:] = m * hyper["momentum"] + g
                var -= g * lr + m * hyper["momentum"] * lr if hyper["nesterov"] else m * lr
            else:
                b1, b2, eps = hyper["beta1"], hyper["beta2"], hyper["eps"]
                alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                m += (g - m) * (1 - b1)
                v += (g * g - v) * (1 - b2)
                var -= m * alpha / (np.sqrt(v) + eps)
    return params


@pytest.mark.parametrize("kind, hyper, expected", [
    ("sgd", {"lr": 0.1}, {"lr": 0.1}),
    ("momentum", {"lr": 0.05}, {"lr": 0.05, "momentum": 0.9, "nesterov": False}),
    ("momentum", {"lr": 0.05, "momentum": 0.5, "nesterov": True},
     {"lr": 0.05, "momentum": 0.5, "nesterov": True}),
    ("adam", {}, {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ("adam", {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 0.01},
     {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 0.01}),
])
def test_updates_follow_tensorflow(kind, hyper, expected):
    ours = train(kind, hyper, steps=4)
    theirs = reference(kind, 4, **expected)
    for name in START:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6, atol=1e-9)
        assert not np.allclose(ours[name], START[name])


def test_hyperparameters_may_be_scalar_values_of_another_dtype():
    """lr fed as an f32 input each step (a schedule) and momentum as a constant, for f64 params;
    nesterov from a bool constant."""
    lr = Value(TensorType("f32", ()), "lr")
    schedule = [0.1, 0.05, 0.02]

    def hyper(b):
        return {"lr": lr, "momentum": b.const(0.8, "f32"), "nesterov": b.const(True, "bool")}
    ours = train("momentum", hyper, 3, extra_args=(lr,), feeds=lambda n: [np.float32(schedule[n])])
    params = {k: v.copy() for k, v in START.items()}
    accum = {k: np.zeros_like(v) for k, v in START.items()}
    for rate in np.float32(schedule).astype(np.float64):
        for name, g in grads(params["W"], params["b"]).items():
            accum[name] = accum[name] * np.float64(np.float32(0.8)) + g
            params[name] -= g * rate + accum[name] * np.float64(np.float32(0.8)) * rate
    for name in START:
        np.testing.assert_allclose(ours[name], params[name], rtol=1e-6)


def test_f32_training_matches_float64_tensorflow_closely():
    ours = train("adam", {"lr": 0.01}, 3, dtype="f32")
    theirs = reference("adam", 3, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    assert ours["W"].dtype == np.float32
    np.testing.assert_allclose(ours["W"], theirs["W"], rtol=1e-5)


def test_optimizer_state_decls():
    expansion, _ = model("adam", {})
    names = [decl.name for decl, _ in expansion.state]
    assert names == ["train.t", "train.m.W", "train.v.W", "train.m.b", "train.v.b"]
    for decl, value in expansion.state:
        assert decl.kind == "state" and decl.init == Init("zeros") and decl.loc == LOC
        assert value.name == decl.name and value.type == decl.type
    assert expansion.state[0][0].type == TensorType("i64", ())
    assert expansion.state[1][0].type == TensorType("f64", (3, 2))
    assert [label for label, _ in expansion.updates] == [
        "train.t", "train.m.W", "train.v.W", "W", "train.m.b", "train.v.b", "b"]
    expansion, _ = model("momentum", {"lr": 0.1})
    assert [decl.name for decl, _ in expansion.state] == ["train.velocity.W", "train.velocity.b"]
    expansion, _ = model("sgd", {"lr": 1})
    assert expansion.state == [] and [label for label, _ in expansion.updates] == ["W", "b"]


def bool_input(b):
    return {"lr": 0.1, "nesterov": Value(TensorType("bool", ()), "flag")}


@pytest.mark.parametrize("kind, hyper, message", [
    ("rmsprop", {"lr": 0.1}, "unknown optimizer 'rmsprop'"),
    ("sgd", {}, "sgd needs the argument 'lr'"),
    ("sgd", {"lr": 0.1, "momentum": 0.9}, "sgd has no argument 'momentum'"),
    ("sgd", {"lr": lambda b: b.const([0.1, 0.2], "f64")}, "lr must be a scalar number, got f64[2]"),
    ("adam", {"eps": lambda b: b.const(True, "bool")}, "eps must be a scalar number, got bool[]"),
    ("adam", {"lr": "fast"}, "lr must be a number, got 'fast'"),
    ("momentum", bool_input, "nesterov must be true or false, known when compiling"),
])
def test_bad_arguments_are_located_errors(kind, hyper, message):
    def resolve(b):
        if callable(hyper):
            return hyper(b)
        return {k: v(b) if callable(v) else v for k, v in hyper.items()}
    with pytest.raises(Error) as info:
        model(kind, resolve)
    assert info.value.loc == LOC
    assert message in info.value.message


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(Error) as info:
        model("adagrad", {})
    assert info.value.hint == "the optimizers are sgd, momentum, adam"


def test_a_non_scalar_loss_is_a_located_error():
    W = Value(TensorType("f32", (3,)), "W")
    b = Builder(Loc("m.tfl", 1, 1))
    with pytest.raises(Error) as info:
        expand_optimizer("sgd", b, b.emit("exp", W), [W], {"lr": 0.1}, "train", LOC)
    assert info.value.loc == LOC and "scalar" in info.value.message
