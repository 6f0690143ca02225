"""The tutorial networks in NumPy, forward and backward written by hand: what a NumPy user
would write without a framework. Gradients follow the .tfl files' losses exactly."""

from __future__ import annotations

import numpy as np
from benchlib import ADAM, Net

CLIP_LOW, CLIP_HIGH = np.float32(1e-10), np.float32(0.9999999)  # mnist_mlp's clip


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(s: np.ndarray, ds: np.ndarray) -> np.ndarray:
    return s * (ds - (ds * s).sum(axis=1, keepdims=True))


def mlp_forward(p, x):
    z1 = x @ p["W1"] + p["b1"]
    h = np.maximum(z1, 0)
    return z1, h, softmax(h @ p["W2"] + p["b2"])


def mlp_accuracy(p, x, y):
    return np.mean(np.argmax(y, axis=1) == np.argmax(mlp_forward(p, x)[2], axis=1),
                   dtype=np.float32)


def mlp_grads(p, batch, rng):
    """784-300-10, the clipped cross-entropy of the first tutorial."""
    x, y = batch["x"], batch["y"]
    z1, h, prob = mlp_forward(p, x)
    clipped = np.clip(prob, CLIP_LOW, CLIP_HIGH)
    d_clipped = (1 - y) / (1 - clipped) - y / clipped
    d_prob = np.where((prob >= CLIP_LOW) & (prob <= CLIP_HIGH), d_clipped / len(x), 0)
    dz2 = softmax_backward(prob, d_prob)
    dz1 = np.where(z1 > 0, dz2 @ p["W2"].T, 0)
    return {"W1": x.T @ dz1, "b1": dz1.sum(axis=0), "W2": h.T @ dz2, "b2": dz2.sum(axis=0)}


def logistic_grads(p, batch, rng):
    x, y = batch["x"], batch["y"]
    dz = (softmax(x @ p["W"] + p["b"]) - y) / len(x)
    return {"W": x.T @ dz, "b": dz.sum(axis=0)}


def relu_grads(p, batch, rng):
    """784-50-30-10 relu, sparse softmax cross-entropy."""
    x, labels = batch["x"], batch["labels"]
    z1 = x @ p["W1"] + p["b1"]
    h1 = np.maximum(z1, 0)
    z2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(z2, 0)
    dz3 = softmax(h2 @ p["W3"] + p["b3"])
    dz3[np.arange(len(x)), labels] -= 1
    dz3 /= len(x)
    dz2 = np.where(z2 > 0, dz3 @ p["W3"].T, 0)
    dz1 = np.where(z1 > 0, dz2 @ p["W2"].T, 0)
    return {"W1": x.T @ dz1, "b1": dz1.sum(axis=0), "W2": h1.T @ dz2, "b2": dz2.sum(axis=0),
            "W3": h2.T @ dz3, "b3": dz3.sum(axis=0)}


def dropout_grads(p, batch, rng):
    """784-500 softmax, dropout, 100 relu, dropout, 10; softmax cross-entropy."""
    x, y, keep = batch["x"], batch["y"], batch["keep_prob"]
    s1 = softmax(x @ p["fc1.W"] + p["fc1.b"])
    scale1 = (rng.random(s1.shape, dtype=np.float32) < keep) / np.float32(keep)
    h1 = s1 * scale1
    z2 = h1 @ p["fc2.W"] + p["fc2.b"]
    scale2 = (rng.random(z2.shape, dtype=np.float32) < keep) / np.float32(keep)
    h2 = np.maximum(z2, 0) * scale2
    dz3 = (softmax(h2 @ p["out.W"] + p["out.b"]) - y) / len(x)
    dz2 = np.where(z2 > 0, (dz3 @ p["out.W"].T) * scale2, 0)
    dz1 = softmax_backward(s1, (dz2 @ p["fc2.W"].T) * scale1)
    return {"fc1.W": x.T @ dz1, "fc1.b": dz1.sum(axis=0), "fc2.W": h1.T @ dz2,
            "fc2.b": dz2.sum(axis=0), "out.W": h2.T @ dz3, "out.b": dz3.sum(axis=0)}


GRADS = {"mnist_mlp": mlp_grads, "logistic_regression": logistic_grads,
         "mnist_relu": relu_grads, "mnist_dropout": dropout_grads}


class Trainer:
    """Params updated in place by plain gradient descent or TensorFlow's Adam."""

    def __init__(self, net: Net, params: dict[str, np.ndarray]):
        self.net = net
        self.params = {name: value.copy() for name, value in params.items()}
        self.grads = GRADS[net.name]
        self.rng = np.random.default_rng(0)
        self.m = {name: np.zeros_like(value) for name, value in params.items()}
        self.v = {name: np.zeros_like(value) for name, value in params.items()}
        self.t = 0

    def prepare(self, batch):
        return batch

    def step(self, batch) -> None:
        grads = self.grads(self.params, batch, self.rng)
        if self.net.optimizer == "sgd":
            for name, grad in grads.items():
                self.params[name] -= np.float32(self.net.lr) * grad
            return
        self.t += 1
        b1, b2, eps = ADAM["beta1"], ADAM["beta2"], np.float32(ADAM["eps"])
        lr_t = np.float32(self.net.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))
        for name, grad in grads.items():
            m, v = self.m[name], self.v[name]
            m += (grad - m) * np.float32(1 - b1)
            v += (grad * grad - v) * np.float32(1 - b2)
            self.params[name] -= m * lr_t / (np.sqrt(v) + eps)

    def values(self) -> dict[str, np.ndarray]:
        return self.params


def accuracy(params: dict[str, np.ndarray]):
    """mnist_mlp's accuracy as a function of one batch's x and y."""
    return lambda batch: mlp_accuracy(params, batch["x"], batch["y"])
