"""The numpy backend: a function becomes a readable, standalone Python module using NumPy.

The module holds the `op_*` reference functions of the ops it uses (their source, copied from
the registry, so the op registry stays the one definition of what an op means), then

    def run(sizes, args):
        N = sizes["N"]
        x, W1, b1 = args
        with np.errstate(all="ignore"):
            v0 = np.asarray(op_matmul(x, W1), np.float32)  # mnist.tfl:12:14
            ...
        return [v0, ...]

Every result is converted to its IR dtype as an array (NumPy returns scalars for 0-d results and
may widen integers), so this backend is the reference the others are compared with. Errors are
IEEE: NaN and infinities, no warnings. It is also what `tflc dump --emit python` prints.

With `debug_nans=True` the code checks every float argument when the run starts and every float
op result as it is made (`v0 = check_finite(0, np.asarray(...), x, W1)`); the first NaN or
infinity stops the run with a `tflc.Error` at the op's source line (a gradient op carries its
forward op's), naming the op, the offending elements and a summary of the op's operands.
Constants are not checked: an `inf` written in the source is meant.
"""

from __future__ import annotations

import builtins
import inspect
import json
import keyword
import linecache
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import numpy as np

from ..ir import registry
from ..ir.core import Function, Op, Value
from ..ir.errors import Error
from ..ir.printer import print_function
from ..ir.types import NUMPY_DTYPES, Dim, dtype_of_numpy

INDENT = "    "
# Names the generated code itself uses; values and dims are renamed around them.
RESERVED = frozenset({"np", "sizes", "args", "run", "check_finite", *keyword.kwlist})


class _Names:
    """Python identifiers for dims and values: the user's name made valid (`fc1.W` → `fc1_W`,
    `?1` → `dim1`), else `v0`, `v1`, ...; unique within the module."""

    def __init__(self, reserved):
        self.taken = set(RESERVED) | set(reserved)
        self.values: dict[Value, str] = {}
        self.dims: dict[str, str] = {}
        self.numbers = count()

    def _fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name

    def define_dim(self, dim: str) -> str:
        self.dims[dim] = self._fresh(_identifier(dim.replace("?", "dim")))
        return self.dims[dim]

    def define(self, value: Value, like: Value | None = None) -> str:
        """Names `value` after itself, or after `like` (a fused op's result for its yield)."""
        named = like if like is not None else value
        if named.name is not None:
            name = self._fresh(_identifier(named.name))
        else:
            name = next(f"v{n}" for n in self.numbers if f"v{n}" not in self.taken)
            self.taken.add(name)
        self.values[value] = name
        return name

    def alias(self, value: Value, name: str) -> None:
        self.values[value] = name

    def __getitem__(self, value: Value) -> str:
        return self.values[value]

    def dim_expr(self, dim: Dim) -> str:
        """A dim as Python: `10`, `N`, or a product such as `784*N`."""
        if isinstance(dim, int):
            return str(dim)
        factors = str(dim).split("*")
        return "*".join(f if f.isdigit() else self.dims[f] for f in factors)


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else "v" + name


def _references(func: Function) -> list[Callable]:
    """The reference functions of the ops in `func` (regions included), in order of first use."""
    found: dict[Callable, None] = {}
    for op in _all_ops(func):
        if op.region is None and op.opcode != "const":
            reference = registry.get(op.opcode).reference
            assert reference is not None, f"op {op.opcode} has no NumPy reference (not expanded?)"
            found[reference] = None
    names = [ref.__name__ for ref in found]
    assert len(set(names)) == len(names), f"two references share a name: {sorted(names)}"
    return list(found)


def _all_ops(func: Function):
    for op in func.ops:
        yield op
        if op.region is not None:
            yield from _all_ops(op.region)


def _literal(value) -> str:
    """Python source for an attribute value or constant element."""
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
    if isinstance(value, tuple):
        return _tuple([_literal(v) for v in value])
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a valid Python literal, in the double quotes used elsewhere
    return repr(value)


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _element(x: np.generic) -> str:
    """A float32 element in its shortest form when that reads back exactly (`0.1`, not
    `0.10000000149011612`)."""
    if isinstance(x, np.float32) and math.isfinite(x):
        short = str(x)
        if np.float32(float(short)) == x:
            return short
    return _literal(x)


def _nested(array: np.ndarray) -> str:
    if array.ndim == 0:
        return _element(array[()])
    return "[" + ", ".join(_nested(a) for a in array) + "]"


def _array(array: np.ndarray) -> str:
    dtype = _numpy_name(array.dtype)
    if array.size == 0:
        return f"np.zeros({array.shape!r}, {dtype})"
    return f"np.array({_nested(array)}, {dtype})"


