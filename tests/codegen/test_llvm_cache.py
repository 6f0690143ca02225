"""The LLVM backend's compile cache: hits, misses on any change, corrupt entries rebuilt (never
loaded), processes writing the same entry at once; cached code loaded as a shared library
(without LLVM) or, where there is none or it does not load, with MCJIT; the host's description
kept in the cache."""

import dataclasses
import gc
import subprocess
import sys

import numpy as np
import pytest

from tflc.codegen.llvm import cache, compile, loading, target
from tflc.ir import Builder, Function, Output, TensorType, Value, diskcache

needs_linker = pytest.mark.skipif(loading.linker() is None,
                                  reason="no C compiler driver to link shared libraries")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TFLC_LOG_COMPILES", "1")
    return tmp_path


@pytest.fixture
def no_linker(monkeypatch):
    monkeypatch.setattr(loading, "linker", lambda: None)


def scaled_exp(scale: float, name: str = "scaled") -> Function:
    x = Value(TensorType("f32", ("N", 3)), "x")
    b = Builder()
    y = b.emit("exp", b.emit("mul", x, b.const(scale, "f32")), name="y")
    return Function(name, ("N",), (x,), tuple(b.ops), (Output("y", y),))


def compile_and_report(func, capsys, **options):
    compiled = compile(func, **options)
    return compiled, capsys.readouterr().err


def entries(cache_dir):
    return sorted(cache_dir.glob("llvm-*.bin"))


def key_of(path):
    return path.name[len("llvm-"):-len(".bin")]


X = np.arange(6, dtype=np.float32).reshape(2, 3) / 4


def test_second_compile_only_loads(capsys, cache_dir):
    first, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "compiled (not in the cache)" in log
    assert len(entries(cache_dir)) == 1
    second, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "loaded from the cache" in log
    np.testing.assert_array_equal(second({"N": 2}, [X])[0], first({"N": 2}, [X])[0])
    np.testing.assert_allclose(second({"N": 2}, [X])[0], np.exp(X * 0.5), rtol=1e-6)


def test_any_change_is_a_miss(capsys, cache_dir):
    compile(scaled_exp(0.5))
    _, log = compile_and_report(scaled_exp(0.25), capsys)
    assert "compiled" in log
    _, log = compile_and_report(scaled_exp(0.5), capsys, fast_math=True)
    assert "compiled" in log
    assert len(entries(cache_dir)) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "garbage"])
def test_damaged_entry_is_rebuilt_not_loaded(capsys, cache_dir, damage):
    compile(scaled_exp(0.5))
    entry, = entries(cache_dir)
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
    assert cache.load(key_of(entry)) is not None  # rewritten whole


def test_entry_of_another_format_is_rebuilt(capsys, cache_dir):
    compile(scaled_exp(0.5))
    entry, = entries(cache_dir)
    diskcache.write(entry.name, b"tflc llvm object 1\n{}\n")  # checks out, but is not an entry
    assert cache.load(key_of(entry)) is None
    _, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "compiled (not in the cache)" in log


WRITER = """
import sys
import numpy as np
from tflc.codegen.llvm import compile
from tflc.ir import Builder, Function, Output, TensorType, Value
x = Value(TensorType("f32", ("N", 3)), "x")
b = Builder()
y = b.emit("tanh", x, name="y")
f = compile(Function("shared", ("N",), (x,), tuple(b.ops), (Output("y", y),)))
print(f({"N": 1}, [np.ones((1, 3), np.float32)])[0][0, 0], type(f._code).__name__,
      "llvmlite.binding" in sys.modules)
"""


def run_writers(count: int) -> list[list[str]]:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(count)]
    outputs = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        outputs.append(out.split())
    for value, _, _ in outputs:
        assert float(value) == pytest.approx(np.tanh(1.0), rel=1e-6)
    return outputs


def test_processes_writing_one_entry_at_once(cache_dir):
    run_writers(3)
    entry, = entries(cache_dir)
    assert not list(cache_dir.glob(".*"))  # no temporary file left behind
    assert cache.load(key_of(entry)) is not None


@needs_linker
def test_a_process_loading_cached_code_does_not_load_llvm(cache_dir):
    (_, cold_loader, _), = run_writers(1)
    (_, warm_loader, llvm_loaded), = run_writers(1)
    assert cold_loader == warm_loader == "Library"
    assert llvm_loaded == "False"


