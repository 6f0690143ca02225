"""Jitted functions on every backend agree with the numpy backend (the reference)."""

import numpy as np
import pytest

import tflc

NATIVE = ["llvm"]  # cuda needs a GPU: tests/codegen/test_ptx_ops.py runs it

rng = np.random.default_rng(4)
W = rng.normal(size=(6, 3)).astype(np.float32)
B = rng.normal(size=3).astype(np.float32)


def batch(n):
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=n)]


def loss(W, b, x, y):
    logits = tflc.relu(x) @ W + b
    return tflc.mean(tflc.softmax_cross_entropy_with_logits(labels=y, logits=logits))


@pytest.mark.parametrize("backend", NATIVE)
def test_a_training_step_agrees_with_numpy_for_every_batch_size(backend):
    native = tflc.jit(tflc.value_and_grad(loss, argnums=(0, 1)), backend=backend)
    reference = tflc.jit(tflc.value_and_grad(loss, argnums=(0, 1)), backend="numpy")
    for n in (16, 5, 1):
        x, y = batch(n)
        (value, grads), (expected, expected_grads) = native(W, B, x, y), reference(W, B, x, y)
        np.testing.assert_allclose(value, expected, rtol=1e-5)
        for got, want in zip(grads, expected_grads):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert native.stats()["compiles"] == 1


@pytest.mark.parametrize("backend", NATIVE)
def test_dropout_draws_the_same_mask_on_every_backend(backend):
    def dropped(x, step):
        return tflc.dropout(x, 0.7, step, seed=3)

    x = np.ones((64, 8), np.float32)
    np.testing.assert_array_equal(tflc.jit(dropped, backend=backend)(x, 5),
                                  tflc.jit(dropped, backend="numpy")(x, 5))


@pytest.mark.parametrize("backend", NATIVE)
def test_tflc_dump_writes_the_backends_code(backend, monkeypatch, tmp_path):
    monkeypatch.setenv("TFLC_DUMP", str(tmp_path))
    tflc.jit(lambda x: x * 2, backend=backend)(np.ones(3, np.float32))
    assert any(f".{backend}" in path.name for path in tmp_path.iterdir())