def _numpy_name(dtype) -> str:
    name = np.dtype(dtype).name
    return "np.bool_" if name == "bool" else f"np.{name}"  # np.bool is missing in NumPy 1.x


def _dtype(value: Value) -> str:
    return _numpy_name(NUMPY_DTYPES[value.type.dtype])


class _Emitter:
    def __init__(self, func: Function, reserved, debug_nans: bool = False):
        self.names = _Names(reserved)
        self.lines: list[str] = []
        self.func = func
        self.debug_nans = debug_nans
        self.sites: list[Site] = []  # what each check_finite(site, ...) checks, by number

    def checked(self, expr: str, value: Value, op: Op | None) -> str:
        """`expr`, wrapped in a NaN/Inf check when debugging and the value is a float."""
        if not (self.debug_nans and value.type.is_float):
            return expr
        self.sites.append(Site(op, value))
        operands = [self.names[v] for v in op.operands] if op is not None else []
        return f"check_finite({', '.join([str(len(self.sites) - 1), expr, *operands])})"

    def emit_op(self, op: Op, indent: str) -> None:
        if op.region is not None:
            self.emit_region(op, indent)
            return
        assert len(op.results) == 1, f"{op.opcode} has {len(op.results)} results"
        result = op.result
        if op.opcode == "const":
            expr = _array(np.asarray(op.attrs["value"], NUMPY_DTYPES[result.type.dtype]))
        else:
            expr = self.checked(f"np.asarray({self.call(op)}, {_dtype(result)})", result, op)
        target = self.names.values.get(result) or self.names.define(result)
        line = f"{indent}{target} = {expr}"
        self.lines.append(line + (f"  # {op.loc}" if op.loc is not None else ""))

    def call(self, op: Op) -> str:
        reference = registry.get(op.opcode).reference
        parameters = inspect.signature(reference).parameters
        arguments = [self.names[v] for v in op.operands]
        for name, value in op.attrs.items():
            assert name in parameters, f"{reference.__name__} takes no attribute {name!r}"
            arguments.append(f"{name}={_literal(value)}")
        if "out_shape" in parameters:
            shape = op.result.type.shape
            arguments.append(f"out_shape={_tuple([self.names.dim_expr(d) for d in shape])}")
        return f"{reference.__name__}({', '.join(arguments)})"

    def emit_region(self, op: Op, indent: str) -> None:
        """A fused op: its region's ops run inline on the op's operands."""
        region = op.region
        self.lines.append(f"{indent}# {op.opcode}" + (f" ({op.loc})" if op.loc else ""))
        for arg, operand in zip(region.args, op.operands):
            self.names.alias(arg, self.names[operand])
        for result, out in zip(op.results, region.outputs):
            if result.name and out.value not in region.args and out.value not in self.names.values:
                self.names.define(out.value, like=result)  # the user's names survive fusion
        for inner in region.ops:
            self.emit_op(inner, indent)
        for result, out in zip(op.results, region.outputs):
            self.names.alias(result, self.names[out.value])

    def run_function(self) -> list[str]:
        func = self.func
        lines = ["def run(sizes, args):"]
        for dim in func.dims:
            lines.append(f"{INDENT}{self.names.define_dim(dim)} = sizes[{json.dumps(dim)}]")
        if func.args:
            names = [self.names.define(arg) for arg in func.args]
            target = ", ".join(names) + ("," if len(names) == 1 else "")
            lines.append(f"{INDENT}{target} = args")
            lines += [f"{INDENT}{self.checked(self.names[arg], arg, None)}"
                      for arg in func.args if self.debug_nans and arg.type.is_float]
        if func.ops:
            lines.append(f'{INDENT}with np.errstate(all="ignore"):')
            for op in func.ops:
                self.emit_op(op, INDENT * 2)
            lines += self.lines
        outputs = ", ".join(self.names[out.value] for out in func.outputs)
        lines.append(f"{INDENT}return [{outputs}]")
        return lines


def emit(func: Function, debug_nans: bool = False) -> str:
    """The standalone Python module computing `func` (see the module docstring)."""
    return _generate(func, debug_nans)[0]


def _generate(func: Function, debug_nans: bool) -> tuple[str, list[Site]]:
    references = _references(func)
    for value in _typed_values(func):
        unknown = [s for s in value.type.symbols if s not in func.dims]
        assert not unknown, f"{value} uses dims {unknown} missing from the function's dims"
    outputs = ", ".join(out.label if out.step is None else f"{out.step}: {out.label} <-"
                        for out in func.outputs)
    header = (f'"""Generated by tflc\'s numpy backend from\n\n'
              f"{print_function(func).splitlines()[0].rstrip(' {')}\n\n"
              "run(sizes, args): `sizes` maps each dim to its size, `args` follow the arguments;"
              f"\nit returns the outputs in order ({outputs or 'none'}).\n"
              '"""\n\nimport numpy as np')
    parts = [header]
    parts += [inspect.getsource(reference).rstrip() for reference in references]
    if debug_nans:
        parts.append(inspect.getsource(check_finite).rstrip())
    emitter = _Emitter(func, [reference.__name__ for reference in references], debug_nans)
    parts.append("\n".join(emitter.run_function()))
    return "\n\n\n".join(parts) + "\n", emitter.sites


