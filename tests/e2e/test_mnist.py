"""The tutorials' models learn the real MNIST: a short run by default; with -m slow, the full runs
of docs/training.md's must-reach table (the tutorials' settings), on the NumPy backend (the
issue's reference) and on the default llvm backend."""

from pathlib import Path

import pytest

import tflc
from tflc.runtime.datasets import load_mnist
from tflc.runtime.training import TrainConfig, train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_a_short_run_learns(mnist, tmp_path):
    model = tflc.load(EXAMPLES / "mnist_mlp.tfl")
    results = train(model, mnist, TrainConfig("step", steps=300, batch=100, metric="accuracy",
                                              log=str(tmp_path / "log.jsonl"), progress=False))
    assert results["test"] > 0.85


# (example, TrainConfig options, must reach); the commands in scripts/train_all.sh
FULL_RUNS = {
    "mnist_mlp": ({"step": "step", "epochs": 10, "batch": 100}, 0.975),
    "mnist_dropout": ({"step": "step", "steps": 20000, "batch": 100, "feeds": {"keep_prob": 0.2},
                       "eval_feeds": {"keep_prob": 1.0}}, 0.955),
    "mnist_relu": ({"step": "train_step", "steps": 5000, "batch": 100}, 0.960),
    "logistic_regression": ({"step": "step", "steps": 1000, "batch": 55000}, 0.905),
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("example", FULL_RUNS)
def test_the_tutorials_results(mnist, tmp_path, example, backend):
    options, must_reach = FULL_RUNS[example]
    model = tflc.load(EXAMPLES / f"{example}.tfl", backend=backend)
    results = train(model, mnist, TrainConfig(**options, metric="accuracy", progress=False,
                                              log=str(tmp_path / "log.jsonl")))
    assert results["test"] >= must_reach
