"""The tutorials' programs (samples/*.tfl): their modules, and their values against NumPy."""

from pathlib import Path

import numpy as np
import pytest

from tflc.frontend import parse_file
from tflc.ir import print_module

SAMPLES = Path(__file__).with_name("samples")
rng = np.random.default_rng(0)


def sample(name):
    return parse_file(SAMPLES / f"{name}.tfl")


def fetchable(module):
    return list(module.function("model").fetchable)


def step_updates(module, step):
    return [out.label for out in module.function("model").outputs if out.step == step]


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.tfl")), ids=lambda p: p.stem)
def test_every_sample_parses_and_prints(path):
    module = parse_file(path)
    assert module.functions[0].name == "model"
    assert print_module(module).startswith(f"model {module.name}\n")


def test_mnist_mlp_module():
    m = sample("mnist_mlp")
    func = m.function("model")
    assert m.name == "mnist_mlp"
    assert [(d.kind, d.name, str(d.type)) for d in m.decls] == [
        ("input", "x", "f32[N,784]"), ("input", "y", "f32[N,10]"),
        ("param", "W1", "f32[784,300]"), ("param", "b1", "f32[300]"),
        ("param", "W2", "f32[300,10]"), ("param", "b2", "f32[10]")]
    assert [a.name for a in func.args] == [d.name for d in m.decls]
    assert func.dims == ("N",)
    assert fetchable(m) == ["hidden_out", "y_", "y_clipped", "cross_entropy", "correct",
                            "accuracy"]
    assert step_updates(m, "step") == ["W1", "b1", "W2", "b2"]
    assert m.decl("W1").init.kind == "normal"
    assert dict(m.decl("W1").init.args) == {"mean": 0.0, "stddev": 0.03}
    # composites stay composites, grads stay grad ops
    opcodes = [op.opcode for op in func.ops]
    assert {"softmax", "clip", "mean", "argmax", "cast"} <= set(opcodes)
    assert opcodes.count("grad") == 4


def test_mnist_mlp_values_match_numpy(evaluate):
    m = sample("mnist_mlp")
    x = rng.random((5, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 3, 5, 7, 9]]
    W1, W2 = (rng.normal(0, 0.03, s).astype(np.float32) for s in [(784, 300), (300, 10)])
    b1, b2 = (rng.normal(0, 0.03, s).astype(np.float32) for s in [(300,), (10,)])
    feeds = dict(x=x, y=y, W1=W1, b1=b1, W2=W2, b2=b2)
    hidden = np.maximum(x @ W1 + b1, 0)
    logits = hidden @ W2 + b2
    y_ = np.exp(logits - logits.max(1, keepdims=True))
    y_ /= y_.sum(1, keepdims=True)
    clipped = np.clip(y_, 1e-10, 0.9999999)
    expected = -np.mean(np.sum(y * np.log(clipped) + (1 - y) * np.log(1 - clipped), axis=1))
    loss = evaluate(m, "cross_entropy", **feeds)
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    accuracy = np.mean(np.argmax(y, 1) == np.argmax(y_, 1))
    np.testing.assert_allclose(evaluate(m, "accuracy", **feeds), accuracy)


def test_mnist_scoped_module():
    m = sample("mnist_scoped")
    func = m.function("model")
    user_decls = [d.name for d in m.decls if d.kind != "state"]
    assert user_decls == ["x", "y", "keep_prob", "fc1.W", "fc1.b", "__run", "fc2.W", "fc2.b",
                          "W3", "b3"]
    assert m.decl("__run").kind == "counter" and str(m.decl("__run").type) == "i64[]"
    assert fetchable(m) == ["fc1.h", "fc2.h", "out", "loss", "correct", "accuracy"]
    dropouts = [op for op in func.ops if op.opcode == "dropout"]
    assert [op.attrs["stream"] for op in dropouts] == [0, 1]
    assert all(op.operands[2] is func.args[5] for op in dropouts)
    # Adam's state: decls and step updates for every param the loss depends on
    state = [d.name for d in m.decls if d.kind == "state"]
    assert "step.t" in state and "step.m.fc1.W" in state and "step.v.b3" in state
    updates = step_updates(m, "step")
    assert {"fc1.W", "fc1.b", "fc2.W", "fc2.b", "W3", "b3"} <= set(updates)
    assert "x" not in updates


