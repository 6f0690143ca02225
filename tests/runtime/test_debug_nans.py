"""debug_nans: the first NaN or infinity, forward or gradient, stops the run with a tflc.Error at
its op's source line, naming the op, the bad elements and the operands; off, nothing changes."""

import numpy as np
import pytest
import tflc
from tflc import Error, cli
from tflc.codegen import numpy_backend
from tflc.passes.pipeline import compile_entry

SOURCE = """\
model nans
input x: f32[N, 3]
param W: f32[3, 2] = ones()
h = x @ W
root = sqrt(h)
logged = log(x)
loss = mean(root)
train step = sgd(loss, lr=0.1)
"""


def load(**options):
    return tflc.loads(SOURCE, "nans.tfl", **options)


def test_a_forward_nan_names_the_op_its_line_and_the_values():
    x = np.ones((4, 3), np.float32)
    x[1, 2], x[3, 0] = -1.0, 0.0  # log: NaN at [1, 2], -inf at [3, 0]
    with pytest.raises(Error) as error:
        load(debug_nans=True).run("logged", x=x)
    e = error.value
    assert (e.loc.line, e.loc.col) == (6, 10)
    assert e.message == ("debug_nans: `log` made NaN or Inf in its result 'logged' f32[4,3]: "
                         "2 of 12 elements are not finite (1 NaN, 1 -Inf): "
                         "[1, 2] = nan, [3, 0] = -inf")
    assert e.notes == (("operand 1 'x': f32[4,3], min -1.0, max 1.0, no NaN or Inf", None),)
    assert "logged = log(x)\n           ^" in str(e)


def test_at_most_three_bad_elements_are_shown():
    with pytest.raises(Error, match=r"(?m)12 of 12 .*: \[0, 0\] = nan, \[0, 1\] = nan, "
                                    r"\[0, 2\] = nan$"):
        load(debug_nans=True).run("logged", x=-np.ones((4, 3)))


def test_a_scalar():
    model = tflc.loads("input x: f32[]\ny = log(x)\n", "s.tfl", debug_nans=True)
    with pytest.raises(Error) as error:
        model.run("y", x=-1.0)
    assert error.value.message == "debug_nans: `log` made NaN or Inf in its result 'y' f32[]: " \
                                  "its value is nan"


def test_a_gradient_inf_points_at_the_forward_line():
    # sqrt(0) = 0 is fine forward; its gradient g / (2 sqrt(0)) is +inf.
    x = np.zeros((2, 3), np.float32)
    model = load(debug_nans=True)
    assert model.run("loss", x=x) == 0
    with pytest.raises(Error) as error:
        model.run("step", x=x)
    e = error.value
    assert (e.loc.line, e.loc.col) == (5, 8)  # `sqrt(h)`, where the gradient comes from
    assert e.message.startswith("debug_nans: `div` made NaN or Inf in its result f32[2,2]: "
                                "4 of 4 elements are not finite (4 +Inf): [0, 0] = inf")
    assert "max 0.0, no NaN or Inf" in e.notes[1][0]
    assert "gradient ops carry the line of the op they differentiate" in e.hint
    np.testing.assert_array_equal(model.params["W"], np.ones((3, 2)))  # nothing was updated


def test_a_bad_argument_is_caught_before_any_op():
    x = np.ones((2, 3), np.float32)
    x[0, 1] = np.inf
    with pytest.raises(Error) as error:
        load(debug_nans=True).run("root", x=x)
    assert error.value.message == ("debug_nans: 'x' f32[2,3] holds NaN or Inf when the run "
                                   "starts: 1 of 6 elements are not finite (1 +Inf): "
                                   "[0, 1] = inf")


def test_off_by_default_nans_flow_through(monkeypatch):
    monkeypatch.delenv("TFLC_DEBUG_NANS", raising=False)
    assert np.isnan(load().run("logged", x=-np.ones((1, 3)))).all()


@pytest.mark.parametrize("setting, on", [("1", True), ("true", True), ("ON", True),
                                         ("0", False), ("", False), ("no", False)])
def test_the_environment_variable(monkeypatch, setting, on):
    monkeypatch.setenv("TFLC_DEBUG_NANS", setting)
    assert load().debug_nans is on
    assert load(debug_nans=not on).debug_nans is (not on)  # the argument wins
    monkeypatch.setenv("TFLC_DEBUG_NANS", "maybe")
    with pytest.raises(Error, match="TFLC_DEBUG_NANS=maybe: expected 1 .on. or 0 .off."):
        load()


def test_other_backends_fall_back_to_the_checking_numpy_backend():
    model = load(backend="llvm", debug_nans=True)
    assert model.backend == "llvm" and "debug_nans" in repr(model)
    with pytest.raises(Error, match="`log` made NaN"):
        model.run("logged", x=-np.ones((1, 3)))
    assert isinstance(model.entry(("logged",)).compiled, numpy_backend.Compiled)


def test_checking_changes_no_result():
    # debug_nans runs the numpy backend's code: the same code, checked, gives the same bits
    checked, plain = load(debug_nans=True), load(debug_nans=False, backend="numpy")
    x = np.random.default_rng(0).uniform(0.5, 2, (5, 3)).astype(np.float32)
    for _ in range(3):
        for model in (checked, plain):
            model.run("step", x=x)
    np.testing.assert_array_equal(checked.params["W"], plain.params["W"])
    np.testing.assert_array_equal(checked.run("loss", x=x), plain.run("loss", x=x))


def test_constants_and_integers_are_not_checked():
    model = tflc.loads("input x: f32[N]\nfloor = maximum(x, -1e39)\n"
                       "count = sum(cast(x > 0, i32))\n", debug_nans=True)
    np.testing.assert_array_equal(model.run("floor", x=[1, -2]), [1, -2])
    assert model.run("count", x=[1, -2, 3]) == 2


def test_the_checking_code_stands_alone():
    func = compile_entry(load().module, ["logged"])
    source = numpy_backend.emit(func, debug_nans=True)
    assert "def check_finite(site, result, *operands):" in source
    assert "logged = check_finite(1, np.asarray(op_log(x), np.float32), x)" in source
    assert "check_finite" not in numpy_backend.emit(func)
    namespace = {}
    exec(source, namespace)
    with pytest.raises(FloatingPointError):
        namespace["run"]({"N": 1}, [-np.ones((1, 3), np.float32)])


def test_tflc_run_debug_nans(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TFLC_DEBUG_NANS", raising=False)
    path = tmp_path / "nans.tfl"
    path.write_text(SOURCE)
    assert cli.main(["run", str(path), "--fetch", "logged", "--feed", "x=[[-1, 1, 1]]"]) == 0
    assert "nan" in capsys.readouterr().out
    code = cli.main(["run", str(path), "--fetch", "logged", "--feed", "x=[[-1, 1, 1]]",
                     "--debug-nans"])
    assert code == 1 and capsys.readouterr().err.startswith(
        f"{path}:6:10: error: debug_nans: `log` made NaN")


def test_jit_under_debug_nans_names_the_users_line(monkeypatch):
    monkeypatch.setenv("TFLC_DEBUG_NANS", "1")

    def logged(x):
        return tflc.log(x) * 2  # the line the error points at

    with pytest.raises(Error, match="`log` made NaN") as info:
        tflc.jit(logged)(-np.ones(3, np.float32))
    assert f"test_debug_nans.py:{logged.__code__.co_firstlineno + 1}:" in str(info.value)
    assert tflc.jit(logged, debug_nans=False)(-np.ones(3, np.float32)).shape == (3,)