def _typed_values(func: Function):
    yield from func.args
    for op in _all_ops(func):
        yield from op.results


@dataclass(frozen=True)
class Compiled:
    """`compiled(sizes, args) -> list of arrays`, per the backend contract."""

    func: Function
    source: str
    run: Callable
    sites: tuple[Site, ...] = ()  # with debug_nans: what each check checks

    def __call__(self, sizes: dict[str, int], args: list[np.ndarray]) -> list[np.ndarray]:
        if not self.sites:
            return self.run(sizes, args)
        try:
            return self.run(sizes, args)
        except FloatingPointError as e:  # raised by check_finite, nothing else (errstate)
            site, result, operands = e.args
            raise self.sites[site].error(result, operands) from None


_compiled_count = count()


def compile(func: Function, debug_nans: bool = False) -> Compiled:  # noqa: A001  (the contract)
    source, sites = _generate(func, debug_nans)
    filename = f"<tflc numpy @{func.name} #{next(_compiled_count)}>"
    # Registered so that a traceback through generated code shows its lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(builtins.compile(source, filename, "exec"), namespace)
    return Compiled(func, source, namespace["run"], tuple(sites))


# -- debug_nans ----------------------------------------------------------------------------------

def check_finite(site, result, *operands):
    """debug_nans: stops the run at the first value holding a NaN or an infinity."""
    if not np.isfinite(result).all():
        raise FloatingPointError(site, result, operands)
    return result


SHOWN = 3  # offending elements shown in a debug_nans error


@dataclass(frozen=True)
class Site:
    """A checked value: the result of `op`, or (op None) an argument of the function."""

    op: Op | None
    value: Value

    def error(self, result: np.ndarray, operands: tuple) -> Error:
        found = _non_finite(result)
        if self.op is None:
            return Error(f"debug_nans:{_named(self.value)} {_shape(result)} holds NaN or Inf "
                         f"when the run starts: {found}",
                         hint="it was fed so, restored from a checkpoint, or made by a run "
                              "without debug_nans")
        notes = tuple((f"operand {n}{_named(value)}: {_summary(array)}", None)
                      for n, (value, array) in enumerate(zip(self.op.operands, operands), 1))
        return Error(f"debug_nans: `{self.op.opcode}` made NaN or Inf in its result"
                     f"{_named(self.value)} {_shape(result)}: {found}", self.op.loc, notes=notes,
                     hint="an op not written on that line is part of its gradient "
                          "(gradient ops carry the line of the op they differentiate)")


def _non_finite(result: np.ndarray) -> str:
    """How many elements are NaN or infinite, of which kinds, and the first few with indices."""
    if result.ndim == 0:
        return f"its value is {result[()]}"
    bad = ~np.isfinite(result)
    kinds = {"NaN": np.isnan(result), "+Inf": np.isposinf(result), "-Inf": np.isneginf(result)}
    counts = ", ".join(f"{int(mask.sum())} {kind}" for kind, mask in kinds.items() if mask.any())
    shown = ", ".join(f"[{', '.join(map(str, index))}] = {result[tuple(index)]}"
                      for index in np.argwhere(bad)[:SHOWN])
    return f"{int(bad.sum())} of {result.size} elements are not finite ({counts}): {shown}"


def _shape(array: np.ndarray) -> str:
    return f"{dtype_of_numpy(array.dtype) or array.dtype}[{','.join(map(str, array.shape))}]"


def _named(value: Value) -> str:
    return f" '{value.name}'" if value.name else ""


def _summary(array: np.ndarray) -> str:
    """dtype and shape, min and max, and whether it holds NaN or Inf."""
    if array.size == 0:
        return f"{_shape(array)}, empty"
    if array.dtype.kind == "b":
        return f"{_shape(array)}, {int(array.sum())} true"
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    span = f"min {finite.min()}, max {finite.max()}" if finite.size else "no finite element"
    flags = [kind for kind, present in (("NaN", np.isnan(array).any()),
                                        ("Inf", np.isinf(array).any())) if present]
    return f"{_shape(array)}, {span}, " + (f"has {' and '.join(flags)}" if flags else
                                           "no NaN or Inf")