def test_without_a_linker_code_loads_with_mcjit(capsys, no_linker, cache_dir):
    first = compile(scaled_exp(0.5))
    second, log = compile_and_report(scaled_exp(0.5), capsys)
    assert "loaded from the cache" in log
    entry, = entries(cache_dir)
    assert cache.load(key_of(entry)).library is None
    assert isinstance(second._code, loading.JITCode)
    np.testing.assert_array_equal(second({"N": 2}, [X])[0], first({"N": 2}, [X])[0])


@needs_linker
def test_a_library_that_does_not_load_falls_back_to_mcjit(cache_dir):
    compile(scaled_exp(0.5))
    entry, = entries(cache_dir)
    damaged = dataclasses.replace(cache.load(key_of(entry)), library=b"\x7fELF but not really")
    cache.save(key_of(entry), damaged)
    compiled = compile(scaled_exp(0.5))
    assert isinstance(compiled._code, loading.JITCode)
    np.testing.assert_allclose(compiled({"N": 2}, [X])[0], np.exp(X * 0.5), rtol=1e-6)


@needs_linker
def test_each_load_of_a_library_has_its_own_globals():
    first, second = compile(scaled_exp(0.5)), compile(scaled_exp(0.5))
    assert isinstance(second._code, loading.Library)
    first.threads, second.threads = 1, 3
    assert (first.threads, second.threads) == (1, 3)


@needs_linker
def test_past_so_many_libraries_code_loads_with_mcjit(monkeypatch):
    gc.collect()  # libraries of earlier tests, unloaded
    monkeypatch.setattr(loading, "MAX_LIBRARIES", len(loading.LOADED) + 1)
    first, second = compile(scaled_exp(0.5)), compile(scaled_exp(0.5))
    assert isinstance(first._code, loading.Library)
    assert isinstance(second._code, loading.JITCode)
    np.testing.assert_array_equal(second({"N": 2}, [X])[0], first({"N": 2}, [X])[0])


@needs_linker
@pytest.mark.parametrize("name", ["exp", "tanh", "sin"])
def test_entry_named_like_a_c_function_calls_its_own_code(name):
    compile(scaled_exp(0.5, name))
    compiled = compile(scaled_exp(0.5, name))
    assert isinstance(compiled._code, loading.Library)
    np.testing.assert_allclose(compiled({"N": 2}, [X])[0], np.exp(X * 0.5), rtol=1e-6)


def test_cache_off_and_clear(capsys, cache_dir):
    _, log = compile_and_report(scaled_exp(0.5), capsys, cache=False)
    assert "cache off" in log and not entries(cache_dir)
    compile(scaled_exp(0.5))
    info = diskcache.info()
    assert info["directory"] == str(cache_dir) and info["kinds"]["llvm"] == 1
    assert info["bytes"] > 0
    assert diskcache.clear() == info["entries"] and diskcache.info()["entries"] == 0


# -- the host, kept in the cache -----------------------------------------------------------------

def host_uncached():
    return target.host.__wrapped__()


def test_host_is_asked_of_llvm_once_then_read(cache_dir, monkeypatch):
    if target.host_fingerprint() is None:
        pytest.skip("no /proc/cpuinfo: LLVM is asked every time")
    detected = target.detect_host()
    assert host_uncached() == detected == target.host()
    assert len(list(cache_dir.glob("host-*.bin"))) == 1
    monkeypatch.setattr(target, "detect_host", lambda: pytest.fail("LLVM asked again"))
    assert host_uncached() == detected


def test_damaged_host_file_is_asked_again(cache_dir):
    if target.host_fingerprint() is None:
        pytest.skip("no /proc/cpuinfo: LLVM is asked every time")
    name = diskcache.file_name("host", target.host_fingerprint())
    for damage in (b"not json", b'{"triple": "x86_64-unknown-linux-gnu"}'):
        diskcache.write(name, damage)
        assert host_uncached() == target.detect_host()
        assert diskcache.read(name) != damage  # overwritten


def test_host_fingerprint_is_stable_and_follows_the_llvm_build(monkeypatch):
    fingerprint = target.host_fingerprint()
    if fingerprint is None:
        pytest.skip("no /proc/cpuinfo")
    assert target.host_fingerprint() == fingerprint  # cpu MHz and the like left out
    import llvmlite

    monkeypatch.setattr(llvmlite, "__version__", "0.0.0")
    assert target.host_fingerprint() != fingerprint
