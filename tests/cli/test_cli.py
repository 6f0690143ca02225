"""The tflc command: output and exit codes (0 ok, 1 user error, 2 usage), mostly via cli.main."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflc import cli
from tflc.ir import diskcache

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HELLO = str(EXAMPLES / "hello.tfl")

MODEL = """\
model tiny
input x: f32[N]
param w: f32[] = 2.0
y = x * w
total = sum(y)
step double {
    w <- w * 2.0
}
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.tfl"
    path.write_text(MODEL)
    return str(path)


def tflc(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok_and_errors(capsys, tmp_path):
    assert tflc(capsys, "check", HELLO) == (0, "ok\n", "")
    bad = tmp_path / "bad.tfl"
    bad.write_text("input x: f32[N, 3]\ny = x @ x\n")
    code, out, err = tflc(capsys, "check", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"{bad}:2:") and "error: matmul" in err and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    (b"model m\n\0\x01binary", "2:1: error: {path} is not a text file"),
    (b"model m\n# caf\xe9\n", "2:6: error: {path} is not UTF-8 text"),
])
def test_unreadable_files_are_located_errors(capsys, tmp_path, content, message):
    path = tmp_path / "f.tfl"
    path.write_bytes(content)
    code, out, err = tflc(capsys, "check", str(path))
    assert code == 1 and err.startswith(f"{path}:" + message.format(path=path))


def test_missing_file(capsys, tmp_path):
    code, out, err = tflc(capsys, "run", str(tmp_path / "no.tfl"), "--fetch", "a")
    assert code == 1 and err == f"error: cannot read {tmp_path}/no.tfl: No such file or directory\n"


def test_run_prints_each_fetch(capsys, tiny):
    assert tflc(capsys, "run", HELLO, "--fetch", "a") == (0, "a = 9.0\n", "")
    code, out, err = tflc(capsys, "run", tiny, "--fetch", "y", "--fetch", "total",
                          "--feed", "x=[1, 2.5, 3]")
    assert (code, err) == (0, "") and out == "y = [2. 5. 6.]\ntotal = 13.0\n"


def test_run_steps_in_fetch_order(capsys, tiny):
    code, out, _ = tflc(capsys, "run", tiny, "--fetch", "w", "--fetch", "double", "--fetch", "w")
    assert code == 0 and out == "w = 2.0\nran double: updated w\nw = 4.0\n"


def test_multiline_arrays_line_up(capsys, tmp_path):
    path = tmp_path / "m.tfl"
    path.write_text("input x: f32[N, 2]\nz = x + 0.5\n")
    code, out, _ = tflc(capsys, "run", str(path), "--fetch", "z", "--feed", "x=[[1,2],[3,4]]")
    assert out == "z = [[1.5 2.5]\n     [3.5 4.5]]\n"


def test_feed_from_npy_file(capsys, tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.array([1, 2], np.float64))
    code, out, _ = tflc(capsys, "run", tiny, "--fetch", "total", "--feed", f"x=@{tmp_path}/x.npy")
    assert (code, out) == (0, "total = 6.0\n")
    code, _, err = tflc(capsys, "run", tiny, "--fetch", "total", "--feed", "x=@missing.npy")
    assert code == 1 and "--feed x: cannot read missing.npy as a .npy array" in err


@pytest.mark.parametrize("argv, message", [
    (["--fetch", "totl", "--feed", "x=[1]"], "hint: did you mean 'total'?"),
    (["--fetch", "total", "--feed", "x=__import__('os')"], "not a number or a list of numbers"),
    (["--fetch", "total", "--feed", "x=[1]", "--feed", "x=[2]"], "--feed x is given twice"),
    (["--fetch", "total"], "missing feed for fetching 'total': x: f32[N]"),
    (["--fetch", "total", "--feed", "x=[[1]]"], "rank 2 instead of 1"),
    (["--fetch", "total", "--feed", "z=1"], "cannot feed 'z'"),
    (["--fetch", "w", "--seed", "-1"], "seed must be a non-negative integer"),
])
def test_run_user_errors_exit_1(capsys, tiny, argv, message):
    code, out, err = tflc(capsys, "run", tiny, *argv)
    assert code == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "f.tfl"],  # --fetch is required
    ["run", "f.tfl", "--fetch", "a", "--feed", "novalue"],
    ["run", "f.tfl", "--fetch", "a", "--backend", "fortran"],
    ["dump", "f.tfl", "--emit", "pdf"],
    ["dump", "f.tfl", "--after", "prune", "--print-after-all"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = tflc(capsys, *argv)
    assert code == 2 and "usage: tflc" in err


def test_help_exits_0(capsys):
    code, out, _ = tflc(capsys, "--help")
    assert code == 0 and "check" in out and "dump" in out


def test_dump_without_an_entry_prints_the_module(capsys):
    code, out, _ = tflc(capsys, "dump", HELLO)
    assert code == 0 and out.startswith("model hello\n") and "func @model(" in out


def test_dump_an_entry(capsys, tiny):
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "y")
    assert code == 0 and out.startswith("func @model<N>(%x: f32[N], %w: f32[]) -> (f32[N]) {")
    assert "sum" not in out  # pruned: y does not need total
    code, out, _ = tflc(capsys, "dump", tiny, "--step", "double")
    assert "double: w <- " in out and "%x" not in out


