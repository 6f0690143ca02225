"""The training loop: which loss a step minimises, binding data to inputs, batches, evaluation,
the log, Ctrl-C, and its errors; on a tiny synthetic dataset."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import tflc
from tflc import Error
from tflc.ir.types import TensorType
from tflc.runtime.datasets import Dataset, Split
from tflc.runtime.training import TrainConfig, bind, evaluate, loss_of, train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BLOBS = (Path(__file__).resolve().parents[1] / "data" / "blobs.tfl").read_text()


def blobs(n: int, seed: int) -> Split:
    """Three well-separated Gaussian blobs in 4 dimensions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = np.eye(3, 4)[labels] * 4 + rng.normal(size=(n, 4))
    return Split(images.astype(np.float32), labels)


DATA = Dataset(blobs(250, 0), blobs(60, 1), blobs(90, 2))


def run(tmp_path, source=BLOBS, data=DATA, **options):
    model = tflc.loads(source, "blobs.tfl")
    config = TrainConfig(**{"step": "step", "log": str(tmp_path / "log.jsonl"),
                            "progress": False, **options})
    return model, train(model, data, config)


def records(tmp_path, name="log.jsonl"):
    return [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]


# -- the loss a step minimises -------------------------------------------------------------------

@pytest.mark.parametrize("example, step, loss", [
    ("mnist_mlp", "step", "cross_entropy"), ("mnist_relu", "train_step", "loss"),
    ("mnist_dropout", "step", "loss"), ("logistic_regression", "step", "loss")])
def test_the_loss_of_the_examples(example, step, loss):
    assert loss_of(tflc.load(EXAMPLES / f"{example}.tfl").module, step) == loss


@pytest.mark.parametrize("source", [
    "param w: f32[] = 1.0\nstep s {\n  w <- w * 2.0\n}\n",                      # no gradient
    "param w: f32[] = 1.0\ntrain s = sgd(w * w, lr=0.1)\n",                    # unnamed loss
    ("param w: f32[] = 1.0\na = w * w\nb = w + w\nstep s {\n"
     "  w <- w - grad(a, w) - grad(b, w)\n}\n"),                               # two losses
])
def test_no_loss_when_there_is_no_single_named_one(source):
    assert loss_of(tflc.loads(source).module, "s") is None


def test_the_loss_of_a_gradient_of_a_gradient_is_the_outer_one():
    source = ("param w: f32[] = 1.0\nloss = w * w * w\nslope = grad(loss, w)\n"
              "penalty = slope * slope\nstep s {\n  w <- w - 0.1 * grad(penalty, w)\n}\n")
    assert loss_of(tflc.loads(source).module, "s") == "penalty"


# -- binding -------------------------------------------------------------------------------------

def types(**inputs):
    return {name: TensorType(dtype, tuple(shape)) for name, (dtype, shape) in inputs.items()}


def test_binding_by_type():
    binding = bind(types(keep=("f32", []), pixels=("f32", ["B", 4]), target=("f32", ["B", 3])),
                   DATA)
    assert (binding.images, binding.labels, binding.one_hot) == ("pixels", "target", 3)
    arrays = binding.arrays(DATA.test)
    np.testing.assert_array_equal(arrays["target"], np.eye(3)[DATA.test.labels])
    indices = bind(types(x=("f32", ["N", 4]), classes=("i32", ["N"])), DATA)
    assert (indices.labels, indices.one_hot) == ("classes", None)
    np.testing.assert_array_equal(indices.arrays(DATA.test)["classes"], DATA.test.labels)


def test_names_decide_between_inputs_of_one_type():
    binding = bind(types(noise=("f32", ["N", 4]), x=("f32", ["N", 4]), w=("f32", ["N", 3]),
                         y=("f32", ["N", 3])), DATA)
    assert (binding.images, binding.labels) == ("x", "y")


