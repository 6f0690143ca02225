"""The tutorial networks in JAX (CPU): the whole training step (loss, its gradient, the update)
as one jitted function, params and optimizer state donated so XLA may update them in place."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from benchlib import ADAM, Net


def mlp_probabilities(p, x):
    return jax.nn.softmax(jax.nn.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], axis=1)


def softmax_cross_entropy(y, logits):
    return jnp.mean(-jnp.sum(y * jax.nn.log_softmax(logits, axis=1), axis=1))


def mlp_loss(p, batch, key):
    clipped = jnp.clip(mlp_probabilities(p, batch["x"]), 1e-10, 0.9999999)
    y = batch["y"]
    return -jnp.mean(jnp.sum(y * jnp.log(clipped) + (1 - y) * jnp.log(1 - clipped), axis=1))


def logistic_loss(p, batch, key):
    return softmax_cross_entropy(batch["y"], batch["x"] @ p["W"] + p["b"])


def relu_loss(p, batch, key):
    h1 = jax.nn.relu(batch["x"] @ p["W1"] + p["b1"])
    h2 = jax.nn.relu(h1 @ p["W2"] + p["b2"])
    logits = h2 @ p["W3"] + p["b3"]
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=1),
                                 batch["labels"][:, None], axis=1)
    return -jnp.mean(picked)


def dropout(x, keep_prob, key):
    return jnp.where(jax.random.uniform(key, x.shape) < keep_prob, x / keep_prob, 0)


def dropout_loss(p, batch, key):
    key1, key2 = jax.random.split(key)
    keep = batch["keep_prob"]
    h1 = dropout(jax.nn.softmax(batch["x"] @ p["fc1.W"] + p["fc1.b"], axis=1), keep, key1)
    h2 = dropout(jax.nn.relu(h1 @ p["fc2.W"] + p["fc2.b"]), keep, key2)
    return softmax_cross_entropy(batch["y"], h2 @ p["out.W"] + p["out.b"])


LOSSES = {"mnist_mlp": mlp_loss, "logistic_regression": logistic_loss,
          "mnist_relu": relu_loss, "mnist_dropout": dropout_loss}


def sgd_update(lr, params, state, grads):
    return jax.tree.map(lambda p, g: p - lr * g, params, grads), state


def adam_update(lr, params, state, grads):
    """TensorFlow's Adam, as tflc's (eps added to sqrt(v))."""
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
    t = state["t"].astype(jnp.float32)
    lr_t = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), state["m"], grads)
    v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), state["v"], grads)
    params = jax.tree.map(lambda p, m, v: p - m * lr_t / (jnp.sqrt(v) + eps), params, m, v)
    return params, {**state, "m": m, "v": v}


def training_step(loss_fn, update, lr, params, state, batch, key):
    """state["t"] counts the steps, for Adam's bias correction and a fresh dropout mask."""
    state = {**state, "t": state["t"] + 1}
    grads = jax.grad(loss_fn)(params, batch, jax.random.fold_in(key, state["t"]))
    return update(lr, params, state, grads)


def prepare(batch) -> dict:
    return {k: jnp.asarray(v) for k, v in batch.items()}


class Trainer:
    def __init__(self, net: Net, params: dict[str, np.ndarray]):
        update = sgd_update if net.optimizer == "sgd" else adam_update
        step = functools.partial(training_step, LOSSES[net.name], update, net.lr)
        self.step_fn = jax.jit(step, donate_argnums=(0, 1))
        self.params = {name: jnp.asarray(value) for name, value in params.items()}
        self.state = {"t": jnp.zeros((), jnp.int32)}
        if net.optimizer == "adam":  # m and v in buffers of their own: both are donated
            self.state.update({slot: {name: jnp.zeros_like(value) for name, value in params.items()}
                               for slot in ("m", "v")})
        self.key = jax.random.key(0)

    prepare = staticmethod(prepare)

    def step(self, batch) -> None:
        self.params, self.state = self.step_fn(self.params, self.state, batch, self.key)
        jax.block_until_ready(self.params)

    def values(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(value) for name, value in self.params.items()}


def accuracy(params: dict[str, np.ndarray]):
    """mnist_mlp's accuracy as a function of one prepared batch."""
    p = {name: jnp.asarray(value) for name, value in params.items()}

    @jax.jit
    def accuracy(p, x, y):
        return jnp.mean(jnp.argmax(y, 1) == jnp.argmax(mlp_probabilities(p, x), 1))

    return lambda batch: accuracy(p, batch["x"], batch["y"]).block_until_ready()
