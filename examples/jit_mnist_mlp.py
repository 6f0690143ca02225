"""The three-layer MNIST network from scratch in Python, compiled with @tflc.jit.

The same model as examples/mnist_mlp.tfl: 784 -> 300 relu -> 10 softmax, the tutorial's clipped
cross-entropy, plain gradient descent with learning rate 0.5 on batches of 100. The params are a
dict of NumPy arrays; `tflc.value_and_grad` differentiates the loss with respect to all of them,
and one jitted function computes the loss, the gradients and the updated params.

    python examples/jit_mnist_mlp.py [STEPS]
"""

import sys

import numpy as np

import tflc
from tflc.runtime.datasets import load_mnist

SHAPES = {"W1": (784, 300), "b1": (300,), "W2": (300, 10), "b2": (10,)}


def init_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0.0, 0.03, shape).astype(np.float32)
            for name, shape in SHAPES.items()}


def predict(params, x):
    hidden_out = tflc.relu(x @ params["W1"] + params["b1"])
    return tflc.softmax(hidden_out @ params["W2"] + params["b2"])


def cross_entropy(params, x, y):
    y_clipped = tflc.clip(predict(params, x), 1e-10, 0.9999999)
    return -tflc.mean(tflc.sum(y * tflc.log(y_clipped) + (1 - y) * tflc.log(1 - y_clipped),
                               axis=1))


@tflc.jit
def train_step(params, x, y, lr):
    loss, grads = tflc.value_and_grad(cross_entropy)(params, x, y)
    return loss, {name: params[name] - lr * grads[name] for name in params}


@tflc.jit
def accuracy(params, x, y):
    correct = tflc.argmax(y, axis=1) == tflc.argmax(predict(params, x), axis=1)
    return tflc.mean(tflc.cast(correct, np.float32))


def batches(split, batch_size: int, seed: int = 0):
    """Shuffled batches of (images, one-hot labels), epoch after epoch."""
    rng = np.random.default_rng(seed)
    labels = split.one_hot()
    while True:
        order = rng.permutation(len(split))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chosen = order[start:start + batch_size]
            yield split.images[chosen], labels[chosen]


def train(params, data, steps: int, lr: float = 0.5, echo=print) -> tuple[dict, list]:
    losses = []
    for step, (x, y) in zip(range(steps), data):
        loss, params = train_step(params, x, y, lr)
        losses.append(float(loss))
        if step % 50 == 0 or step == steps - 1:
            echo(f"step {step:4d}  loss {float(loss):.4f}")
    return params, losses


def main(steps: int = 300):
    mnist = load_mnist()
    params, _ = train(init_params(), batches(mnist.train, 100), steps)
    test_accuracy = accuracy(params, mnist.test.images, mnist.test.one_hot())
    print(f"test accuracy after {steps} steps: {float(test_accuracy):.4f}")
    print(f"compiles: train_step {train_step.stats()['compiles']}, "
          f"accuracy {accuracy.stats()['compiles']}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
