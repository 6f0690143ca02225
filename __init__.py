"""tflc: a compiler for tensor graphs.

    m = tflc.load("examples/hello.tfl")
    m.run("a")          # array(9., dtype=float32)
"""

from .ir.errors import Error
from .runtime import Model, load, loads

__all__ = ["Error", "Model", "load", "loads"]
