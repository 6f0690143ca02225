"""Linear regression by gradient descent, written in Python and compiled with @tflc.jit.

The tutorial's model: fit y = m * x + b to noisy points, starting from m = 0.44, b = 0.87, by
gradient descent on m and b. `tflc.value_and_grad` gives the loss and its gradients; the whole
step is one compiled function. At the end the fit is compared with the closed-form least-squares
line of examples/linear_regression.tfl, which gradient descent converges to.

    python examples/jit_linear_regression.py
"""

import os

import numpy as np

import tflc

EXAMPLES = os.path.dirname(os.path.abspath(__file__))


def loss(m, b, x, y):
    return tflc.mean((m * x + b - y) ** 2)


@tflc.jit
def train_step(m, b, x, y, lr):
    value, (dm, db) = tflc.value_and_grad(loss, argnums=(0, 1))(m, b, x, y)
    return value, m - lr * dm, b - lr * db


def make_data(seed: int = 0, n: int = 10):
    """Points near the line y = x, as in the tutorial."""
    rng = np.random.default_rng(seed)
    x = (np.linspace(0, 10, n) + rng.uniform(-1.5, 1.5, n)).astype(np.float32)
    y = (np.linspace(0, 10, n) + rng.uniform(-1.5, 1.5, n)).astype(np.float32)
    return x, y


def train(x, y, steps: int = 500, lr: float = 0.02, echo=print):
    """Gradient descent from the tutorial's starting point; returns m, b and the losses."""
    m, b = np.array(0.44, np.float32), np.array(0.87, np.float32)
    losses = []
    for step in range(steps):
        value, m, b = train_step(m, b, x, y, lr)
        losses.append(float(value))
        if step % (steps // 10) == 0 or step == steps - 1:
            echo(f"step {step:5d}  loss {float(value):.6f}  m {float(m):.4f}  b {float(b):.4f}")
    return float(m), float(b), losses


def main():
    x, y = make_data()
    m, b, _ = train(x, y)
    closed_form = tflc.load(os.path.join(EXAMPLES, "linear_regression.tfl"))
    slope, intercept = closed_form.run(["slope", "intercept"], x=x, y=y)
    print(f"gradient descent: y = {m:.4f} x + {b:.4f}")
    print(f"least squares (linear_regression.tfl): y = {float(slope):.4f} x + "
          f"{float(intercept):.4f}")
    print(f"compiles: {train_step.stats()['compiles']}")


if __name__ == "__main__":
    main()
