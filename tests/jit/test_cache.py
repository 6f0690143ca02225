"""Compiling once per signature: symbolic batch dims, recompile reasons, logging, dumps."""

import numpy as np
import pytest
import tflc
from tflc.runtime.backends import DEFAULT_BACKEND

Error = tflc.Error

rng = np.random.default_rng(3)
W = rng.normal(size=(4, 3)).astype(np.float32)
B = np.zeros(3, np.float32)


def batch(n, dtype=np.float32):
    return rng.normal(size=(n, 4)).astype(dtype)


def predict(x, W, b):
    return tflc.softmax(tflc.relu(x @ W + b))


def test_a_new_batch_size_does_not_recompile():
    f = tflc.jit(predict)
    for n in (1, 7, 32, 7):
        x = batch(n)
        np.testing.assert_allclose(f(x, W, B), tflc.jit(predict)(x, W, B))
    assert f.stats() == {"calls": 4, "compiles": 1, "reasons": ["first call"]}


def test_a_new_dtype_recompiles_and_says_why(monkeypatch, capsys):
    monkeypatch.setenv("TFLC_LOG_COMPILES", "1")
    f = tflc.jit(lambda x, scale: x * scale)
    f(batch(2), 2.0)
    f(batch(2, np.float64), 2.0)
    f(batch(2, np.float64), np.array(2.0))
    f(np.ones((2, 3, 4)), np.array(2.0))
    assert f.stats()["reasons"] == ["first call", "x: dtype float32 → float64",
                                    "scale: a Python scalar → an array", "x: rank 2 → 3"]
    log = capsys.readouterr().err.splitlines()
    traces = [line for line in log if line.startswith("tflc: compiling")]
    assert traces[1] == "tflc: compiling <lambda> (compile 2): x: dtype float32 → float64"
    assert len(traces) == 4
    backend = [line for line in log if line not in traces]  # the llvm backend logs its own
    assert all(line.startswith(f"tflc: {f.backend} ") for line in backend)


def test_a_changed_static_dim_recompiles():
    f = tflc.jit(lambda x: x.sum(axis=0))
    f(batch(3))
    f(rng.normal(size=(3, 5)).astype(np.float32))
    assert f.stats()["reasons"][1] == "x: dim 1 4 → 5"


def test_a_leading_dim_the_function_needs_becomes_static():
    f = tflc.jit(predict)
    f(batch(5), W, B)
    f(batch(6), W, B)
    wider = rng.normal(size=(4, 2)).astype(np.float32)
    f(batch(6), wider, np.zeros(2, np.float32))
    reasons = f.stats()["reasons"]
    assert reasons[1] == "W: dim 1 3 → 2"  # b's leading dim is symbolic until traced
    assert f.dump().startswith("func @predict<N>(%x: f32[N,4], %W: f32[4,2], %b: f32[2])")
    f(np.ones((6, 2), np.float32), np.ones((2, 2), np.float32), np.zeros(2, np.float32))
    assert f.stats()["reasons"][-1] == "x: dim 1 4 → 2"


def test_equal_leading_dims_share_one_symbol():
    text = tflc.dump(lambda x, y: x - y, batch(3), batch(3))
    assert text.startswith("func @lambda<N>(%x: f32[N,4], %y: f32[N,4])")
    f = tflc.jit(lambda x, y: x.sum() + y.sum())
    f(batch(3), batch(3))
    f(batch(5), batch(5))
    f(batch(5), batch(2))
    f(batch(4), batch(4))  # the first entry fits again
    f(batch(4), batch(5))  # so does the second: its two symbols may take any sizes
    assert f.stats()["reasons"][1:] == ["x dim 0 and y dim 0: sizes equal → different"]


def test_a_batch_dim_made_static_by_a_coincidence_becomes_symbolic_again():
    f = tflc.jit(predict)
    f(batch(4), W, B)  # x's batch and W's leading dim are both 4: one symbol, made static
    assert f.dump().startswith("func @predict(%x: f32[4,4], %W: f32[4,3], %b: f32[3])")
    f(batch(7), W, B)
    assert f.stats()["reasons"][1] == "x: dim 0 4 → 7 (made static when traced)"
    assert f.dump().startswith("func @predict<N>(%x: f32[N,4], %W: f32[4,3], %b: f32[3])")
    f(batch(9), W, B)
    assert f.stats()["compiles"] == 2


