"""The IR: types, values, ops, the op registry, builder, printer, parser and verifier.

Imports no other stage of tflc.
"""

from . import ops  # noqa: F401  (registers every op)
from .builder import Builder
from .core import Decl, Function, Init, Module, Op, Output, Value
from .errors import Error, Loc
from .parser import parse_function, parse_module
from .printer import print_function, print_module
from .registry import REGISTRY, OpDef, ShapeError
from .types import TensorType
from .verifier import VerifyError, verify

__all__ = ["Builder", "Decl", "Error", "Function", "Init", "Loc", "Module", "Op", "OpDef",
           "Output", "REGISTRY", "ShapeError", "TensorType", "Value", "VerifyError",
           "parse_function", "parse_module", "print_function", "print_module", "verify"]