def test_dump_after_passes_and_timings(capsys, tiny):
    code, out, err = tflc(capsys, "dump", tiny, "--fetch", "y", "--after", "prune", "--timings")
    assert code == 0 and out.startswith("// ----- after prune -----\nfunc @model<N>")
    assert err.splitlines()[0].split() == ["pass", "ms"] and "prune" in err
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "y", "--print-after-all", "--verify")
    assert code == 0 and out.startswith("// ----- entry before passes -----\n")
    code, _, err = tflc(capsys, "dump", tiny, "--fetch", "y", "--after", "prnue")
    assert code == 1 and "no pass 'prnue' in the pipeline" in err and "did you mean 'prune'" in err


def test_dump_emit_python_runs(capsys, tiny):
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "python")
    assert code == 0 and out.startswith('"""Generated by tflc')
    namespace = {}
    exec(out, namespace)
    total, = namespace["run"]({"N": 2}, [np.array([1, 2], np.float32), np.array(2, np.float32)])
    assert total == 6.0


@pytest.mark.parametrize("argv, message", [
    (["--after", "prune"], "work on an entry"),
    (["--fetch", "y", "--after", "prune", "--emit", "python"], "--emit prints the final entry"),
    (["--fetch", "double", "--step", "double"], "an entry runs one step"),
    (["--step", "tripple"], "unknown step 'tripple'"),
    (["--fetch", "y", "--emit", "asm", "--opt"], "--opt goes with --emit llvm or --emit nvvm"),
])
def test_dump_user_errors(capsys, tiny, argv, message):
    code, _, err = tflc(capsys, "dump", tiny, *argv)
    assert code == 1 and message in err


def test_ctrl_c_exits_quietly(capsys, monkeypatch, tiny):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_check", interrupted)
    assert tflc(capsys, "check", tiny) == (130, "", "interrupted\n")


def test_the_installed_command_and_python_m(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "tflc", "run", HELLO, "--fetch", "a"],
                        capture_output=True, text=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "a = 9.0\n", "")
    bad = subprocess.run([sys.executable, "-m", "tflc", "run", HELLO, "--fetch", "b2"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown name 'b2'")
    assert "Traceback" not in bad.stderr


def test_llvm_backend_and_its_emit_forms(capsys, tiny):
    code, out, _ = tflc(capsys, "run", tiny, "--fetch", "total", "--feed", "x=[1, 2.5, 3]",
                        "--backend", "llvm")
    assert (code, out) == (0, "total = 13.0\n")
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "llvm")
    assert code == 0 and "define " in out and out.endswith("\n")
    code, optimised, _ = tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "llvm", "--opt")
    assert code == 0 and "define " in optimised and optimised != out
    assert optimised == tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "llvm-opt")[1]


def test_dump_memory_report(capsys, tiny):
    code, out, err = tflc(capsys, "dump", tiny, "--fetch", "total", "--memory", "N=1000")
    assert code == 0 and "func @model" in out
    assert "memory plan of @model (N=1000)" in err and "peak live" in err
    code, _, err = tflc(capsys, "dump", tiny, "--fetch", "total", "--memory", "M=3")
    assert code == 1 and "--memory needs a size for N" in err


def test_dump_emit_ptx_needs_no_gpu(capsys, tiny):
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "ptx",
                        "--arch", "sm_80")
    assert code == 0 and ".target sm_80" in out and ".entry" in out
    code, out, _ = tflc(capsys, "dump", tiny, "--fetch", "total", "--emit", "nvvm")
    assert code == 0 and 'target triple = "nvptx64-nvidia-cuda"' in out


def test_graph_writes_dot(capsys, tiny, tmp_path):
    whole, entry = tmp_path / "whole.dot", tmp_path / "entry.dot"
    assert tflc(capsys, "graph", tiny, "-o", str(whole))[0] == 0
    assert 'digraph "model"' in whole.read_text()
    code, out, _ = tflc(capsys, "graph", tiny, "--step", "double", "--after", "inline",
                        "-o", str(entry))
    assert code == 0 and out == f"wrote {entry}\n" and "mul" in entry.read_text()
    code, _, err = tflc(capsys, "graph", tiny, "--after", "fuse", "-o", str(entry))
    assert code == 1 and "--after works on an entry" in err
    code, _, err = tflc(capsys, "graph", tiny, "-o", str(tmp_path / "x.bmp"))
    assert code == 1


def test_cache_info_and_clear(capsys, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path / "cache"))
    assert tflc(capsys, "run", tiny, "--backend", "llvm", "--fetch", "total",
                "--feed", "x=[1, 2]")[0] == 0
    code, out, _ = tflc(capsys, "cache", "info")
    entries = diskcache.info()["entries"]
    assert code == 0 and out.startswith(f"{tmp_path / 'cache'}: {entries} entries (")
    assert "1 llvm" in out  # the compiled entry; the parsed model and the host are kept too
    assert tflc(capsys, "cache", "clear")[1] == \
        f"removed {entries} entries from {tmp_path / 'cache'}\n"
    assert ": 0 entries, 0 bytes" in tflc(capsys, "cache", "info")[1]
