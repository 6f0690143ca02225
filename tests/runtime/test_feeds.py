"""Feeds are checked before anything runs; each mistake is an error naming the input."""

import numpy as np
import pytest

from tflc import Error
from tflc.runtime.lean import quick_check

X = np.ones((2, 3), np.float32)
Y = np.zeros((2, 2), np.float32)


def error(model, what, *args, **feeds):
    with pytest.raises(Error) as info:
        model.run(what, *args, **feeds)
    return info.value


def test_unknown_feed_name_with_hint(model):
    e = error(model, "h", xs=X)
    assert e.message == \
        "cannot feed 'xs': model toy has no input of that name (inputs: x, y, n, W0)"
    assert e.hint == "did you mean 'x'?"


def test_params_are_not_fed(model):
    assert error(model, "h", x=X, W=X).message == \
        "cannot feed 'W': it is a param, not an input (only inputs are fed)"


def test_only_the_inputs_an_entry_needs_must_be_fed(model):
    assert model.run("h", x=X).shape == (2, 2)  # y is not needed for h
    assert error(model, "loss", x=X).message == "missing feed for fetching 'loss': y: f32[N,2]"
    assert error(model, ["loss", "more"]).message == \
        "missing feeds for fetching 'loss' and 'more': x: f32[N,3], y: f32[N,2], n: i32[]"


def test_safe_casts_are_made(model):
    fed64 = model.run("h", x=X.astype(np.float64))
    assert fed64.dtype == np.float32
    np.testing.assert_array_equal(fed64, model.run("h", x=[[1, 1, 1], [1, 1, 1]]))  # ints
    assert model.run("more", n=np.int64(3)) == 3  # i64 → i32 is the same kind
    assert model.run("more", n=True) == 1


def test_unsafe_casts_are_errors(model):
    e = error(model, "more", n=2.5)
    assert e.message == "input 'n' expects i32[], but was fed float64 values"
    assert e.hint.startswith("convert them first, e.g. with .astype(np.int32)")
    assert "non-numeric" in error(model, "h", x=[["a", "b", "c"]]).message


def test_ragged_lists_are_errors(model):
    assert error(model, "h", x=[[1, 2, 3], [1, 2]]).message.startswith(
        "cannot read the value fed to 'x' as an array:")


def test_rank_and_size_errors_name_the_input_type_and_shape(model):
    assert error(model, "h", x=np.ones(3)).message == \
        "input 'x' expects f32[N,3], but was fed shape [3]: rank 1 instead of 2"
    assert error(model, "h", x=np.ones((2, 4))).message == \
        "input 'x' expects f32[N,3], but was fed shape [2, 4]: dim 1 is 4, not 3"


def test_symbolic_dims_agree_across_inputs(model):
    e = error(model, "loss", x=np.ones((3, 3)), y=np.ones((4, 2)))
    assert e.message == \
        "input 'y' expects f32[N,2], but was fed shape [4, 2]: N is 3 from 'x' but 4 from 'y'"


def test_any_size_of_a_symbolic_dim_runs(model):
    for n in (1, 7, 0):
        assert model.run("h", x=np.ones((n, 3))).shape == (n, 2)


def test_feed_dict_for_any_name_and_no_name_twice(model):
    np.testing.assert_array_equal(model.run("h", {"x": X}), model.run("h", x=X))
    assert error(model, "h", {"x": X}, x=X).message == \
        "'x' is fed twice (in the feed dict and as a keyword)"


def test_nothing_runs_when_a_feed_is_wrong(model):
    before = model.params["W"].copy()
    error(model, "swap", x=np.ones((2, 4)))  # swap needs no feed, but x is checked anyway
    np.testing.assert_array_equal(model.params["W"], before)


def test_quick_check_takes_only_the_usual_feeds(toy):
    """The fast path sees exactly the entry's inputs as C-ordered arrays of their dtypes and
    shapes, and gives the dims' sizes; anything else goes to the full check (None)."""
    quick = quick_check(toy, ["x", "y", "n"])
    n = np.array(3, np.int32)
    assert quick({"x": X, "y": Y, "n": n}) == {"N": 2}
    unusual = [{"x": X, "y": Y},  # a missing input
               {"x": X, "y": Y, "n": n, "W0": X[:, :2]},  # an input this entry does not take
               {"x": X.tolist(), "y": Y, "n": n},  # a list
               {"x": X.astype(np.float64), "y": Y, "n": n},  # another dtype
               {"x": X, "y": Y, "n": 3},  # a Python int
               {"x": np.ones((3, 2), np.float32).T, "y": Y, "n": n},  # not C-ordered
               {"x": X[:, :2].copy(), "y": Y, "n": n},  # a wrong static dim
               {"x": X, "y": Y[:1], "n": n},  # N is 2 from x but 1 from y
               {"x": X, "y": Y, "n": n.reshape(1)}]  # a wrong rank
    for feeds in unusual:
        assert quick(feeds) is None, feeds


def test_every_feed_the_quick_check_declines_is_still_checked(model):
    """Declined feeds run through the full check: converted, or reported."""
    want = model.run("h", x=X)
    np.testing.assert_array_equal(model.run("h", x=X.tolist()), want)
    np.testing.assert_array_equal(model.run("h", x=np.asfortranarray(X)), want)
    assert error(model, "h", x=X[:, :2].copy()).message.startswith(
        "input 'x' expects f32[N,3], but was fed shape [2, 2]")