@pytest.mark.parametrize("inputs, message", [
    ({"x": ("f32", ["N", 5]), "y": ("f32", ["N", 3])},
     ("cannot bind the images: the model has no input that takes them (a float input of shape "
      "[B, 4])")),
    ({"x": ("i32", ["N", 4]), "y": ("f32", ["N", 3])}, "cannot bind the images"),
    ({"x": ("f32", ["N", 4]), "y": ("f32", ["M", 3])}, "cannot bind the labels"),
    ({"x": ("f32", ["N", 4]), "y": ("f32", ["N", "C"])}, "cannot bind the labels"),
    ({"a": ("f32", ["N", 4]), "b": ("f32", ["N", 4]), "y": ("f32", ["N", 3])},
     "cannot bind the images: inputs a, b all fit"),
    ({"x": ("f32", ["N", 4]), "y": ("f32", ["N", 2])},
     "input 'y' takes one-hot labels of 2 classes, but the data has labels up to 2"),
])
def test_binding_errors(inputs, message):
    with pytest.raises(Error, match=re.escape(message)):
        bind(types(**inputs), DATA)


# -- training ------------------------------------------------------------------------------------

def test_training_learns_and_logs_everything(tmp_path):
    model, results = run(tmp_path, epochs=3, batch=32, metric="accuracy")
    assert results["steps"] == 3 * 8 and results["test"] > 0.95 and results["validation"] > 0.95
    log = records(tmp_path)
    assert [r["kind"] for r in log] == ["config"] + (["step"] * 8 + ["epoch"]) * 3 + ["test"]
    assert log[0]["loss"] == "loss" and log[0]["steps"] == 24 and log[0]["examples"] == {
        "train": 250, "validation": 60, "test": 90}
    steps = [r for r in log if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 25))
    assert steps[0]["loss"] == pytest.approx(np.log(3))  # zero weights: uniform softmax
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert epochs[0]["train_loss"] == pytest.approx(np.mean([r["loss"] for r in steps[:8]]))
    assert epochs[-1]["validation_accuracy"] == results["validation"]
    assert log[-1]["test_accuracy"] == results["test"] == pytest.approx(
        evaluate(model, "accuracy", {"x": DATA.test.images, "y": DATA.test.one_hot(3)}, {}))


def test_the_same_seed_trains_the_same(tmp_path):
    first, _ = run(tmp_path, epochs=2, batch=50, seed=7)
    again, _ = run(tmp_path, epochs=2, batch=50, seed=7)
    other, _ = run(tmp_path, epochs=2, batch=50, seed=8)
    np.testing.assert_array_equal(first.params["W"], again.params["W"])
    assert not np.array_equal(first.params["W"], other.params["W"])


def test_steps_stop_inside_an_epoch_which_is_then_evaluated(tmp_path):
    _, results = run(tmp_path, steps=10, batch=100, metric="accuracy")  # epochs of 3 steps
    log = records(tmp_path)
    assert results["steps"] == 10
    assert [(r["epoch"], r["step"]) for r in log if r["kind"] == "epoch"] == [
        (1, 3), (2, 6), (3, 9), (4, 10)]


def test_a_batch_as_large_as_the_data_is_the_whole_split_in_order(tmp_path):
    model, _ = run(tmp_path, steps=2, batch=1000)
    reference = tflc.loads(BLOBS)
    for _ in range(2):
        reference.run("step", x=DATA.train.images, y=DATA.train.one_hot(3))
    np.testing.assert_array_equal(model.params["W"], reference.params["W"])


def test_evaluation_weighs_batches_by_size():
    model = tflc.loads(BLOBS)
    arrays = {"x": DATA.test.images, "y": DATA.test.one_hot(3)}
    whole = float(model.run("loss", **arrays))
    assert evaluate(model, "loss", arrays, {}, batch=40) == pytest.approx(whole, rel=1e-6)


def test_labels_as_indices_and_feeds_for_training_and_evaluation(tmp_path):
    source = BLOBS.replace("input y: f32[N, 3]", "input y: i64[N]\ninput keep: f32[]").replace(
        "labels=y, logits=logits", "labels=one_hot(y, 3), logits=logits * keep").replace(
        "argmax(y, axis=1)", "y")
    feeds = {"keep": 1.0}
    _, results = run(tmp_path, source, epochs=2, metric="accuracy", feeds=feeds)
    assert results["test"] > 0.95
    _, results = run(tmp_path, source, epochs=2, metric="loss", feeds=feeds,
                     eval_feeds={"keep": 0.0})
    assert records(tmp_path)[0]["eval_feeds"] == {"keep": 0.0}
    assert results["loss"] < 0.5  # trained with keep 1, evaluated with keep 0: uniform softmax
    assert results["validation"] == pytest.approx(np.log(3)) == results["test"]


