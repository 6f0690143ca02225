"""The tutorial networks in PyTorch (CPU), eager or through torch.compile: autograd for the
gradients, the update as foreach ops (what torch.optim does with foreach=True)."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import ADAM, Net


def mlp_probabilities(p, x):
    return torch.softmax(torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], dim=1)


def mlp_loss(p, batch):
    clipped = torch.clamp(mlp_probabilities(p, batch["x"]), 1e-10, 0.9999999)
    y = batch["y"]
    return -torch.mean(torch.sum(y * torch.log(clipped) + (1 - y) * torch.log(1 - clipped), 1))


def logistic_loss(p, batch):
    return F.cross_entropy(batch["x"] @ p["W"] + p["b"], batch["y"])


def relu_loss(p, batch):
    h1 = torch.relu(batch["x"] @ p["W1"] + p["b1"])
    h2 = torch.relu(h1 @ p["W2"] + p["b2"])
    return F.cross_entropy(h2 @ p["W3"] + p["b3"], batch["labels"])


def dropout_loss(p, batch):
    drop = 1 - batch["keep_prob"]
    h1 = F.dropout(torch.softmax(batch["x"] @ p["fc1.W"] + p["fc1.b"], dim=1), drop)
    h2 = F.dropout(torch.relu(h1 @ p["fc2.W"] + p["fc2.b"]), drop)
    return F.cross_entropy(h2 @ p["out.W"] + p["out.b"], batch["y"])


LOSSES = {"mnist_mlp": mlp_loss, "logistic_regression": logistic_loss,
          "mnist_relu": relu_loss, "mnist_dropout": dropout_loss}


def sgd_step(loss_fn, lr, names, params, batch):
    grads = torch.autograd.grad(loss_fn(dict(zip(names, params)), batch), params)
    with torch.no_grad():
        torch._foreach_add_(params, grads, alpha=-lr)


def adam_step(loss_fn, names, params, m, v, lr_t, batch):
    """TensorFlow's Adam, as tflc's: eps is added to sqrt(v), not to its bias-corrected value,
    so the results can be compared. lr_t (the bias-corrected rate) is a tensor, so that a
    compiled step is not specialised to one step count."""
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
    grads = torch.autograd.grad(loss_fn(dict(zip(names, params)), batch), params)
    with torch.no_grad():
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1 - b2)
        denominators = torch._foreach_add(torch._foreach_sqrt(v), eps)
        torch._foreach_sub_(params, torch._foreach_div(torch._foreach_mul(m, lr_t),
                                                       denominators))


def prepare(batch) -> dict:
    """A batch as tensors sharing the arrays' memory; keep_prob as a float (F.dropout's p)."""
    return {k: float(v) if k == "keep_prob" else torch.from_numpy(v) for k, v in batch.items()}


class Trainer:
    def __init__(self, net: Net, params: dict[str, np.ndarray], compiled: bool):
        self.net = net
        names = list(params)
        tensors = [torch.tensor(value, requires_grad=True) for value in params.values()]
        self.params = dict(zip(names, tensors))
        if net.optimizer == "sgd":
            step = functools.partial(sgd_step, LOSSES[net.name], net.lr, names)
            self.state = (tensors,)
        else:
            step = functools.partial(adam_step, LOSSES[net.name], names)
            self.lr_t, self.t = torch.zeros(()), 0
            self.state = (tensors, [torch.zeros_like(p) for p in tensors],
                          [torch.zeros_like(p) for p in tensors], self.lr_t)
        self.step_fn = torch.compile(step) if compiled else step

    prepare = staticmethod(prepare)

    def step(self, batch) -> None:
        if self.net.optimizer == "adam":
            self.t += 1
            b1, b2 = ADAM["beta1"], ADAM["beta2"]
            self.lr_t.fill_(self.net.lr * (1 - b2 ** self.t) ** 0.5 / (1 - b1 ** self.t))
        self.step_fn(*self.state, batch)

    def values(self) -> dict[str, np.ndarray]:
        return {name: p.detach().numpy() for name, p in self.params.items()}


def accuracy(params: dict[str, np.ndarray], compiled: bool):
    """mnist_mlp's accuracy as a function of one prepared batch."""
    p = {name: torch.from_numpy(value) for name, value in params.items()}

    def accuracy(x, y):
        return torch.mean((torch.argmax(y, 1) == torch.argmax(mlp_probabilities(p, x), 1))
                          .float())

    fn = torch.compile(accuracy) if compiled else accuracy

    def run(batch):
        with torch.inference_mode():
            return fn(batch["x"], batch["y"])
    return run