def test_a_batch_size_equal_to_a_params_size_does_not_recompile():
    f = tflc.jit(predict)
    f(batch(8), W, B)
    f(batch(3), W, B)  # b's leading 3 was made static when traced: it shares no symbol with x
    assert f.stats()["compiles"] == 1


def test_marked_symbolic_dims():
    f = tflc.jit(lambda x: tflc.sum(x * 2, axis=1), symbolic_dims={"x": (0, 1)})
    for shape in ((2, 3), (4, 5), (1, 7)):
        x = np.ones(shape, np.float32)
        np.testing.assert_allclose(f(x), x.sum(1) * 2)
    assert f.stats()["compiles"] == 1
    assert f.dump().startswith("func @lambda<N, N2>(%x: f32[N,N2])")
    with pytest.raises(Error, match="no parameter 'y'"):
        tflc.jit(lambda x: x, symbolic_dims={"y": (0,)})
    with pytest.raises(Error, match="x has no axis 2"):
        tflc.jit(lambda x: x, symbolic_dims={0: (2,)})(batch(2))


def test_a_structure_change_recompiles():
    f = tflc.jit(lambda xs: [x * 2 for x in xs])
    f([batch(2)])
    f([batch(2), batch(2)])
    assert f.stats()["reasons"][1] == "xs: structure (tuples, lists, dicts) changed"


def test_dump_after_a_pass():
    f = tflc.jit(predict)
    x = batch(2)
    traced = tflc.dump(f, x, W, B)
    assert "softmax[axis=-1]" in traced and f.stats()["compiles"] == 0  # traced, not compiled
    inlined = tflc.dump(f, x, W, B, after="inline")
    assert "softmax" not in inlined and "exp" in inlined
    f(x, W, B)
    assert f.dump(after="inline") == inlined
    assert "after inline" in f.dump(after="all")
    with pytest.raises(Error, match="no pass 'inlnie'") as info:
        f.dump(after="inlnie")
    assert info.value.hint == "did you mean 'inline'?"


def test_tflc_dump_writes_every_pass_and_the_backend_code(monkeypatch, tmp_path):
    monkeypatch.setenv("TFLC_DUMP", str(tmp_path))
    tflc.jit(predict)(batch(2), W, B)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].endswith("-predict.00-traced.ir")
    assert any(name.endswith("-inline.ir") for name in names)
    assert any(name.endswith("-autodiff.ir") for name in names)
    assert any(f".{DEFAULT_BACKEND}" in name and name.endswith(".txt") for name in names)
    traced = (tmp_path / names[0]).read_text()
    assert traced.startswith("func @predict<N>")


def test_calls_of_a_known_signature_agree_with_the_full_path():
    """Positional C-ordered arrays of a dtype-and-shape signature seen before skip binding and
    lookup; anything else (a strided array, a NumPy scalar) takes the full path, and every way
    gives the same results, with one compile for all."""
    f = tflc.jit(lambda x, s: (x * s, x))
    x, s = batch(5), np.array(3.0, np.float32)
    first = f(x, s)
    for args in [(x, s), (x, s), (np.asfortranarray(x), s), (x, np.float32(3.0)),
                 (x.copy(), s)]:
        got = f(*args)
        np.testing.assert_array_equal(got[0], first[0])
        np.testing.assert_array_equal(got[1], x)
        assert got[1] is not args[0]  # the caller's copy, not their array
    assert f.stats()["calls"] == 6 and f.stats()["compiles"] == 1
    f(batch(6), s)  # a new batch size: no compile either way
    assert f.stats()["compiles"] == 1


def test_a_known_signature_keeps_what_its_calls_need():
    """Quick calls still count, update the entry `dump` shows, and a function with static
    arguments or keywords always takes the full path."""
    f = tflc.jit(lambda x: x + 1)
    x64 = np.ones((2, 2))
    f(batch(3))
    f(x64)
    f(batch(3))
    assert "f32" in f.dump() and f.stats()["calls"] == 3
    g = tflc.jit(lambda x, n: x * n, static_argnums=1)
    np.testing.assert_array_equal(g(x64, 2), 2 * x64)
    np.testing.assert_array_equal(g(x64, 3), 3 * x64)
    np.testing.assert_array_equal(f(x=x64), x64 + 1)
