"""Tracing: Python code run on abstract tensors records IR, for `@tflc.jit`.

A `Tracer` stands for a tensor whose value is not known while the function is traced. Every
operator, method and `tflc.*` call on one emits an op through `ir.Builder` into the active
`Trace` (so the op registry type-checks it on the spot, at the user's line) and returns the
tracer of the result. Python code that needs a value (`if x > 0`, `float(x)`, `range(n)` of a
symbolic size) raises a `tflc.Error` at the user's line, since the value exists only at run time.

Weak values have no dtype of their own. Python and NumPy scalars, Python scalar arguments and
sizes read from `.shape` take the dtype of the tensor they meet, as literals do in `.tfl`
(`x * 2` stays f32); a result is weak when all its operands are. NumPy arrays are strong
constants: they keep their dtype.

Symbolic dims: the caller (jit) decides which dims of the arguments are symbolic and which of
those may still become static (`Trace.specializable`). When an op's type rule fails on such a
dim but would pass with its traced size (`x @ W` where W's leading dim is symbolic), or indexing
needs its size, tracing raises `Specialize` and the caller traces again with that dim static.
"""

from __future__ import annotations

import itertools
import linecache
import numbers
import os
import re
import sys
import threading

import numpy as np

from ..ir.builder import Builder, result_type
from ..ir.core import Value
from ..ir.errors import Error, Loc
from ..ir.registry import ShapeError
from ..ir.types import (DTYPES, NUMPY_DTYPES, Dim, TensorType, dim_product, dim_symbols,
                        dtype_of_numpy)

# -- where the user's code is --------------------------------------------------------------------

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERNAL_DIRS = tuple(os.path.join(_ROOT, stage) + os.sep
                       for stage in ("frontend", "ir", "passes", "codegen", "runtime"))
_INTERNAL_FILES = frozenset(os.path.join(_ROOT, name) for name in ("jit.py", "__init__.py"))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep


def _is_internal(filename: str) -> bool:
    return (filename in _INTERNAL_FILES or filename.startswith(_INTERNAL_DIRS)
            or filename.startswith(_NUMPY_DIR))


def user_loc() -> Loc | None:
    """The location of the innermost frame that is the user's code (not tflc's, not NumPy's)."""
    frame = sys._getframe(1)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return None if frame is None else frame_loc(frame)


