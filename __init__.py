"""tflc: a compiler for tensor graphs.

    m = tflc.load("examples/hello.tfl")      # a .tfl model: params, state, steps
    m.run("a")                               # array(9., dtype=float32)

    @tflc.jit                                # or a Python function, traced and compiled
    def predict(x, W, b):
        return tflc.softmax(x @ W + b)

The `tflc.*` functions (`tflc.relu`, `tflc.softmax`, ...) are the `.tfl` language's builtins.
"""

from .ir.errors import Error
from .jit import *  # noqa: F403  (jit, grad, value_and_grad, dump and the builtins)
from .jit import __all__ as _jit_names
from .runtime import Model, load, loads
from .version import __version__ as __version__  # re-exported: tflc.__version__

__all__ = ["Error", "Model", "load", "loads", *_jit_names]
