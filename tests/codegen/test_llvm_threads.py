"""Kernels on several threads (OpenMP's runtime): the results do not depend on the thread
count, bit for bit, because threads divide rows and each element is computed as on one."""

import multiprocessing

import numpy as np
import pytest

from tflc.codegen.llvm import compile, threads
from tflc.frontend import parse_source
from tflc.ir import Error
from tflc.passes.fuse import fuse
from tflc.passes.pipeline import compile_entry
from tflc.passes.simplify import simplify

pytestmark = pytest.mark.skipif(not threads.runtime(), reason="libgomp is not installed")

MODEL = """
model threads
input x: f32[N, 64]
input labels: i64[N]
param W1: f32[64, 70] = glorot_uniform()
param b1: f32[70] = zeros()
param W2: f32[70, 10] = glorot_uniform()
param b2: f32[10] = zeros()
h = tanh(x @ W1 + b1)
logits = h @ W2 + b2
loss = mean(sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
train step = sgd(loss, lr=0.1)
"""


@pytest.mark.parametrize("fused", [False, True])
def test_same_bits_on_any_number_of_threads(every_kernel_parallel, fused):
    module = parse_source(MODEL, "threads.tfl")
    func = simplify(compile_entry(module, ["loss", "h", "logits"], "step"))
    if fused:
        func = fuse(func)
    compiled = compile(func, threads=1)
    rng = np.random.default_rng(4)
    for n in (1, 7, 100):
        args = [rng.standard_normal((n, 64)).astype(np.float32), rng.integers(0, 10, n),
                *(rng.standard_normal(v.type.shape).astype(np.float32) for v in func.args[2:])]
        compiled.threads = 1
        alone = compiled({"N": n}, [a.copy() for a in args])  # updates overwrite their params
        for count in (2, 3):
            compiled.threads = count
            for want, got in zip(alone, compiled({"N": n}, [a.copy() for a in args])):
                np.testing.assert_array_equal(got, want)


def forked_child(compiled, args, results):
    results.put(compiled({"N": 100}, args)[0])


def test_forked_child_runs_on_one_thread(every_kernel_parallel):
    """libgomp hangs a forked child's first parallel region; children use one thread."""
    func = simplify(compile_entry(parse_source(MODEL, "t.tfl"), ["h"]))
    compiled = compile(func, threads=2)
    rng = np.random.default_rng(5)
    args = [rng.standard_normal((100, 64)).astype(np.float32),
            *(rng.standard_normal(v.type.shape).astype(np.float32) for v in func.args[1:])]
    want = compiled({"N": 100}, args)[0]  # the parent's threads have run
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=forked_child, args=(compiled, args, results))
    child.start()
    try:
        got = results.get(timeout=60)
        child.join(60)
    finally:
        if child.is_alive():  # hung: the test fails, without leaving the child behind
            child.kill()
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, want)


def test_thread_count_settings(monkeypatch):
    monkeypatch.setenv("TFLC_NUM_THREADS", "3")
    assert threads.default_count() == 3
    monkeypatch.setenv("TFLC_NUM_THREADS", "many")
    with pytest.raises(Error, match="TFLC_NUM_THREADS must be a positive integer"):
        threads.default_count()
    monkeypatch.delenv("TFLC_NUM_THREADS")
    assert threads.default_count() >= 1
    compiled = compile(simplify(compile_entry(parse_source(MODEL, "t.tfl"), ["h"])), threads=2)
    assert compiled.threads == 2
    with pytest.raises(Error, match="threads must be a positive integer"):
        compiled.threads = 0