def frame_loc(frame) -> Loc:
    filename, line, col = frame.f_code.co_filename, frame.f_lineno, 1
    positions = getattr(frame.f_code, "co_positions", None)  # Python 3.11+: columns
    if positions is not None and frame.f_lasti >= 0:
        start = next(itertools.islice(positions(), frame.f_lasti // 2, None), None)
        if start is not None and start[0] == line and start[2] is not None:
            col = start[2] + 1
    text = linecache.getline(filename, line).rstrip("\n") or None
    shown = os.path.relpath(filename) if os.path.isabs(filename) else filename
    if shown.startswith(".."):
        shown = filename
    return Loc(shown, line, col, text)


# -- the trace -----------------------------------------------------------------------------------

_threads = threading.local()  # each thread traces on its own: `traces`, innermost last


def _active() -> list[Trace]:
    if not hasattr(_threads, "traces"):
        _threads.traces = []
    return _threads.traces


def current_trace() -> Trace | None:
    traces = _active()
    return traces[-1] if traces else None


class Specialize(BaseException):
    """Tracing needs the size of these symbolic dims: trace again with them static.

    A BaseException, so that a user's `except Exception` in the traced function lets it pass.
    """

    def __init__(self, symbols):
        super().__init__(", ".join(symbols))
        self.symbols = tuple(symbols)


class Trace:
    """The ops recorded while one function runs on tracers. `sizes` holds the traced size of
    every symbolic dim; `specializable` those that may become static (see the module doc)."""

    def __init__(self, sizes: dict[str, int], specializable=()):
        self.builder = Builder()
        self.sizes = dict(sizes)
        self.specializable = frozenset(specializable)
        self.args: list[Value] = []
        self._dims: dict[tuple[int, int], Tracer] = {}  # (id(value), axis) → its size
        self._constants: dict[int, tuple[np.ndarray, Tracer]] = {}  # id(array) → its const
        self._streams = itertools.count()

    def __enter__(self) -> Trace:
        _active().append(self)
        return self

    def __exit__(self, *exc) -> None:
        _active().remove(self)

    def arg(self, type: TensorType, name: str, weak: bool = False) -> Tracer:
        value = Value(type, name)
        self.args.append(value)
        return Tracer(self, value, weak)

    def next_stream(self) -> int:
        """A fresh random stream for each dropout, so two dropouts draw different masks."""
        return next(self._streams)

    def emit(self, opcode: str, *operands: Tracer, weak: bool | None = None,
             dim: Dim | None = None, **attrs) -> Tracer:
        loc = user_loc()
        values = tuple(t.value for t in operands)
        try:
            result_type(opcode, tuple(v.type for v in values), attrs)
        except ShapeError as e:
            self._shape_error(opcode, values, attrs, e, loc)
        value = self.builder.emit(opcode, *values, loc=loc, **attrs)
        if weak is None:
            weak = bool(operands) and all(t.weak for t in operands)
        return Tracer(self, value, weak, dim)

    def constant(self, value) -> Tracer:
        """A strong constant: a NumPy array (or anything `np.asarray` takes) of its own dtype."""
        if isinstance(value, np.ndarray) and id(value) in self._constants:
            return self._constants[id(value)][1]
        array = np.asarray(value)
        result = self.emit("const", value=np.array(array, dtype=numpy_dtype(array.dtype)))
        if isinstance(value, np.ndarray):  # keep the array alive so its id stays its own
            self._constants[id(value)] = (value, result)
        return result

    def literal(self, value, dtype: str) -> Tracer:
        """A weak constant: a Python or NumPy scalar (or nested list of them) taking `dtype`."""
        source = literal_dtype(value)
        if not _converts(source, dtype):
            raise Error(f"{_describe(value)} cannot take the dtype {dtype} of the tensor it "
                        "meets", user_loc(), hint=_CAST_HINT)
        return self.emit("const", value=np.asarray(value, dtype=NUMPY_DTYPES[dtype]), weak=True)

    def dim_size(self, x: Tracer, axis: int) -> Tracer:
        """`x.shape[axis]` at run time: a weak i64 scalar that remembers which dim it is."""
        key = (id(x.value), axis)
        if key not in self._dims:
            size = self.emit("shape", x, axis=axis, weak=True)
            size.dim = x.type.shape[axis]
            self._dims[key] = size
        return self._dims[key]

    def need_static(self, dim, what: str) -> None:
        """Raises `Specialize` for a symbolic `dim` whose size `what` needs, or an error when the
        user marked it symbolic."""
        symbols = dim_symbols(dim)
        if all(s in self.specializable for s in symbols):
            raise Specialize(symbols)
        raise Error(f"{what} needs the size of dim {dim}, which is marked symbolic",
                    user_loc(), hint=_MARKED_HINT)

    def _shape_error(self, opcode, values, attrs, error, loc):
        """A type rule failed. If it passes once some specializable symbols take their traced
        sizes, those dims must be static: `Specialize`. Otherwise it is the user's mistake,
        reported with the actual sizes of the default symbolic dims."""
        types = [v.type for v in values]
        symbols = list(dict.fromkeys([s for t in types for s in t.symbols]
                                     + [s for d in _attr_dims(attrs) for s in dim_symbols(d)]))
        free = [s for s in symbols if s in self.specializable]

        def failure(names):  # the rule's complaint with `names` replaced by their sizes
            sizes = {s: self.sizes[s] for s in names}
            try:
                result_type(opcode, tuple(t.with_shape(_substitute(d, sizes) for d in t.shape)
                                          for t in types), _substitute_attrs(attrs, sizes))
            except ShapeError as e:
                return e
            return None

        for symbol in free:
            if failure([symbol]) is None:
                raise Specialize([symbol])
        if free and failure(free) is None:
            raise Specialize(free)
        if len(free) < len(symbols) and failure(symbols) is None:
            raise Error(f"{opcode}: {error}", loc, hint=_MARKED_HINT)
        raise Error(f"{opcode}: {_blame(error, free, failure)}", loc)


def _blame(error: ShapeError, free: list[str], failure) -> ShapeError:
    """The complaint to show: with the symbols that it names replaced by their sizes (those
    dims are at fault), keeping the others symbolic (a batch dim reads better as N):
    `f32[N,784] @ f32[300,10]: inner dimensions 784 and 300 differ`."""
    named: list[str] = []
    while True:
        text = _TYPE_TEXT.sub("", str(error))  # what the rule says, without the types it shows
        more = [s for s in free if s not in named and re.search(rf"\b{re.escape(s)}\b", text)]
        if not more:
            return error
        named += more
        error = failure(named) or failure(free)


_CAST_HINT = "convert explicitly: x.astype(np.float32) or tflc.cast(x, 'f32')"
_MARKED_HINT = ("symbolic_dims= of tflc.jit marks it symbolic; leave it out there so it is "
                "static (the function then recompiles for each size)")


_TYPE_TEXT = re.compile(r"\b(?:f32|f64|i32|i64|bool)\[[^\]]*\]")


def _substitute(dim, sizes: dict[str, int]):
    if isinstance(dim, int):
        return dim
    return dim_product(int(p) if p.isdigit() else sizes.get(p, p) for p in dim.split("*"))


def _attr_dims(attrs) -> list:
    return [d for v in attrs.values() if isinstance(v, list) for d in v if isinstance(d, str)]


def _substitute_attrs(attrs: dict, sizes: dict[str, int]) -> dict:
    return {k: [_substitute(d, sizes) for d in v] if isinstance(v, list) else v
            for k, v in attrs.items()}


# -- dtypes and weak values ----------------------------------------------------------------------

_KIND_ORDER = ("bool", "i32", "i64", "f32", "f64")  # promotion among weak values


def numpy_dtype(dtype) -> np.dtype:
    """`dtype` checked to be one tflc has."""
    if dtype_of_numpy(dtype) is None:
        raise Error(f"unsupported dtype {np.dtype(dtype)} (tflc has float32, float64, int32, "
                    "int64 and bool)", user_loc(), hint=_CAST_HINT)
    return np.dtype(dtype)


def dtype_name(spec) -> str:
    """A dtype given as tflc writes it (`f32`), or as NumPy takes it (`np.float32`, `"float32"`,
    `float`), as tflc's name."""
    if isinstance(spec, str) and spec in DTYPES:
        return spec
    try:
        name = dtype_of_numpy(np.dtype(spec))
    except TypeError:
        name = None
    if name is None:
        raise Error(f"unsupported dtype {spec!r} (tflc has {', '.join(DTYPES)})", user_loc())
    return name


def is_literal(x) -> bool:
    """A weak value given in Python: a Python or NumPy scalar, or a nested list of them."""
    if isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(is_literal(e) for e in x)


def literal_dtype(x) -> str:
    try:
        array = np.asarray(x)
    except ValueError:
        raise Error(f"{_describe(x)} is not a rectangular array", user_loc()) from None
    return dtype_of_numpy(numpy_dtype(array.dtype))


def _converts(source: str, target: str) -> bool:
    """Whether a weak value of dtype `source` may silently take dtype `target`: never a float
    into an integer, nor a number into a bool."""
    if target == "bool":
        return source == "bool"
    return not (source in ("f32", "f64") and target in ("i32", "i64"))


def _describe(x) -> str:
    if isinstance(x, Tracer):
        return f"the weak {x.type} value"
    return f"the {type(x).__name__} {x!r}"


def promote(*xs) -> list[Tracer]:
    """The operands of one elementwise op as tracers of one dtype: weak ones take the dtype of
    the strong ones (the first strong one; strong ones that differ are left for the op's type
    rule to report); among weak ones only, the widest wins (bool < int < float)."""
    trace = trace_of(xs)
    items = [x if isinstance(x, Tracer) or is_literal(x) else trace.constant(x) for x in xs]
    tracers = [x for x in items if isinstance(x, Tracer)]
    strong = [t.type.dtype for t in tracers if not t.weak]
    if strong:
        target = strong[0]
    else:
        weak = [t.type.dtype for t in tracers] + [literal_dtype(x) for x in items
                                                  if not isinstance(x, Tracer)]
        target = max(weak, key=_KIND_ORDER.index)
    return [_to_dtype(trace, x, target) for x in items]


def _to_dtype(trace: Trace, x, dtype: str) -> Tracer:
    if not isinstance(x, Tracer):
        return trace.literal(x, dtype)
    if x.type.dtype == dtype or not x.weak:
        return x
    if not _converts(x.type.dtype, dtype):
        raise Error(f"{_describe(x)} cannot take the dtype {dtype} of the tensor it meets",
                    user_loc(), hint=_CAST_HINT)
    return trace.emit("cast", x, dtype=dtype, weak=True)


def trace_of(xs) -> Trace:
    """The active trace, checking that every tracer among `xs` belongs to it."""
    trace = current_trace()
    for x in xs:
        if isinstance(x, Tracer) and x.trace is not trace:
            raise Error("a traced value is used outside the function call that traced it "
                        "(it was kept from an earlier trace, e.g. in a global or a closure)",
                        user_loc(), hint="return it from the jitted function instead")
    if trace is None:
        raise Error("tracing is not active", user_loc())
    return trace


def as_tracer(x) -> Tracer:
    """One operand as a tracer: tracers as they are, literals weak, anything else a constant."""
    trace = trace_of([x])
    if isinstance(x, Tracer):
        return x
    if is_literal(x):
        return trace.literal(x, literal_dtype(x))
    return trace.constant(x)


# -- operations used by Tracer's operators and by the tflc.* functions --------------------------

def unary(opcode: str, x) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit(opcode, x)


def binary(opcode: str, a, b) -> Tracer:
    dims = [_size_of(a), _size_of(b)]
    dim = None
    if opcode == "mul" and None not in dims and Tracer in (type(a), type(b)):
        dim = dim_product(dims)  # x.shape[0] * 28 is still a size reshape can take
    a, b = promote(a, b)
    return a.trace.emit(opcode, a, b, dim=dim)


def _size_of(x):
    """The dim `x` is, if it is one: a size read from `.shape`, or a Python int."""
    if isinstance(x, Tracer):
        return x.dim
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return int(x)
    return None


def where(cond, a, b) -> Tracer:
    cond = as_tracer(cond)
    a, b = promote(a, b)
    return cond.trace.emit("where", cond, a, b)


def cast(x, dtype) -> Tracer:
    x = as_tracer(x)
    name = dtype_name(dtype)
    if x.type.dtype == name:
        return Tracer(x.trace, x.value, weak=False)  # a strong view of the same value
    return x.trace.emit("cast", x, dtype=name, weak=False)


def reduce(opcode: str, x, axis=None, keepdims: bool = False) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit(opcode, x, axis=axis_attr(axis), keepdims=keepdims)


def arg_reduce(opcode: str, x, axis) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit(opcode, x, axis=axis_attr(axis))


def axis_attr(axis):
    if isinstance(axis, (tuple, list)):
        return [python_int(a, "axis") for a in axis]
    return None if axis is None else python_int(axis, "axis")


def python_int(x, what: str) -> int:
    if isinstance(x, Tracer):
        raise Error(f"{what} must be a Python int, not a traced value", user_loc(),
                    hint="pass it as a static argument (static_argnums)")
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise Error(f"{what} must be an int, got {x!r}", user_loc())
    return int(x)


def sizes_attr(shape, what: str) -> list:
    """A shape given in Python (ints, -1, sizes read from `.shape`) as an attribute."""
    if isinstance(shape, (int, np.integer, Tracer)):
        shape = (shape,)
    sizes = []
    for size in shape:
        if isinstance(size, Tracer):
            if size.dim is None:
                raise Error(f"{what}: sizes must be ints or sizes read from x.shape, got a "
                            "computed value", user_loc(),
                            hint="compute it from x.shape entries with * only, or make the "
                                 "dims static")
            sizes.append(size.dim)
        else:
            sizes.append(python_int(size, f"{what}: size"))
    return sizes


def reshape(x, shape) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit("reshape", x, shape=sizes_attr(shape, "reshape"))


def broadcast_to(x, shape) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit("broadcast_to", x, shape=sizes_attr(shape, "broadcast_to"))


def transpose(x, perm=None) -> Tracer:
    x = as_tracer(x)
    return x.trace.emit("transpose", x, perm=None if perm is None else axis_attr(list(perm)))


def getitem(x: Tracer, index) -> Tracer:
    """`x[...]` with ints, `start:stop` slices, `...` and `None`: a `slice` op, then a `reshape`
    that drops the axes indexed by ints and adds those of `None`."""
    entries = list(index) if isinstance(index, tuple) else [index]
    for entry in entries:
        if not (entry is None or entry is Ellipsis or isinstance(entry, slice)
                or isinstance(entry, numbers.Integral) and not isinstance(entry, bool)):
            raise Error(f"indexing with {_index_text(entry)} is not supported while tracing: "
                        "only ints, start:stop slices, ... and None", user_loc(),
                        hint="select with tflc.where, or with tflc.one_hot and a sum")
    if entries.count(Ellipsis) > 1:
        raise Error("an index can only have a single ellipsis ('...')", user_loc())
    used = len([e for e in entries if e is not None and e is not Ellipsis])
    rank = x.type.rank
    if used > rank:
        raise Error(f"too many indices for {x.type}: {used} given", user_loc())
    at = entries.index(Ellipsis) if Ellipsis in entries else len(entries)
    entries[at:at + 1] = [slice(None)] * (rank - used)  # `...`, or the axes left at the end
    begin, size, shape, axis = [], [], [], 0
    for entry in entries:
        if entry is None:
            shape.append(1)
            continue
        dim = x.type.shape[axis]
        start, length = _index_bounds(x, axis, dim, entry)
        begin.append(start)
        size.append(length)
        if isinstance(entry, slice):
            shape.append(dim if length == -1 else length)
        axis += 1
    result = x
    if any(s != -1 for s in size):
        result = x.trace.emit("slice", x, begin=begin, size=size)
    if list(result.type.shape) != shape:
        result = result.trace.emit("reshape", result, shape=shape)
    return result


def _index_bounds(x: Tracer, axis: int, dim, entry) -> tuple[int, int]:
    """(begin, size) of one index entry on one axis; size -1 takes the whole axis."""
    if isinstance(entry, slice):
        for bound in (entry.start, entry.stop, entry.step):
            if bound is not None and not isinstance(bound, numbers.Integral):
                raise Error(f"slice bounds must be ints, got {_index_text(bound)}", user_loc(),
                            hint="make the bound a static argument (static_argnums)")
        if entry.step not in (None, 1):
            raise Error(f"slices with a step ({entry.step}) are not supported", user_loc(),
                        hint="reshape or transpose instead")
        if entry.start in (None, 0) and entry.stop is None:
            return 0, -1
        if isinstance(dim, str):
            x.trace.need_static(dim, f"slicing axis {axis} of {x.type}")
        start, stop, _ = entry.indices(dim)
        return start, max(0, stop - start)
    if isinstance(dim, str):
        x.trace.need_static(dim, f"indexing axis {axis} of {x.type}")
    if not -dim <= entry < dim:
        raise Error(f"index {entry} is out of bounds for axis {axis} of {x.type}", user_loc())
    return int(entry) % dim, 1


def _index_text(entry) -> str:
    return "a traced value" if isinstance(entry, Tracer) else f"{type(entry).__name__} {entry!r}"


# NumPy's ufuncs that have an op of the same meaning (`np.exp(x)` on a tracer emits `exp`).
UNARY_UFUNCS = {"negative": "neg", "absolute": "abs", "sign": "sign", "exp": "exp", "log": "log",
                "sqrt": "sqrt", "square": "square", "sin": "sin", "cos": "cos", "tanh": "tanh",
                "logical_not": "not"}
BINARY_UFUNCS = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div",
                 "power": "pow", "maximum": "maximum", "minimum": "minimum", "equal": "eq",
                 "not_equal": "ne", "less": "lt", "less_equal": "le", "greater": "gt",
                 "greater_equal": "ge", "logical_and": "and", "logical_or": "or",
                 "matmul": "matmul"}


# -- the tracer ----------------------------------------------------------------------------------

def _binary_method(opcode: str, reflected: bool = False):
    if reflected:
        return lambda self, other: binary(opcode, other, self)
    return lambda self, other: binary(opcode, self, other)


def _value_needed(what: str, hint: str):
    def method(self, *args):
        raise Error(f"{what} of a traced {self.type} value: its value is only known when the "
                    "compiled function runs, not while it is traced", user_loc(), hint=hint)
    return method


_WHERE_HINT = ("choose elementwise with tflc.where(cond, a, b); or, if the value is a setting "
               "known before the call, pass it as a static argument (static_argnums)")
_CONVERT_HINT = ("return the value from the jitted function and convert the result; or pass it "
                 "as a static argument (static_argnums) if it is known before the call")


class Tracer:
    """A tensor being traced: `value` is its IR value in `trace`. Supports NumPy's operators,
    indexing, `.shape`, `.dtype`, `.ndim`, `.T` and a few array methods."""

    __slots__ = ("trace", "value", "weak", "dim")

    def __init__(self, trace: Trace, value: Value, weak: bool = False, dim=None):
        self.trace = trace
        self.value = value
        self.weak = weak
        self.dim = dim  # for a size read from `.shape`: the dim it is (symbolic, e.g. "N")

    def __repr__(self) -> str:
        name = f"{self.value.name}: " if self.value.name else ""
        return f"Tracer({name}{self.type}{', weak' if self.weak else ''})"

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(NUMPY_DTYPES[self.type.dtype])

    @property
    def ndim(self) -> int:
        return self.type.rank

    @property
    def shape(self) -> tuple:
        """Static dims as ints; symbolic ones as traced i64 scalars (their run-time size)."""
        return tuple(d if isinstance(d, int) else self.trace.dim_size(self, axis)
                     for axis, d in enumerate(self.type.shape))

    @property
    def T(self) -> Tracer:  # noqa: N802  (NumPy's name)
        return transpose(self)

    def astype(self, dtype) -> Tracer:
        return cast(self, dtype)

    def reshape(self, *shape) -> Tracer:
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes) -> Tracer:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    def sum(self, axis=None, keepdims=False) -> Tracer:
        return reduce("sum", self, axis, keepdims)

    def mean(self, axis=None, keepdims=False) -> Tracer:
        return reduce("mean", self, axis, keepdims)

    def max(self, axis=None, keepdims=False) -> Tracer:
        return reduce("max", self, axis, keepdims)

    def min(self, axis=None, keepdims=False) -> Tracer:
        return reduce("min", self, axis, keepdims)

    def prod(self, axis=None, keepdims=False) -> Tracer:
        return reduce("prod", self, axis, keepdims)

    def argmax(self, axis) -> Tracer:
        return arg_reduce("argmax", self, axis)

    def argmin(self, axis) -> Tracer:
        return arg_reduce("argmin", self, axis)

    def __getitem__(self, index) -> Tracer:
        return getitem(self, index)

    def __setitem__(self, index, value):
        raise Error("traced values cannot be assigned to in place (x[...] = v)", user_loc(),
                    hint="build the result instead: tflc.where(mask, v, x), or tflc.concat")

    __add__, __radd__ = _binary_method("add"), _binary_method("add", True)
    __sub__, __rsub__ = _binary_method("sub"), _binary_method("sub", True)
    __mul__, __rmul__ = _binary_method("mul"), _binary_method("mul", True)
    __truediv__, __rtruediv__ = _binary_method("div"), _binary_method("div", True)
    __pow__, __rpow__ = _binary_method("pow"), _binary_method("pow", True)
    __and__, __rand__ = _binary_method("and"), _binary_method("and", True)
    __or__, __ror__ = _binary_method("or"), _binary_method("or", True)
    __eq__, __ne__ = _binary_method("eq"), _binary_method("ne")  # type: ignore[assignment]
    __lt__, __le__ = _binary_method("lt"), _binary_method("le")
    __gt__, __ge__ = _binary_method("gt"), _binary_method("ge")
    __hash__ = None  # type: ignore[assignment]  (== is elementwise, as for NumPy arrays)

    __matmul__, __rmatmul__ = _binary_method("matmul"), _binary_method("matmul", True)

    def __neg__(self) -> Tracer:
        return unary("neg", self)

    def __pos__(self) -> Tracer:
        return self

    def __abs__(self) -> Tracer:
        return unary("abs", self)

    def __invert__(self) -> Tracer:
        return unary("not", self)

    def __floordiv__(self, other):
        raise Error("floor division (//) is not supported on traced values", user_loc(),
                    hint="divide floats with / (cast integers first)")

    __rfloordiv__ = __floordiv__

    __bool__ = _value_needed("the truth value (if, while, and/or/not, bool())", _WHERE_HINT)
    __float__ = _value_needed("float()", _CONVERT_HINT)
    __int__ = _value_needed("int()", _CONVERT_HINT)
    __complex__ = _value_needed("complex()", _CONVERT_HINT)

    def __index__(self) -> int:
        if isinstance(self.dim, int):  # tflc.shape of a static dim
            return self.dim
        if self.dim is not None:
            raise Error(f"a symbolic size ({self.dim}) is used as a Python int (range, "
                        "np.zeros, a slice bound, ...): it is only known at run time",
                        user_loc(), hint=_STATIC_DIM_HINT)
        raise Error(f"a traced {self.type} value is used as a Python int (an index, range, a "
                    "size): its value is only known when the compiled function runs",
                    user_loc(), hint=_CONVERT_HINT)

    def __len__(self) -> int:
        if self.type.rank == 0:
            raise Error(f"len() of a 0-d {self.type} value", user_loc())
        dim = self.type.shape[0]
        if isinstance(dim, str):
            raise Error(f"len() of a traced {self.type} value: its dim {dim} is symbolic, so "
                        "its size is only known at run time", user_loc(), hint=_STATIC_DIM_HINT)
        return dim

    def __iter__(self):
        for i in range(len(self)):  # unrolled over a static leading dim
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        raise Error(f"a traced {self.type} value cannot become a NumPy array while tracing "
                    "(np.asarray, np.array, a NumPy function without a tflc counterpart)",
                    user_loc(), hint="use the tflc.* function of the same name, or the Python "
                                     "operators, inside a jitted function")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy's ufuncs on tracers (and `ndarray + tracer`) emit the op of the same meaning."""
        name = ufunc.__name__
        if method == "__call__" and not kwargs and name in UNARY_UFUNCS:
            return unary(UNARY_UFUNCS[name], inputs[0])
        if method == "__call__" and not kwargs and name in BINARY_UFUNCS:
            return binary(BINARY_UFUNCS[name], *inputs)
        raise Error(f"numpy.{name} is not supported on traced values", user_loc(),
                    hint="use the tflc.* function of the same meaning, or the Python operators")

    def __array_function__(self, func, types, args, kwargs):
        raise Error(f"numpy.{func.__name__} is not supported on traced values", user_loc(),
                    hint=f"use tflc.{func.__name__} if it exists, or the array method "
                         f"(x.sum(), x.reshape(...), ...)")


_STATIC_DIM_HINT = ("use x.shape[i] only in tflc ops (reshape, broadcast_to, arithmetic), or "
                    "make the dim static: tflc.jit(f, symbolic_dims={'x': ()})")
