"""Model.run's forms, steps, the compile cache, params views and the run counter."""

from pathlib import Path

import numpy as np
import pytest

import tflc
from tflc import Error, Model
from tflc.runtime.backends import DEFAULT_BACKEND
from tflc.runtime.model import counter_value, unaliased

X = np.arange(6, dtype=np.float32).reshape(2, 3)
Y = np.ones((2, 2), np.float32)


def test_fetch_one_name_or_a_list(model):
    W, b = model.params["W"], model.params["b"]
    h = model.run("h", x=X)
    assert isinstance(h, np.ndarray) and h.dtype == np.float32
    np.testing.assert_allclose(h, X @ W + b, rtol=1e-6)
    h2, loss = model.run(["h", "loss"], x=X, y=Y)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_allclose(loss, ((h - Y) ** 2).sum(), rtol=1e-5)
    assert loss.shape == () and loss.dtype == np.float32


def test_a_step_updates_everything_from_the_values_before_it(model):
    W, b = model.params["W"].copy(), model.params["b"].copy()
    assert model.run("swap") is None
    np.testing.assert_allclose(model.params["W"], W + b)  # from the old b, not the new one
    np.testing.assert_allclose(model.params["b"], W.sum(axis=0))


def test_a_step_with_fetches_returns_them_computed_before_the_update(model):
    W, b = model.params["W"].copy(), model.params["b"].copy()
    h = model.run("swap", fetch="h", x=X)
    np.testing.assert_allclose(h, X @ W + b, rtol=1e-6)
    h_list = model.run("swap", fetch=["h"], x=X)
    assert isinstance(h_list, list) and len(h_list) == 1
    assert model.run("swap", fetch=[]) == []
    more, = model.run(["add", "more"], n=5)
    assert more == 5 and model.state["count"] == 5


def test_run_mistakes(model):
    with pytest.raises(Error, match="one step per run, got 2: swap, add"):
        model.run(["swap", "add"])
    with pytest.raises(Error, match="fetch= goes with a step"):
        model.run("h", fetch="loss", x=X)
    with pytest.raises(Error, match="unknown name 'hh'") as e:
        model.run("hh", x=X)
    assert e.value.hint == "did you mean 'h'?"
    with pytest.raises(Error, match="run\\(\\) takes a name or a list of names"):
        model.run(["h", 3])


def test_params_and_inputs_can_be_fetched(model):
    W, b = model.run(["W", "b"])
    np.testing.assert_array_equal(W, model.params["W"])
    np.testing.assert_array_equal(model.run("x", x=X), X)


def test_each_entry_is_compiled_once(model, monkeypatch):
    compiled = []
    original = model._backend.compile
    monkeypatch.setattr(model._backend, "compile", lambda f: compiled.append(f) or original(f))
    for _ in range(3):
        model.run("h", x=X)
        model.run("swap", fetch="h", x=X)
    assert len(compiled) == 2
    assert model.entry(("h",)) is model.entry(("h",))
    assert [a.name for a in model.entry(("h",)).function.args] == ["x", "W", "b"]


def test_params_are_read_only_and_nothing_handed_out_aliases_them(model):
    with pytest.raises(ValueError):
        model.params["W"][0, 0] = 1.0
    W = model.run("W")
    W[0, 0] = 123.0  # the user's copy
    assert model.params["W"][0, 0] != 123.0


def test_a_fed_array_stored_by_a_step_is_copied(model):
    fed = np.full((3, 2), 7.0, np.float32)
    model.run("set", W0=fed)
    fed[:] = 0.0
    assert (model.params["W"] == 7.0).all()


def test_the_run_counter_counts_runs_that_use_it_and_mixes_in_the_seed(toy):
    model = Model(toy, seed=3)
    assert [int(model.run("run")) for _ in range(3)] == [3 << 32, (3 << 32) + 1, (3 << 32) + 2]
    model.run("h", x=X)  # does not use the counter
    assert model.run_count == 3
    assert counter_value(5, 2**40) == np.int64(5)  # wraps to int64
    assert counter_value(0, 2**31).dtype == np.int64 and counter_value(0, 2**31) == -(2**63)


def test_input_types_and_steps(model):
    assert {n: str(t) for n, t in model.input_types.items()} == \
        {"x": "f32[N,3]", "y": "f32[N,2]", "n": "i32[]", "W0": "f32[3,2]"}
    assert model.steps == ("swap", "add", "set")
    assert repr(model) == f"<tflc.Model toy ({DEFAULT_BACKEND}, seed 0)>"


def test_bad_seed_and_backend(toy):
    with pytest.raises(Error, match="seed must be a non-negative integer, got -1"):
        Model(toy, seed=-1)
    with pytest.raises(Error, match="unknown backend 'cuda2'"):
        Model(toy, backend="cuda2")


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_dump_shows_an_entry_after_any_pass():
    model = tflc.load(EXAMPLES / "mnist_mlp.tfl")
    assert model.dump().startswith("model mnist_mlp")
    final = model.dump(fetch="accuracy")
    assert "fused[kind=matmul]" in final and "grad" not in final
    inlined = model.dump(fetch=["accuracy"], after="inline")
    assert inlined.startswith("// ----- after inline -----") and "softmax" not in inlined
    every = model.dump(step="step", after="all")
    assert "// ----- after autodiff -----" in every and "// ----- after fuse -----" in every
    with pytest.raises(tflc.Error, match="no pass 'fusee'"):
        model.dump(fetch="accuracy", after="fusee")


def test_unaliased_copies_exactly_what_shares_memory():
    fed, fresh = np.zeros((2, 4)), np.zeros((2, 4))
    assert unaliased(fresh, [fed]) is fresh
    for result, arrays in [(fed, [fresh, fed]),
                           (fed, [fed[1:]]),  # an argument is a view of the result
                           (fed.T, [fed]),  # the result is a view of an argument
                           (fed[:, 1:][1:], [fed[1]])]:  # views of views
        kept = unaliased(result, arrays)
        assert kept is not result and not any(np.shares_memory(kept, a) for a in arrays)
        np.testing.assert_array_equal(kept, result)
    read_only = fresh.view()
    read_only.flags.writeable = False
    assert unaliased(read_only, []) is not read_only
    assert unaliased(read_only, [], stored=True) is read_only


LINEAR = """
model linear
input x: f32[N, 3]
input y: f32[N, 2]
param W: f32[3, 2] = glorot_uniform()
out = x @ W
loss = mean((out - y) ** 2)
train step = sgd(loss, lr=0.1)
"""


def test_entries_loaded_from_the_cache_each_run_their_own_code(tmp_path, monkeypatch):
    """Every entry's code is named after the model (`@model`): two loaded from the cache into
    one process must still each run their own."""
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    results = []
    for _ in range(2):  # compiled into the cache, then loaded from it
        model = tflc.loads(LINEAR, "linear.tfl", backend="llvm")
        model.run("step", x=x, y=y)
        results.append((model.run("out", x=x), model.params["W"].copy()))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
