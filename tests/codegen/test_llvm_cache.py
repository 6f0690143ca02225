"""The LLVM backend's compile cache: hits, misses on any change, corrupt entries rebuilt (never
loaded), processes writing the same entry at once."""

import subprocess
import sys

import numpy as np
import pytest

from tflc.codegen.llvm import cache, compile
from tflc.ir import Builder, Function, Output, TensorType, Value


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TFLC_LOG_COMPILES", "1")
    return tmp_path


def scaled_exp(scale: float) -> Function:
    x = Value(TensorType("f32", ("N", 3)), "x")
    b = Builder()
    y = b.emit("exp", b.emit("mul", x, b.const(scale, "f32")), name="y")
    return Function("scaled", ("N",), (x,), tuple(b.ops), (Output("y", y),))


def compile_and_report(func, capsys, **options):
    compiled = compile(func, **options)
    return compiled, capsys.readouterr().err


X = np.arange(6, dtype=np.float32).reshape(2, 3) / 4


def test_second_compile_only_loads(capsys):
    first, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "compiled (not in the cache)" in log
    assert cache.info()["entries"] == 1
    second, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "loaded from the cache" in log
    np.testing.assert_array_equal(second({"N": 2}, [X])[0], first({"N": 2}, [X])[0])
    np.testing.assert_allclose(second({"N": 2}, [X])[0], np.exp(X * 0.5), rtol=1e-6)


def test_any_change_is_a_miss(capsys):
    compile(scaled_exp(0.5))
    _, log = compile_and_report(scaled_exp(0.25), capsys)
    assert "compiled" in log
    _, log = compile_and_report(scaled_exp(0.5), capsys, fast_math=True)
    assert "compiled" in log
    assert cache.info()["entries"] == 3


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "garbage"])
def test_damaged_entry_is_rebuilt_not_loaded(capsys, cache_dir, damage):
    compile(scaled_exp(0.5))
    entry, = cache_dir.glob("llvm-*.bin")
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip a byte":
        data[-100] ^= 0xFF
    else:
        data = bytearray(b"not an entry at all")
    entry.write_bytes(bytes(data))
    compiled, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "compiled (not in the cache)" in log
    np.testing.assert_allclose(compiled({"N": 2}, [X])[0], np.exp(X * 0.5), rtol=1e-6)
    assert cache.load(entry.name[len("llvm-"):-len(".bin")]) is not None  # rewritten whole


WRITER = """
import numpy as np
from tflc.codegen.llvm import compile
from tflc.ir import Builder, Function, Output, TensorType, Value
x = Value(TensorType("f32", ("N", 3)), "x")
b = Builder()
y = b.emit("tanh", x, name="y")
f = compile(Function("shared", ("N",), (x,), tuple(b.ops), (Output("y", y),)))
print(f({"N": 1}, [np.ones((1, 3), np.float32)])[0][0, 0])
"""


def test_processes_writing_one_entry_at_once(cache_dir):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert float(out) == pytest.approx(np.tanh(1.0), rel=1e-6)
    entry, = cache_dir.glob("llvm-*.bin")  # no temporary file left behind
    assert cache.load(entry.name[len("llvm-"):-len(".bin")]) is not None


def test_cache_off_and_clear(capsys, cache_dir):
    _, log = compile_and_report(scaled_exp(0.5), capsys, cache=False)
    assert "cache off" in log and cache.info()["entries"] == 0
    compile(scaled_exp(0.5))
    info = cache.info()
    assert info["directory"] == str(cache_dir) and info["entries"] == 1 and info["bytes"] > 0
    assert cache.clear() == 1 and cache.info()["entries"] == 0
