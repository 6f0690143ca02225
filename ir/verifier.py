"""Checks the IR's invariants: SSA, registered ops, complete attributes, types that agree with
the type rules, well-formed outputs and decls. Run after every pass in tests and in debug mode.

A failure is a bug in the compiler, not a user's mistake, so it raises `VerifyError` (not
`tflc.Error`) naming the function, what is wrong, and the op as a dump prints it.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from . import registry
from .builder import result_type
from .core import Decl, Function, Init, Module, Op, Output, Value
from .errors import Loc
from .printer import IDENT, Namer, print_body, print_op
from .types import NUMPY_DTYPES, TensorType

DECL_KINDS = ("input", "param", "state", "counter")


class VerifyError(Exception):
    """The IR breaks an invariant (a compiler bug)."""


def verify(ir: Function | Module) -> None:
    """Raises `VerifyError` at the first broken invariant of a function or a whole module."""
    if isinstance(ir, Module):
        _verify_module(ir)
    elif isinstance(ir, Function):
        _FunctionChecker(ir).check()
    else:
        raise VerifyError(f"expected a Function or a Module, got {type(ir).__name__}")


def _verify_module(module: Module) -> None:
    if not isinstance(module.name, str) or not module.name:
        raise VerifyError(f"module name {module.name!r} is not a non-empty string")
    decls: dict[str, Decl] = {}
    for decl in module.decls:
        _check_decl(decl)
        if decl.name in decls:
            raise VerifyError(f"decl '{decl.name}' is declared twice")
        decls[decl.name] = decl
    names = [f.name for f in module.functions]
    for func in module.functions:
        if names.count(func.name) > 1:
            raise VerifyError(f"function @{func.name} is defined twice")
        _FunctionChecker(func).check()
        for out in func.outputs:
            if out.step is None:
                continue
            decl = decls.get(out.label)
            if decl is None or decl.kind not in ("param", "state"):
                raise VerifyError(f"in @{func.name}: step '{out.step}' updates '{out.label}', "
                                  "which is not a param or a state")
            if out.value.type != decl.type:
                raise VerifyError(f"in @{func.name}: step '{out.step}' gives {out.label} the "
                                  f"type {out.value.type}, but it is declared {decl.type}")


def _check_decl(decl: Decl) -> None:
    if not isinstance(decl, Decl):
        raise VerifyError(f"a module's decls hold {type(decl).__name__}, not Decl")
    what = f"decl '{decl.name}'"
    if decl.kind not in DECL_KINDS:
        raise VerifyError(f"{what}: kind '{decl.kind}' is not one of {', '.join(DECL_KINDS)}")
    if not isinstance(decl.name, str) or not IDENT.match(decl.name):
        raise VerifyError(f"{what}: the name is not an identifier")
    if not isinstance(decl.type, TensorType):
        raise VerifyError(f"{what}: type {decl.type!r} is not a TensorType")
    if decl.loc is not None and not isinstance(decl.loc, Loc):
        raise VerifyError(f"{what}: loc {decl.loc!r} is not a Loc")
    if decl.kind in ("input", "counter"):
        if decl.init is not None:
            raise VerifyError(f"{what}: an {decl.kind} has no initializer")
        if decl.kind == "counter" and decl.type != TensorType("i64", ()):
            raise VerifyError(f"{what}: a counter is i64[], not {decl.type}")
        return
    if not all(isinstance(d, int) for d in decl.type.shape):
        raise VerifyError(f"{what}: a {decl.kind}'s shape is fixed, not {decl.type}")
    if decl.init is None:
        return
    if not isinstance(decl.init, Init) or not IDENT.match(str(decl.init.kind)):
        raise VerifyError(f"{what}: initializer {decl.init!r} is not an Init with a name")
    for name, value in decl.init.args:
        if not isinstance(name, str) or not IDENT.match(name) or not _printable(value):
            raise VerifyError(f"{what}: initializer argument {name}={value!r} cannot be printed")
    if decl.init.kind == "value":
        value = decl.init.arg("value")
        if not isinstance(value, np.ndarray) or len(decl.init.args) != 1 \
                or value.dtype != NUMPY_DTYPES[decl.type.dtype]:
            raise VerifyError(f"{what}: a value(...) initializer holds one array 'value' of "
                              f"the decl's dtype {decl.type.dtype}")


def _printable(value) -> bool:
    """Whether an attribute value prints as text that reads back (see `printer.format_attr`)."""
    if value is None or isinstance(value, (bool, int, float, str, np.bool_, np.number)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype in [np.dtype(t) for t in NUMPY_DTYPES.values()]
    if isinstance(value, (list, tuple)):
        return all(_printable(v) for v in value)
    return False


class _DisplayNames(Namer):
    """The printer's names for a function's values, so an op in an error reads as in a dump."""

    def define(self, value: Value) -> str:
        if id(value) in self.names:
            return self.names[id(value)]
        return super().define(value)


class _FunctionChecker:
    def __init__(self, func: Function):
        self.func = func
        self.defined: set[int] = set()  # ids of every value defined so far, regions included
        self.names: _DisplayNames | None = None

    def fail(self, message: str, op: Op | None = None) -> NoReturn:
        text = f"in @{self.func.name}: {message}"
        if op is not None:
            text += "\n  " + self.show(op)
        raise VerifyError(text)

    def display_names(self) -> _DisplayNames:
        if self.names is None:
            self.names = _DisplayNames()
            try:  # name every value in the order the printer does; broken IR may stop it early
                for arg in self.func.args:
                    self.names.define(arg)
                print_body(self.func, self.names, "", keyword="return")
            except Exception:
                pass
        return self.names

    def show(self, op: Op) -> str:
        try:
            return print_op(op, self.display_names(), "")[0]
        except Exception as e:
            return f"{op.opcode} ... (cannot be printed: {type(e).__name__}: {e})"

    def name(self, value: Value) -> str:
        return "%" + self.display_names()[value]

    # -- the function --------------------------------------------------------------------------

    def check(self) -> None:
        func = self.func
        if not isinstance(func.name, str) or not IDENT.match(func.name):
            self.fail(f"the function name {func.name!r} is not an identifier")
        visible = self.check_args(func.args)
        symbols = tuple(dict.fromkeys(s for a in func.args for s in a.type.symbols))
        if tuple(func.dims) != symbols:
            self.fail(f"dims <{', '.join(map(str, func.dims))}> are not the symbols of the "
                      f"argument types in order of appearance <{', '.join(symbols)}>")
        self.check_ops(func.ops, visible)
        self.check_outputs(func.outputs, visible, region_of=None)

    def check_args(self, args, outer: frozenset = frozenset()) -> set[int]:
        visible = set(outer)
        for arg in args:
            self.check_definition(arg, "an argument")
            visible.add(id(arg))
        return visible

    def check_definition(self, value, what: str, op: Op | None = None) -> None:
        if not isinstance(value, Value):
            self.fail(f"{what} is a {type(value).__name__}, not a Value", op)
        if not isinstance(value.type, TensorType):
            self.fail(f"{what} has type {value.type!r}, not a TensorType", op)
        if value.name is not None and (not isinstance(value.name, str)
                                       or not IDENT.match(value.name)):
            self.fail(f"{what} is named {value.name!r}, not an identifier", op)
        if id(value) in self.defined:
            self.fail(f"{what} {self.name(value)} is defined twice (SSA)", op)
        self.defined.add(id(value))

    def check_ops(self, ops, visible: set[int]) -> None:
        for op in ops:
            if not isinstance(op, Op):
                self.fail(f"an op is a {type(op).__name__}, not an Op")
            self.check_op(op, visible)
            for result in op.results:
                self.check_definition(result, "a result", op)
                visible.add(id(result))

    def check_op(self, op: Op, visible: set[int]) -> None:
        opdef = registry.REGISTRY.get(op.opcode)
        if opdef is None:
            self.fail(f"op '{op.opcode}' is not registered", op)
        for i, operand in enumerate(op.operands):
            if not isinstance(operand, Value):
                self.fail(f"operand {i} is a {type(operand).__name__}, not a Value", op)
            if id(operand) not in visible:
                self.fail(f"operand {i} {self.name(operand)} is not defined before this op "
                          "(in this function or a region around it)", op)
        if opdef.arity is not None and len(op.operands) != opdef.arity:
            self.fail(f"{op.opcode} takes {opdef.arity} operands, not {len(op.operands)}", op)
        missing = [name for name in opdef.attrs if name not in op.attrs]
        extra = [name for name in op.attrs if name not in opdef.attrs]
        if missing or extra:
            self.fail(f"attributes: missing {missing}, unknown {extra}", op)
        for name, value in op.attrs.items():
            if not _printable(value):
                self.fail(f"attribute {name}={value!r} cannot be printed", op)
        if op.loc is not None and not isinstance(op.loc, Loc):
            self.fail(f"loc {op.loc!r} is not a Loc", op)
        if op.region is None:
            self.check_type_rule(op)
        else:
            self.check_region(op, visible)

    def check_type_rule(self, op: Op) -> None:
        if len(op.results) != 1:
            self.fail(f"{op.opcode} has one result, not {len(op.results)}", op)
        types = tuple(v.type for v in op.operands)
        try:
            expected = result_type(op.opcode, types, op.attrs)
        except Exception as e:  # a ShapeError, or a rule given attributes it cannot read
            self.fail(f"the type rule of {op.opcode} fails: {type(e).__name__}: {e}", op)
        if op.result.type != expected:
            self.fail(f"the result type {op.result.type} is not the type rule's {expected}", op)

    def check_region(self, op: Op, visible: set[int]) -> None:
        region = op.region
        if not isinstance(region, Function):
            self.fail(f"the region is a {type(region).__name__}, not a Function", op)
        arg_types = [getattr(a, "type", None) for a in region.args]
        if arg_types != [v.type for v in op.operands]:
            self.fail("the region's argument types " + _types(arg_types)
                      + " are not the operands' " + _types(v.type for v in op.operands), op)
        inner = self.check_args(region.args, frozenset(visible))
        self.check_ops(region.ops, inner)
        self.check_outputs(region.outputs, inner, region_of=op)
        yielded = [out.value.type for out in region.outputs]
        if yielded != [r.type for r in op.results]:
            self.fail("the region yields " + _types(yielded) + " but the results are "
                      + _types(r.type for r in op.results), op)

    def check_outputs(self, outputs, visible: set[int], region_of: Op | None) -> None:
        where = "the region's" if region_of is not None else "the function's"
        seen = set()
        args = {a.name: a for a in self.func.args if a.name is not None}
        for out in outputs:
            if not isinstance(out, Output) or not isinstance(out.value, Value):
                self.fail(f"{where} outputs hold {out!r}, not an Output of a Value", region_of)
            if id(out.value) not in visible:
                self.fail(f"{where} output '{out.label}' returns {self.name(out.value)}, "
                          "which is not defined there", region_of)
            if region_of is not None:
                if out.step is not None:
                    self.fail(f"the region's output '{out.label}' belongs to a step", region_of)
                continue
            for name in (out.label, out.step):
                if name is not None and (not isinstance(name, str) or not IDENT.match(name)):
                    self.fail(f"output label or step {name!r} is not an identifier")
            if (out.step, out.label) in seen:
                step = f"step '{out.step}' " if out.step else ""
                self.fail(f"{step}output '{out.label}' is given twice")
            seen.add((out.step, out.label))
            updated = args.get(out.label)
            if out.step is not None and updated is not None and updated.type != out.value.type:
                self.fail(f"step '{out.step}' gives {out.label} the type {out.value.type}, "
                          f"but the argument it updates is {updated.type}")


def _types(types) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"
