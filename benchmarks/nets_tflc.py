"""The tutorial networks as tflc runs them: the .tfl files, compiled by a backend."""

from __future__ import annotations

import numpy as np
import tflc
from benchlib import NETS, Net


class Trainer:
    def __init__(self, net: Net, backend: str):
        self.net = net
        self.model = tflc.load(net.path, backend=backend)

    @staticmethod
    def prepare(batch):
        return batch

    def step(self, batch) -> None:
        self.model.run(self.net.step, **batch)

    def values(self) -> dict[str, np.ndarray]:
        return self.model.params


def accuracy(backend: str):
    """mnist_mlp's accuracy as a function of one batch."""
    model = tflc.load(NETS["mnist_mlp"].path, backend=backend)
    return lambda batch: model.run("accuracy", x=batch["x"], y=batch["y"])
