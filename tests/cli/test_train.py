"""`tflc train` on a tiny synthetic .npz dataset: output, log, checkpoint and restore, plot,
Ctrl-C, --debug-nans, and every mistake as exit 1 (exit 2 for a malformed command line)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tflc
from tflc import cli

BLOBS = (Path(__file__).resolve().parents[1] / "data" / "blobs.tfl").read_text()


def blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return (np.eye(3, 4)[labels] * 4 + rng.normal(size=(n, 4))).astype(np.float32), labels


@pytest.fixture
def files(tmp_path, monkeypatch):
    """The model and the data in tmp_path, which is also the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blobs.tfl").write_text(BLOBS)
    arrays = {}
    for split, n, seed in (("train", 200, 0), ("validation", 50, 1), ("test", 80, 2)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = blobs(n, seed)
    np.savez(tmp_path / "blobs.npz", **arrays)
    return tmp_path


def tflc_train(capsys, *argv, data="blobs.npz"):
    code = cli.main(["train", "blobs.tfl", "--data", data, "--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_train_prints_metrics_and_writes_the_default_log(files, capsys):
    code, out, err = tflc_train(capsys, "--epochs", "2", "--batch", "20")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("epoch 1/2: loss ") and ", validation accuracy " in lines[0]
    assert lines[2].startswith("test accuracy ") and float(lines[2].split()[-1]) > 0.95
    log = sorted((files / "runs").glob("blobs-*.jsonl"))
    assert len(log) == 1 and lines[3] == f"20 steps in {lines[3].split()[3]} s; log: runs/" \
                                          f"{log[0].name}"
    kinds = [r["kind"] for r in records(log[0])]
    assert kinds == ["config"] + (["step"] * 10 + ["epoch"]) * 2 + ["test"]


def test_save_then_restore(files, capsys):
    assert tflc_train(capsys, "--epochs", "3", "--save", "out/trained.npz")[0] == 0
    trained = tflc.load("blobs.tfl")
    trained.restore("out/trained.npz")
    images, labels = blobs(200, 0)
    expected = float(trained.run("loss", x=images, y=np.eye(3)[labels]))
    # One full-batch step from the checkpoint: its logged loss is the trained model's.
    code, _, _ = tflc_train(capsys, "--restore", "out/trained.npz", "--steps", "1",
                            "--batch", "200", "--log", "again.jsonl")
    assert code == 0
    first = records("again.jsonl")[1]
    assert first["kind"] == "step" and first["loss"] == pytest.approx(expected, rel=1e-6)
    assert expected < 0.2


def test_loss_eval_and_feeds(files, capsys):
    source = BLOBS.replace("lr=0.5", "lr=rate").replace("param W", "input rate: f32[]\nparam W")
    (files / "blobs.tfl").write_text(source)
    code, out, err = tflc_train(capsys, "--steps", "4", "--feed", "rate=0.1", "--loss",
                                "accuracy", "--eval", "loss", "--eval-feed", "rate=5",
                                "--log", "l.jsonl")
    assert code == 0, err
    config = records("l.jsonl")[0]
    assert (config["loss"], config["metric"]) == ("accuracy", "loss")
    assert (config["feeds"], config["eval_feeds"]) == ({"rate": 0.1}, {"rate": 5})
    assert "validation loss" in out and "test loss" in out
    code, _, err = tflc_train(capsys, "--steps", "4")
    assert code == 1 and "step 'step' needs input 'rate'" in err \
        and "hint: give it with --feed rate=VALUE" in err


def test_no_metric_without_accuracy(files, capsys):
    (files / "blobs.tfl").write_text(BLOBS.replace("accuracy", "hits"))
    code, out, _ = tflc_train(capsys, "--epochs", "1")
    assert code == 0 and out.splitlines()[0].startswith("epoch 1/1: loss ") \
        and "validation" not in out and "test" not in out


def test_plot(files, capsys):
    pytest.importorskip("matplotlib")
    code, out, _ = tflc_train(capsys, "--epochs", "2", "--plot", "plots/curves.png")
    assert code == 0 and out.splitlines()[-1] == "plotted plots/curves.png"
    assert (files / "plots" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_fails_before_training(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    code, out, err = tflc_train(capsys, "--epochs", "1", "--plot", "c.png")
    assert code == 1 and out == "" and "--plot needs matplotlib: pip install 'tflc[plot]'" in err
    assert not (files / "runs").exists()


def test_debug_nans(files, capsys):
    (files / "blobs.tfl").write_text(BLOBS.replace("logits = x @ W + b",
                                                   "logits = log(x) @ W + b"))
    code, _, err = tflc_train(capsys, "--epochs", "1")
    assert code == 1 and "error: the loss 'loss' is nan at training step 1" in err \
        and "hint: run with --debug-nans" in err
    code, _, err = tflc_train(capsys, "--epochs", "1", "--debug-nans")
    assert code == 1 and err.startswith("blobs.tfl:6:10: error: debug_nans: `log` made NaN")
    assert "note: at training step 1 (epoch 1)" in err


def test_ctrl_c_saves_and_exits_130(files, capsys, monkeypatch):
    calls = []
    original = tflc.Model.run

    def interrupted(self, what, *args, **kwargs):
        calls.append(what)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, what, *args, **kwargs)

    monkeypatch.setattr(tflc.Model, "run", interrupted)
    code, out, err = tflc_train(capsys, "--epochs", "5", "--save", "ck.npz", "--log", "i.jsonl")
    assert code == 130 and err == "interrupted\n"
    assert out == "interrupted after 2 steps: saved ck.npz; log: i.jsonl\n"
    assert records("i.jsonl")[-1] == {"kind": "interrupted", "step": 2, "checkpoint": "ck.npz"}
    tflc.load("blobs.tfl").restore("ck.npz")


def test_a_real_sigint(files):
    """The signal itself, sent to a running `python -m tflc train`. (Its SIGINT is set back to
    the default first: a shell starts background jobs with it ignored, and Python then installs
    no handler, so the test would wait for nothing when run in the background.)"""
    process = subprocess.Popen(
        [sys.executable, "-m", "tflc", "train", "blobs.tfl", "--data", "blobs.npz",
         "--steps", "10000000", "--batch", "1", "--no-progress", "--log", "s.jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = files / "s.jsonl"
    deadline = time.monotonic() + 60
    while (not log.exists() or log.stat().st_size < 20000) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err == "interrupted\n", err
    assert out.endswith("saved s.npz; log: s.jsonl\n")
    tflc.load("blobs.tfl").restore("s.npz")


@pytest.mark.parametrize("argv, message", [
    (["--steps", "1", "--step", "stepp"], "error: unknown step 'stepp'"),
    (["--steps", "1", "--eval", "acuracy"], "hint: did you mean 'accuracy'?"),
    (["--steps", "1", "--loss", "logits"], "the loss 'logits' must be a scalar"),
    (["--steps", "1", "--feed", "x=1"], "input 'x' takes the data's images: do not feed it"),
    (["--steps", "1", "--feed", "k=1", "--feed", "k=2"], "--feed k is given twice"),
    (["--steps", "1", "--eval-feed", "k=[1,"], "--eval-feed k=[1,: not a number"),
    (["--steps", "1", "--restore", "nothing.npz"], "cannot read checkpoint nothing.npz"),
    (["--steps", "1", "--backend", "numpy", "--seed", "-1"], "seed"),
])
def test_mistakes_exit_1(files, capsys, argv, message):
    code, _, err = tflc_train(capsys, *argv)
    assert code == 1 and message in err and "Traceback" not in err


def test_data_mistakes_exit_1(files, capsys):
    code, _, err = tflc_train(capsys, "--steps", "1", data="none.npz")
    assert code == 1 and "no dataset 'none.npz': give `mnist` or the path of an .npz" in err
    np.savez(files / "odd.npz", train_images=np.ones((4, 5)), train_labels=[0, 1, 2, 0])
    code, _, err = tflc_train(capsys, "--steps", "1", data="odd.npz")
    assert code == 1 and "cannot bind the images" in err


def test_which_step(files, capsys):
    (files / "blobs.tfl").write_text(BLOBS + "train other = sgd(loss, lr=0.1)\n")
    code, _, err = tflc_train(capsys, "--steps", "1")
    assert code == 1 and "model blobs has 2 steps (step, other): name the one to train " \
                         "with --step" in err
    assert tflc_train(capsys, "--steps", "1", "--step", "other")[0] == 0
    (files / "blobs.tfl").write_text("model blobs\ninput x: f32[N, 4]\n")
    code, _, err = tflc_train(capsys, "--steps", "1")
    assert code == 1 and "model blobs has no step" in err


@pytest.mark.parametrize("argv", [[], ["--epochs", "1", "--steps", "1"], ["--steps", "0"],
                                  ["--epochs", "two"], ["--steps", "1", "--batch", "-3"]])
def test_malformed_command_lines_exit_2(files, capsys, argv):
    code, _, err = tflc_train(capsys, *argv)
    assert code == 2 and "usage: tflc train" in err
