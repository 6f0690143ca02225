"""tflc: a compiler for tensor graphs."""

from .ir.errors import Error

__all__ = ["Error"]
