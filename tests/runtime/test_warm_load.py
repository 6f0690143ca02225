"""A model loaded before starts from the cache directory: a process loading it again parses
nothing (lark is not even imported), runs no pass and, where the machine links shared libraries,
does not load LLVM; and it computes what the first one did."""

import json
import os
import subprocess
import sys

from tflc.codegen.llvm import loading

MODEL = """model warm
input x: f32[N, 4]
param W: f32[4, 3] = normal(stddev=0.5)
loss = mean(tanh(x @ W))
train step = sgd(loss, lr=0.1)
"""

LOAD = """
import json, sys
import numpy as np
import tflc
WATCHED = ("lark", "llvmlite.binding", "tflc.passes.fuse")
imported = [m for m in WATCHED if m in sys.modules]
model = tflc.load(sys.argv[1], backend="llvm")
model.run("step", x=np.ones((5, 4), np.float32))
loss = model.run("loss", x=np.ones((5, 4), np.float32))
print(json.dumps({"by_import": imported, "loss": float(loss),
                  "by_load": [m for m in WATCHED if m in sys.modules]}))
"""


def load_in_a_process(path, cache_dir) -> dict:
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True,
                          text=True, env={**os.environ, "TFLC_CACHE_DIR": str(cache_dir)},
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_second_process_loads_everything_from_the_cache(tmp_path):
    path = tmp_path / "warm.tfl"
    path.write_text(MODEL)
    cold = load_in_a_process(path, tmp_path / "cache")
    warm = load_in_a_process(path, tmp_path / "cache")
    assert cold["by_import"] == warm["by_import"] == []  # `import tflc` loads none of them
    assert cold["by_load"] == ["lark", "llvmlite.binding", "tflc.passes.fuse"]
    assert warm["by_load"] == ([] if loading.linker() else ["llvmlite.binding"])  # MCJIT's
    assert warm["loss"] == cold["loss"]