def test_mnist_scoped_forward_matches_numpy(evaluate):
    m = sample("mnist_scoped")
    x = rng.random((3, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[[0, 4, 8]]
    p = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in [
        ("fc1.W", (784, 500)), ("fc1.b", (500,)), ("fc2.W", (500, 100)), ("fc2.b", (100,)),
        ("W3", (100, 10)), ("b3", (10,))]}
    feeds = {d.name: np.zeros((), np.float32) for d in m.decls if d.kind == "state"}
    feeds.update(p, x=x, y=y, keep_prob=np.float32(1.0), __run=np.int64(0))
    h1 = np.maximum(x @ p["fc1.W"] + p["fc1.b"], 0)
    h2 = np.maximum(h1 @ p["fc2.W"] + p["fc2.b"], 0)
    out = h2 @ p["W3"] + p["b3"]
    np.testing.assert_allclose(evaluate(m, "out", **feeds), out, rtol=1e-4, atol=1e-5)
    log_softmax = out - out.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    np.testing.assert_allclose(evaluate(m, "loss", **feeds),
                               np.mean(-np.sum(y * log_softmax, 1)), rtol=1e-4)


def test_counter_steps(evaluate):
    m = sample("counter")
    func = m.function("model")
    assert func.steps == ("c_update", "update")
    assert step_updates(m, "c_update") == ["c"]
    assert step_updates(m, "update") == ["W", "b"]
    assert m.decl("c").init.kind == "value" and m.decl("c").init.arg("value") == 50
    feeds = dict(c=np.int32(50), number=np.int32(5), x=np.ones(3, np.float32),
                 W=np.float32(0.5), b=np.float32(0))
    new_c = evaluate(m, "c", step="c_update", **feeds)
    assert new_c == 55 and new_c.dtype == np.int32
    grad_ops = [op for op in func.ops if op.opcode == "grad"]
    assert [op.operands[1].name for op in grad_ops] == ["W", "b"]


def test_broadcast_values(evaluate):
    m = sample("broadcast")
    mat = rng.random((4, 3), dtype=np.float32)
    scale = rng.random((4, 1), dtype=np.float32)
    row = np.array([10, 20, 30], np.float32)
    expected = {"row": row, "shifted": mat + row, "scaled": mat * scale, "halved": mat / 2,
                "column_sums": mat.sum(0), "row_means": mat.mean(1, keepdims=True),
                "centered": mat - mat.mean(1, keepdims=True)}
    assert fetchable(m) == list(expected)
    for name, value in expected.items():
        result = evaluate(m, name, m=mat, scale=scale)
        assert result.dtype == np.float32, name
        np.testing.assert_allclose(result, value, rtol=1e-6, err_msg=name)


def test_linear_regression(evaluate, sexpr):
    m = sample("linear_regression")
    x = np.array([1, 2, 3, 4], np.float32)
    y = np.array([2, 4, 6, 8], np.float32)
    feeds = dict(x=x, y=y, lr=np.float32(0.1), W=np.float32(0.3), b=np.float32(-0.3))
    np.testing.assert_allclose(evaluate(m, "loss", **feeds), np.mean((0.3 * x - 0.3 - y) ** 2),
                               rtol=1e-6)
    assert fetchable(m) == ["prediction", "loss", "dW", "db"]
    assert sexpr(m, "dW") == "(grad loss W)"
    assert step_updates(m, "step") == ["W", "b"]
    assert sexpr(m, "W", "step") == "(sub W (mul lr (grad loss W)))"
