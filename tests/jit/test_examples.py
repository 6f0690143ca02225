"""The jitted examples train as their .tfl counterparts do."""

import importlib.util
import os

import numpy as np
import pytest

import tflc

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet(*args):
    pass


def test_linear_regression_descends_to_the_least_squares_line_of_the_tfl_model():
    regression = example("jit_linear_regression")
    x, y = regression.make_data()
    m, b, losses = regression.train(x, y, steps=1000, echo=quiet)
    slope, intercept = tflc.load(os.path.join(EXAMPLES, "linear_regression.tfl")).run(
        ["slope", "intercept"], x=x, y=y)
    np.testing.assert_allclose([m, b], [slope, intercept], rtol=1e-3)
    assert losses[-1] < losses[0] / 5
    assert regression.train_step.stats()["compiles"] == 1


def train_both(mlp, images, labels, steps: int, batch_size: int):
    """The jitted MLP and examples/mnist_mlp.tfl from the same initial params, on the same
    batches: the losses of each step (before its update) and the final params of both."""
    model = tflc.load(os.path.join(EXAMPLES, "mnist_mlp.tfl"), seed=0)
    params = {name: np.array(value) for name, value in model.params.items()}
    jit_losses, tfl_losses = [], []
    for step in range(steps):
        chosen = slice(step * batch_size, (step + 1) * batch_size)
        x, y = images[chosen], labels[chosen]
        loss, params = mlp.train_step(params, x, y, 0.5)
        jit_losses.append(float(loss))
        tfl_losses.append(float(model.run("step", x=x, y=y, fetch="cross_entropy")))
    return jit_losses, tfl_losses, params, model.params


def test_the_mlp_takes_the_same_steps_as_mnist_mlp_tfl():
    mlp = example("jit_mnist_mlp")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(96, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=96)]
    jit_losses, tfl_losses, params, tfl_params = train_both(mlp, images, labels, 3, 32)
    np.testing.assert_allclose(jit_losses, tfl_losses, rtol=1e-5)
    for name in params:
        np.testing.assert_allclose(params[name], tfl_params[name], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_the_mlp_learns_mnist_as_mnist_mlp_tfl_does():
    mlp = example("jit_mnist_mlp")
    mnist = mlp.load_mnist()
    jit_losses, tfl_losses, params, _ = train_both(mlp, mnist.train.images,
                                                   mnist.train.one_hot(), 200, 100)
    np.testing.assert_allclose(jit_losses, tfl_losses, rtol=1e-3)
    assert np.mean(jit_losses[-20:]) < 0.6
    test_accuracy = mlp.accuracy(params, mnist.test.images, mnist.test.one_hot())
    assert test_accuracy > 0.9
