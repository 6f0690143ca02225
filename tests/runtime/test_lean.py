"""The lean per-run path (runtime/lean.py): the same results, updates and run counter as the
full path, and every unusual feed declined with nothing run."""

import numpy as np
import pytest

from tflc import Model
from tflc.runtime.lean import DECLINED

X = np.arange(6, dtype=np.float32).reshape(2, 3)
Y = np.ones((2, 2), np.float32)
N = np.array(5, np.int32)
W0 = np.full((3, 2), 7.0, np.float32)

# (what, fetch, feeds) in order; steps change what later runs see
RUNS = [("h", None, {"x": X}), (["h", "loss"], None, {"x": X, "y": Y}),
        ("swap", None, {}), ("swap", "h", {"x": X}), ("add", ["more"], {"n": N}),
        ("run", None, {}), (["run", "more"], None, {"n": N}), ("set", None, {"W0": W0}),
        ("W", None, {})]


def lean_path(model, what, fetch=None):
    key = (what if isinstance(what, str) else tuple(what),
           fetch is None or (fetch if isinstance(fetch, str) else tuple(fetch)))
    return model._runs[key][2]


def test_lean_and_full_paths_agree(toy):
    lean, full = Model(toy, backend="llvm", seed=3), Model(toy, backend="llvm", seed=3)
    for what, fetch, feeds in RUNS:
        got = lean.run(what, fetch=fetch, **feeds)
        assert lean_path(lean, what, fetch) is not None
        # as lists the feeds are declined and take the full check, which converts them
        want = full.run(what, fetch=fetch, **{name: value.tolist() for name, value in feeds.items()})
        for got_one, want_one in zip(*[r if isinstance(r, list) else [r] for r in (got, want)]):
            np.testing.assert_array_equal(got_one, want_one)
            assert got_one is None or got_one.flags.writeable
        assert lean.run_count == full.run_count
        for name, value in {**full.params, **full.state}.items():
            np.testing.assert_array_equal({**lean.params, **lean.state}[name], value, err_msg=name)
    W0[...] = 0  # the param was set from the fed array, not to it
    np.testing.assert_array_equal(lean.params["W"], np.full((3, 2), 7.0))


def test_a_fetched_param_is_the_callers_copy(toy):
    model = Model(toy, backend="llvm")
    W = model.run("W")
    W[...] = 1
    assert not np.array_equal(model.params["W"], W)


@pytest.mark.parametrize("feeds", [{}, {"n": 5}, {"n": N.astype(np.int64)}, {"n": N.reshape(1)},
                                   {"n": N, "x": X}, {"m": N}])
def test_unusual_feeds_are_declined_with_nothing_run(toy, feeds):
    model = Model(toy, backend="llvm")
    model.run("add", fetch="more", n=N)
    count, runs = model.state["count"].copy(), model.run_count
    assert lean_path(model, "add", "more")(feeds) is DECLINED
    assert model.state["count"] == count and model.run_count == runs


def test_backends_called_with_sizes_take_the_quick_check(toy):
    model = Model(toy, backend="numpy")
    np.testing.assert_allclose(model.run("h", x=X), Model(toy, backend="llvm").run("h", x=X),
                               rtol=1e-6)
    assert lean_path(model, "h") is None