@pytest.mark.parametrize("options, message", [
    ({"step": "stp"}, "unknown step 'stp'"),
    ({"loss": "logits"}, "the loss 'logits' must be a scalar, but it is f32[N,3]"),
    ({"metric": "logits"}, "the metric 'logits' must be a scalar"),
    ({"metric": "acuracy"}, "unknown name 'acuracy'"),
    ({"feeds": {"x": 1.0}}, "input 'x' takes the data's images: do not feed it"),
    ({"eval_feeds": {"y": 1.0}}, "input 'y' takes the data's labels: do not feed it"),
])
def test_mistakes_are_found_before_training(tmp_path, options, message):
    with pytest.raises(Error, match=re.escape(message)):
        run(tmp_path, **options)
    assert not (tmp_path / "log.jsonl").exists()


@pytest.mark.parametrize("options", [{"epochs": 0}, {"steps": -1}, {"batch": 2.5}])
def test_a_plan_of_whole_numbers(options):
    with pytest.raises(Error, match=f"{next(iter(options))} must be a whole number >= 1"):
        TrainConfig("step", **options)


def test_an_input_the_data_does_not_give():
    source = BLOBS.replace("lr=0.5", "lr=rate").replace("param W", "input rate: f32[]\nparam W")
    with pytest.raises(Error) as error:
        run(Path("unused"), source)
    assert error.value.message == ("step 'step' needs input 'rate', which the data does not "
                                   "give")
    assert error.value.hint == "give it with --feed rate=VALUE"


def test_a_step_without_a_known_loss_needs_one_named():
    source = BLOBS.replace("sgd(loss,", "sgd(loss * 2.0,")
    with pytest.raises(Error, match="cannot tell which loss step 'step' minimises") as error:
        run(Path("unused"), source)
    assert error.value.hint == "name the value to report with --loss NAME"


def test_a_nan_loss_stops_training(tmp_path):
    data = Dataset(Split(DATA.train.images * 1e30, DATA.train.labels), None, None)
    with pytest.raises(Error) as error:
        run(tmp_path, data=data, epochs=5)
    assert error.value.message.startswith("the loss 'loss' is nan at training step 2 (epoch 1)")
    assert "--debug-nans" in error.value.hint


def test_errors_while_training_say_which_step(tmp_path):
    model = tflc.loads(BLOBS, "blobs.tfl", debug_nans=True)
    data = Dataset(Split(DATA.train.images * 1e30, DATA.train.labels), None, None)
    with pytest.raises(Error) as error:
        train(model, data, TrainConfig("step", log=str(tmp_path / "log.jsonl"), progress=False))
    assert "debug_nans" in error.value.message and error.value.loc.file == "blobs.tfl"
    assert error.value.notes[-1] == ("at training step 2 (epoch 1)", None)


def test_ctrl_c_saves_a_checkpoint_and_goes_on(tmp_path, monkeypatch):
    model = tflc.loads(BLOBS)
    steps = []
    original = model.run

    def interrupted_at_the_fourth_step(what, *args, **kwargs):
        if what == "step":
            steps.append(1)
            if len(steps) == 4:
                raise KeyboardInterrupt
        return original(what, *args, **kwargs)

    monkeypatch.setattr(model, "run", interrupted_at_the_fourth_step)
    log = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        train(model, DATA, TrainConfig("step", epochs=2, batch=10, log=str(log),
                                       progress=False))
    saved = tmp_path / "run.npz"  # no --save: next to the log
    restored = tflc.loads(BLOBS)
    restored.restore(saved)
    np.testing.assert_array_equal(restored.params["W"], model.params["W"])
    assert records(tmp_path, "run.jsonl")[-1] == {"kind": "interrupted", "step": 3,
                                                  "checkpoint": str(saved)}


def test_the_default_log_goes_to_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        train(tflc.loads(BLOBS), DATA, TrainConfig("step", steps=1, progress=False))
    logs = sorted((tmp_path / "runs").iterdir())
    assert len(logs) == 2 and all(p.name.startswith("blobs-") for p in logs)
    assert [p.suffix for p in logs] == [".jsonl", ".jsonl"]
