"""Every example, every fetch and every step: the llvm backend against the NumPy backend (the
reference), at batch sizes 1, 7 (not a multiple of the vector width), 100 and 1000; and 50
training steps of the first tutorial's network ending at the same params."""

from pathlib import Path

import numpy as np
import pytest

import tflc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BATCHES = (1, 7, 100, 1000)
# matmuls over 784 terms sum in another order than NumPy's BLAS: values near 0 differ by up to
# ~1e-5 in absolute terms (f32 epsilon times the sum of |terms|, times sqrt of their count)
TOLERANCE = dict(rtol=1e-4, atol=2e-5)


def feeds_for(model, n: int, rng) -> dict:
    """Data of each input's type: the batch dim `n`, class labels below 10, a keep_prob of 1."""
    feeds = {}
    for name, t in model.input_types.items():
        shape = tuple(n if isinstance(d, str) else d for d in t.shape)
        if t.dtype in ("i32", "i64"):
            feeds[name] = rng.integers(0, 10 if shape else 4, shape).astype(f"int{t.dtype[1:]}")
        elif not shape:
            feeds[name] = np.float32(1.0)
        else:
            feeds[name] = rng.uniform(0, 1, shape).astype(np.float32)
    return feeds


def pair(example: str):
    return [tflc.load(EXAMPLES / example, backend=b, seed=3) for b in ("numpy", "llvm")]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.tfl")))
def test_every_fetch_and_step_agrees(example, tmp_path):
    """Each batch size's fetches and steps start both backends from the same params and state
    (a checkpoint of the reference's), so a difference in the last bits of one step does not
    compound into the next; an update agrees to 1e-3 of the largest change it makes to that
    array (a saturated softmax turns one ulp of y_ into 1e-3 of log(1 - y_)'s gradient)."""
    reference, native = pair(example)
    fetches = list(reference.module.function("model").fetchable)
    checkpoint = tmp_path / "before.npz"
    for n in BATCHES:
        rng = np.random.default_rng(n)
        feeds = feeds_for(reference, n, rng)
        reference.save(checkpoint)
        native.restore(checkpoint)
        for want, got, name in zip(reference.run(fetches, **feeds), native.run(fetches, **feeds),
                                   fetches):
            np.testing.assert_allclose(got, want, **TOLERANCE, err_msg=f"{example}: {name}")
        for step in reference.steps:
            reference.save(checkpoint)
            native.restore(checkpoint)
            before = {**reference.params, **reference.state}
            before = {name: value.copy() for name, value in before.items()}
            reference.run(step, **feeds)
            native.run(step, **feeds)
            got_all = {**native.params, **native.state}
            for name, want in {**reference.params, **reference.state}.items():
                change = float(np.max(np.abs(want - before[name]), initial=0))
                np.testing.assert_allclose(got_all[name], want, rtol=TOLERANCE["rtol"],
                                           atol=max(TOLERANCE["atol"], 1e-3 * change),
                                           err_msg=f"{example}: {step} updates {name}")


def test_fifty_training_steps_end_at_the_same_params():
    reference, native = pair("mnist_mlp.tfl")
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.uniform(0, 1, (100, 784)).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 100)]
        want = reference.run("step", fetch="cross_entropy", x=x, y=y)
        got = native.run("step", fetch="cross_entropy", x=x, y=y)
        np.testing.assert_allclose(got, want, rtol=1e-4)
    for name, value in reference.params.items():
        np.testing.assert_allclose(native.params[name], value, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
