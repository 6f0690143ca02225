"""Checkpoints: round trip, mismatches named, and atomic writes."""

import os
import re

import numpy as np
import pytest

from tflc import Error, Model
from tflc.ir.parser import parse_module


def test_round_trip_restores_params_state_and_run_counter(toy, model, tmp_path):
    model.run("swap")
    model.run("add", n=4)
    model.run("run")
    path = tmp_path / "toy.ckpt.npz"
    model.save(path)
    fresh = Model(toy, seed=5)
    fresh.restore(path)
    for name in ("W", "b"):
        np.testing.assert_array_equal(fresh.params[name], model.params[name])
        assert fresh.params[name].dtype == np.float32
    assert fresh.state["count"] == 4 and fresh.run_count == 1
    assert sorted(np.load(path).files) == ["W", "__run", "b", "count"]
    assert os.listdir(tmp_path) == ["toy.ckpt.npz"]


def other_model(*decls):
    text = "model other\n" + "\n".join(decls) + "\n\nfunc @model() -> () {\n  return\n}\n"
    return Model(parse_module(text))


@pytest.mark.parametrize("decls, message", [
    (["param A: f32[2] = zeros()"], "the model declares no 'B'"),
    (["param A: f32[2] = zeros()", "param B: f32[3] = zeros()", "state C: i32[] = zeros()"],
     "it lacks 'C'"),
    (["param A: f32[2] = zeros()", "param B: f64[3] = zeros()"],
     "'B' is f32[3] in the checkpoint, but the model declares f64[3]"),
    (["param A: f32[2,1] = zeros()", "param B: f32[3] = zeros()"],
     "'A' is f32[2] in the checkpoint, but the model declares f32[2,1]"),
])
def test_mismatches_are_errors_that_name_the_entry_and_change_nothing(tmp_path, decls, message):
    path = tmp_path / "c.npz"
    other_model("param A: f32[2] = ones()", "param B: f32[3] = ones()").save(path)
    target = other_model(*decls)
    before = {name: value.copy() for name, value in target.params.items()}
    with pytest.raises(Error, match=re.escape(f"checkpoint {path} does not fit the model: ")
                       + ".*" + re.escape(message)):
        target.restore(path)
    for name, value in before.items():
        np.testing.assert_array_equal(target.params[name], value)


def test_unreadable_checkpoints(tmp_path):
    model = other_model("param A: f32[2] = ones()")
    with pytest.raises(Error, match="cannot read checkpoint .*missing.npz: No such file"):
        model.restore(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(Error, match="junk.npz is not a checkpoint"):
        model.restore(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(Error, match="one.npy is not a checkpoint: it holds a single array"):
        model.restore(tmp_path / "one.npy")


def test_a_failed_save_leaves_the_old_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    model = other_model("param A: f32[2] = ones()", "param B: f32[3] = ones()")
    path = tmp_path / "c.npz"
    model.save(path)
    original = path.read_bytes()
    real_write, written = np.lib.format.write_array, []

    def write_then_fail(member, array, allow_pickle):  # the disk fills up after one entry
        if written:
            raise OSError(28, "No space left on device")
        written.append(array)
        real_write(member, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(Error, match="cannot write checkpoint .*c.npz: No space left on device"):
        model.save(path)
    assert os.listdir(tmp_path) == ["c.npz"] and path.read_bytes() == original


def test_saving_into_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(Error, match="cannot write checkpoint .*No such file or directory"):
        other_model("param A: f32[2] = ones()").save(tmp_path / "no" / "c.npz")
