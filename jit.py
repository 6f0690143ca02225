"""`@tflc.jit`, `tflc.grad`, `tflc.value_and_grad`: NumPy-style Python compiled by tflc.

    @tflc.jit
    def predict(x, W, b):
        return tflc.softmax(tflc.relu(x @ W + b))

A jitted function is traced (`frontend/tracer.py`) into an IR function once per input signature;
that function goes through the same passes and backends as a `.tfl` model, and later calls with
the same signature run the compiled code. The signature of a call is the structure of its
arguments (tuples, lists, dicts, None), the values of its static arguments, and for every array
in them its dtype, rank and static dims.

Which dims are symbolic: by default the leading dim of every array argument, so a new batch size
does not recompile. Symbolic dims of equal size (at the call that traces) share one name (`N`),
so `x` and `y` of one batch type-check together. A default symbolic dim becomes static when the
function needs its size: `x @ W` needs W's leading dim to be x's 784, so W's becomes static (the
tracer traces again, once). `symbolic_dims={"x": (0, 1)}` marks dims symbolic for good (an op that
needs their size is then an error), and `symbolic_dims={"W": ()}` makes all of W's dims static.

The `tflc.*` functions (`tflc.relu`, `tflc.softmax`, ...) mirror the builtins of the `.tfl`
language. Inside a traced function they emit ops; called on NumPy arrays outside one, they are
compiled and run like a jitted function of their tensor arguments.

Environment: `TFLC_LOG_COMPILES=1` prints each compile and its reason to stderr; `TFLC_DUMP=DIR`
writes each compiled function's IR after every pass, and the backend's code, into DIR.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .frontend import tracer as T
from .frontend.tracer import Specialize, Trace, Tracer, current_trace, user_loc
from .ir import REGISTRY
from .ir.core import Function, Output
from .ir.errors import Error
from .ir.printer import print_function
from .ir.types import NUMPY_DTYPES, TensorType, dtype_of_numpy
from .passes.manager import run_pipeline
from .passes.pipeline import DEFAULT_PIPELINE
from .runtime.backends import DEFAULT_BACKEND, compiler_for, debug_nans_from_environment
from .runtime.model import unaliased

__all__ = [
    "jit", "grad", "value_and_grad", "dump", "Jitted",
    # the builtins of the .tfl language
    "neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "square", "sin", "cos", "tanh",
    "sigmoid", "relu", "softplus", "logical_not", "pow", "maximum", "minimum", "logical_and",
    "logical_or", "matmul", "clip", "where", "cast", "sum", "mean", "max", "min", "prod",
    "reduce_sum", "reduce_mean", "reduce_max", "argmax", "argmin", "reshape", "transpose",
    "expand_dims", "squeeze", "broadcast_to", "concat", "slice", "one_hot", "shape", "softmax",
    "log_softmax", "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits", "dropout", "mse",
]


# -- pytrees: tuples, lists, dicts and None of arrays --------------------------------------------

LEAF = "*"


def flatten(tree, path: str, leaves: list) -> Any:
    """Appends the leaves of `tree` to `leaves` as (path, value), e.g. ("params.W1", array), and
    returns its structure (hashable, for `unflatten` and for cache keys). Dicts go by sorted key."""
    if tree is None:
        return ("none",)
    if isinstance(tree, dict):
        keys = sorted(tree, key=str)
        return ("dict", tuple(keys),
                tuple(flatten(tree[k], f"{path}.{k}", leaves) for k in keys))
    if isinstance(tree, (tuple, list)):
        kind = type(tree) if hasattr(tree, "_fields") else type(tree).__name__  # namedtuples
        return (kind, tuple(flatten(v, f"{path}.{i}", leaves) for i, v in enumerate(tree)))
    leaves.append((path, tree))
    return LEAF


def unflatten(structure, leaves):
    """The tree of `structure` with its leaves taken in order from the iterator `leaves`."""
    if structure == LEAF:
        return next(leaves)
    kind = structure[0]
    if kind == "none":
        return None
    if kind == "dict":
        return {k: unflatten(s, leaves) for k, s in zip(structure[1], structure[2])}
    children = [unflatten(s, leaves) for s in structure[1]]
    if kind == "list":
        return children
    return tuple(children) if kind == "tuple" else kind(*children)


def _freeze(value, what: str):
    """A static value as part of a cache key: hashable, and telling 1, 1.0 and True apart."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v, what) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _freeze(v, what)) for k, v in sorted(value.items(), key=str)))
    try:
        hash(value)
    except TypeError:
        raise Error(f"{what}: a static value must be hashable, got {type(value).__name__}",
                    user_loc(), hint="pass arrays as ordinary (traced) arguments") from None
    return (type(value).__name__, value)


def _ir_name(path: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.]", "_", path).lstrip("_.") or "arg"
    return name if name[0].isalpha() else "arg" + name


# -- one call's arguments ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Leaf:
    """One array of a call: `symbolic` are the axes that are symbolic unless specialized;
    `marked` says the user marked them (they may not become static)."""

    path: str
    dtype: np.dtype
    shape: tuple[int, ...]
    weak: bool
    symbolic: tuple[int, ...]
    marked: bool
    array: np.ndarray | None = field(default=None, compare=False)

    @property
    def static_shape(self) -> tuple:
        return tuple(None if axis in self.symbolic else size
                     for axis, size in enumerate(self.shape))


@dataclass(frozen=True)
class _Call:
    bound: inspect.BoundArguments | None
    statics: tuple  # (name, frozen value) of each static argument
    structures: tuple  # (name, structure) of each traced argument
    leaves: tuple[_Leaf, ...]

    def summary(self) -> _Call:
        """This call without its values: what a compiled entry keeps to explain later compiles."""
        return _Call(None, self.statics, self.structures,
                     tuple(replace(leaf, array=None) for leaf in self.leaves))

    @property
    def symbolic_dims(self) -> list[tuple[int, int]]:
        return [(i, axis) for i, leaf in enumerate(self.leaves) for axis in leaf.symbolic]

    @functools.cached_property
    def key(self) -> tuple:
        """What decides the traced function, but the sizes of the symbolic dims (`_Entry.matches`
        checks those)."""
        leaves = tuple((leaf.dtype.str, leaf.weak, leaf.static_shape) for leaf in self.leaves)
        return (self.statics, self.structures, leaves)

    def size(self, dim: tuple[int, int]) -> int:
        return self.leaves[dim[0]].shape[dim[1]]


def _leaf_array(path: str, value) -> tuple[np.ndarray, bool]:
    """An argument leaf as a C-ordered array of a tflc dtype, and whether it is weak: a Python
    scalar takes the dtype of the tensors it meets. (A NumPy scalar keeps its dtype, so that
    np.float32(0.5) and a 0-d float32 array, as a jitted function returns it, are one signature.)"""
    if isinstance(value, Tracer):
        raise Error(f"argument {path} is a traced value from another trace", user_loc(),
                    hint="return values from jitted functions instead of keeping tracers")
    try:
        array = np.asarray(value, order="C")
    except (ValueError, TypeError, OverflowError) as e:
        raise Error(f"argument {path}: cannot be converted to an array ({e})", user_loc()) from None
    if dtype_of_numpy(array.dtype) is None:
        hint = ("mark it static (static_argnums / static_argnames)"
                if array.dtype.kind in "OUSV" else "convert it, e.g. x.astype(np.float32)")
        raise Error(f"argument {path}: {type(value).__name__} of dtype {array.dtype} is not a "
                    "tflc array (float32, float64, int32, int64 or bool)", user_loc(), hint=hint)
    return array, isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def _unique_names(paths) -> list[str]:
    """IR names for the paths of arguments or results, unique even where two paths differ only
    in characters that names cannot have."""
    names: list[str] = []
    for path in paths:
        name, number = _ir_name(path), 1
        while name in names:
            number += 1
            name = f"{_ir_name(path)}_{number}"
        names.append(name)
    return names


def _symbol(number: int) -> str:
    return "N" if number == 0 else f"N{number + 1}"


# -- a compiled entry ----------------------------------------------------------------------------

@dataclass
class _Entry:
    call: _Call  # the summary of the call that traced it (for the reasons of later compiles)
    specialized: dict  # (leaf index, axis) → size: default symbolic dims that tracing made static
    symbols: dict  # symbol → the (leaf index, axis) dims it names (equal when traced)
    traced: Function
    compiled: Any = None
    args: tuple[int, ...] = ()  # the leaf index of each argument of the compiled function
    arg_dtypes: tuple = ()  # and the NumPy dtype it takes (a weak scalar's is its tensors')
    dims: tuple = ()  # (dim, (leaf index, axis)) for each symbolic dim of the compiled function
    outputs: tuple[int, ...] = ()  # the compiled result of each output leaf
    out_structure: Any = None

    def matches(self, call: _Call) -> bool:
        """Whether the compiled code is right for `call` (of the same key): the dims tracing made
        static have their sizes, and dims that share a symbol are equal. (Dims of different
        symbols may be equal: the code works for any sizes.)"""
        return (all(call.size(dim) == size for dim, size in self.specialized.items())
                and not self.unequal(call))

    def unequal(self, call: _Call) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Pairs of dims that share a symbol but differ in size in `call`."""
        return [(dims[0], dim) for dims in self.symbols.values() for dim in dims[1:]
                if call.size(dim) != call.size(dims[0])]

    def run(self, call: _Call):
        return self.run_arrays({name: call.size(dim) for name, dim in self.dims},
                               [np.asarray(call.leaves[i].array, dtype)
                                for i, dtype in zip(self.args, self.arg_dtypes)])

    def run_arrays(self, sizes: dict[str, int], args: list[np.ndarray]):
        """The results for the compiled function's arguments, checked and converted."""
        # a backend may return an argument or a view of one (`x`, `x[1:]`, `x.T`)
        results = [unaliased(result, args) for result in self.compiled(sizes, args)]
        return unflatten(self.out_structure, iter([results[i] for i in self.outputs]))


_dump_numbers = itertools.count(1)
MAX_KNOWN = 64  # signatures a jitted function keeps for its quick calls


class Jitted:
    """A function compiled on its first call with each new input signature (see the module doc).
    Made by `tflc.jit`; `stats()` counts compiles, `dump(after=...)` shows the IR."""

    def __init__(self, fn, *, static_argnums=(), static_argnames=(), symbolic_dims=None,
                 backend: str | None = None, debug_nans: bool | None = None):
        functools.update_wrapper(self, fn)
        self.__name__ = getattr(fn, "__name__", "fn")
        self.fn = fn
        self.backend = backend or DEFAULT_BACKEND
        self.debug_nans = debug_nans_from_environment() if debug_nans is None else debug_nans
        self._backend, self._options = compiler_for(self.backend, self.debug_nans)
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters)
        self._static = self._static_names(params, static_argnums, static_argnames)
        self._marked = self._marked_axes(params, symbolic_dims or {})
        self._entries: dict[tuple, list[_Entry]] = {}
        # calls of positional arrays only: their (dtype, shape)s → the entry and dims' sizes
        self._known: dict[tuple, tuple[_Entry, dict]] = {}
        kinds = [p.kind for p in self._signature.parameters.values()]
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._arity = len(kinds) if not self._static and all(k in positional for k in kinds) \
            else None
        self._last: _Entry | None = None
        self._calls = 0
        self._reasons: list[str] = []

    def __repr__(self) -> str:
        return f"<tflc.jit {self.__name__} ({len(self._reasons)} compiles, {self.backend})>"

    def __get__(self, instance, owner):  # a jitted method binds like a function
        return self if instance is None else functools.partial(self, instance)

    def __call__(self, *args, **kwargs):
        if current_trace() is not None:  # inside another traced function: becomes part of it
            return self.fn(*args, **kwargs)
        self._calls += 1
        if not kwargs and len(args) == self._arity:  # maybe a call whose entry is known
            try:
                known = self._known.get(tuple([(a.dtype, a.shape) for a in args]))
            except AttributeError:  # not arrays
                known = None
            if known is not None and all(type(a) is np.ndarray and a.flags.c_contiguous
                                         for a in args):
                entry, sizes = known
                self._last = entry
                return entry.run_arrays(sizes, [args[i] for i in entry.args])
        call = self._bind(args, kwargs)
        entry = self._lookup(call) or self._compile(call)
        self._last = entry
        result = entry.run(call)
        if not kwargs and len(args) == self._arity:
            self._remember(args, call, entry)
        return result

    def _remember(self, args: tuple, call: _Call, entry: _Entry) -> None:
        """Keeps `entry` for calls of exactly these arguments' dtypes and shapes, where they are
        C-ordered arrays that the entry takes as they are: such a call is then run without
        binding, flattening and looking up its signature again (~35 us for a small function)."""
        leaves = call.leaves
        if (len(leaves) != len(args) or any(leaf.array is not arg for leaf, arg in zip(leaves, args))
                or any(args[i].dtype != dtype for i, dtype in zip(entry.args, entry.arg_dtypes))):
            return
        if len(self._known) >= MAX_KNOWN:
            self._known.clear()
        self._known[tuple([(a.dtype, a.shape) for a in args])] = \
            (entry, {name: call.size(dim) for name, dim in entry.dims})

    def _lookup(self, call: _Call) -> _Entry | None:
        return next((e for e in self._entries.get(call.key, ()) if e.matches(call)), None)

    def _lower(self, call: _Call) -> Function:
        """The traced function for `call`, from the cache or traced afresh (not compiled)."""
        entry = self._lookup(call)
        return entry.traced if entry else self._trace(call, self._start_specialized(call)).traced

    def stats(self) -> dict:
        """Calls, compiles, and the reason for each compile."""
        return {"calls": self._calls, "compiles": len(self._reasons),
                "reasons": list(self._reasons)}

    def dump(self, *args, after: str | None = None, **kwargs) -> str:
        """The IR of this function, as traced (`after=None`), after the pass `after`, or after
        every pass that changed it (`after="all"`): for the given example arguments, else for
        the last call."""
        if args or kwargs:
            traced = self._lower(self._bind(args, kwargs))
        elif self._last is not None:
            traced = self._last.traced
        else:
            raise Error(f"{self.__name__} has not been called yet, so there is no IR to show",
                        user_loc(), hint=f"pass example arguments: {self.__name__}.dump(x, ...)")
        if after is None:
            return print_function(traced) + "\n"
        run = run_pipeline(traced, DEFAULT_PIPELINE, print_after=after)
        if after == "all":
            return run.dumps()
        return next(r.ir for r in run.records if r.ir is not None) + "\n"

    # -- binding and signatures

    def _static_names(self, params, argnums, argnames) -> frozenset:
        argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        argnames = (argnames,) if isinstance(argnames, str) else tuple(argnames)
        named = [p for p in params if self._signature.parameters[p].kind not in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        for number in argnums:
            if not -len(named) <= number < len(named):
                raise Error(f"static_argnums: {self.__name__} has no parameter {number} "
                            f"(parameters: {', '.join(named)})", user_loc())
        for name in argnames:
            if name not in params:
                raise Error(f"static_argnames: {self.__name__} has no parameter '{name}' "
                            f"(parameters: {', '.join(params)})", user_loc())
        return frozenset([named[n] for n in argnums] + list(argnames))

    def _marked_axes(self, params, symbolic_dims) -> dict[str, tuple[int, ...]]:
        marked = {}
        for key, axes in symbolic_dims.items():
            name = params[key] if isinstance(key, int) and 0 <= key < len(params) else key
            if name not in params:
                raise Error(f"symbolic_dims: {self.__name__} has no parameter {key!r} "
                            f"(parameters: {', '.join(params)})", user_loc())
            marked[name] = (axes,) if isinstance(axes, int) else tuple(axes)
        return marked

    def _bind(self, args, kwargs) -> _Call:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise Error(f"{self.__name__}: {e}", user_loc()) from None
        bound.apply_defaults()
        statics, structures, leaves = [], [], []
        for name, value in bound.arguments.items():
            if name in self._static:
                statics.append((name, _freeze(value, f"static argument {name}")))
                continue
            found: list = []
            structures.append((name, flatten(value, name, found)))
            for path, leaf in found:
                array, weak = _leaf_array(path, leaf)
                leaves.append(self._leaf(name, path, array, weak))
        return _Call(bound, tuple(statics), tuple(structures), tuple(leaves))

    def _leaf(self, param: str, path: str, array: np.ndarray, weak: bool) -> _Leaf:
        if param not in self._marked:
            return _Leaf(path, array.dtype, array.shape, weak, (0,) if array.ndim else (), False,
                         array)
        axes = []
        for axis in self._marked[param]:
            if not -array.ndim <= axis < array.ndim:
                raise Error(f"symbolic_dims: {path} has no axis {axis} (its shape is "
                            f"{array.shape})", user_loc())
            axes.append(axis % array.ndim)
        return _Leaf(path, array.dtype, array.shape, weak, tuple(sorted(set(axes))), True, array)

    # -- tracing and compiling

    def _start_specialized(self, call: _Call) -> dict:
        """The dims to trace as static from the start (saving retraces): those the latest entry
        of the same key made static, where `call` has the same size. A dim whose size changed
        starts symbolic again: it may have become static only by sharing a symbol."""
        entries = self._entries.get(call.key, ())
        return {dim: size for dim, size in entries[-1].specialized.items()
                if call.size(dim) == size} if entries else {}

    def _trace(self, call: _Call, specialized: dict) -> _Entry:
        """Traces until no dim needs to become static; returns the entry, not yet compiled."""
        while True:
            try:
                return self._trace_once(call, specialized)
            except Specialize as request:
                symbols = request.symbols
            members = self._members(call, specialized)
            new = [dim for s in symbols for dim in members[s] if dim not in specialized]
            assert new, f"tracing asked again for static dims {symbols}"
            specialized = {**specialized, **{dim: call.size(dim) for dim in new}}

    def _members(self, call: _Call, specialized: dict) -> dict[str, list[tuple[int, int]]]:
        """Each symbol and the dims it names: symbolic dims of equal size share one."""
        by_size: dict[int, str] = {}
        members: dict[str, list] = {}
        for dim in call.symbolic_dims:
            if dim not in specialized:
                name = by_size.setdefault(call.size(dim), _symbol(len(by_size)))
                members.setdefault(name, []).append(dim)
        return members

    def _trace_once(self, call: _Call, specialized: dict) -> _Entry:
        members = self._members(call, specialized)
        symbol_of = {dim: name for name, dims in members.items() for dim in dims}
        specializable = [name for name, dims in members.items()
                         if not any(call.leaves[i].marked for i, _ in dims)]
        trace = Trace({name: call.size(dims[0]) for name, dims in members.items()}, specializable)
        names = _unique_names(leaf.path for leaf in call.leaves)
        with trace:
            tracers = iter([trace.arg(TensorType(dtype_of_numpy(leaf.dtype), tuple(
                symbol_of.get((i, axis), size) for axis, size in enumerate(leaf.shape))),
                name, leaf.weak) for i, (leaf, name) in enumerate(zip(call.leaves, names))])
            structures = dict(call.structures)
            arguments = {name: unflatten(structures[name], tracers) if name in structures
                         else value for name, value in call.bound.arguments.items()}
            traced_call = inspect.BoundArguments(self._signature, arguments)
            result = self.fn(*traced_call.args, **traced_call.kwargs)
            found: list = []
            out_base = "out" if "out" not in self._signature.parameters else "out_"
            out_structure = flatten(result, out_base, found)
            labels = _unique_names(path for path, _ in found)
            outputs = tuple(Output(label, self._output(path, value).value)
                            for label, (path, value) in zip(labels, found))
        dims = tuple(dict.fromkeys(s for v in trace.args for s in v.type.symbols))
        func = Function(re.sub(r"\W", "", self.__name__) or "fn", dims, tuple(trace.args),
                        tuple(trace.builder.ops), outputs)
        return _Entry(call.summary(), specialized, members, func, out_structure=out_structure)

    def _output(self, path: str, value) -> Tracer:
        if isinstance(value, (Tracer, np.ndarray)) or T.is_literal(value):
            return T.as_tracer(value)  # a constant, or a tracer checked to be of this trace
        raise Error(f"{self.__name__} returned a {type(value).__name__} as {path}: a jitted "
                    "function returns arrays and scalars, in tuples, lists and dicts",
                    user_loc())

    def _compile(self, call: _Call) -> _Entry:
        reason = self._reason(call)
        if os.environ.get("TFLC_LOG_COMPILES", "0") not in ("", "0"):
            print(f"tflc: compiling {self.__name__} (compile {len(self._reasons) + 1}): {reason}",
                  file=sys.stderr)
        entry = self._trace(call, self._start_specialized(call))
        dump_dir = os.environ.get("TFLC_DUMP")
        run = run_pipeline(entry.traced, DEFAULT_PIPELINE,
                           print_after="all" if dump_dir else None)
        final = run.function
        entry.compiled = self._backend.compile(final, **self._options)
        if dump_dir:
            self._write_dump(dump_dir, entry.traced, run, final)
        leaf_of = {arg.name: i for i, arg in enumerate(entry.traced.args)}
        entry.args = tuple(leaf_of[arg.name] for arg in final.args)
        entry.arg_dtypes = tuple(np.dtype(NUMPY_DTYPES[arg.type.dtype]) for arg in final.args)
        entry.dims = tuple((name, entry.symbols[name][0]) for name in final.dims)
        labels = [out.label for out in final.outputs]
        entry.outputs = tuple(labels.index(out.label) for out in entry.traced.outputs)
        self._entries.setdefault(call.key, []).append(entry)
        self._reasons.append(reason)
        return entry

    def _write_dump(self, directory: str, traced: Function, run, final: Function) -> None:
        """The traced IR, the IR after each pass, and each kind of code the backend emits."""
        os.makedirs(directory, exist_ok=True)
        stem = os.path.join(directory, f"{next(_dump_numbers):03d}-{traced.name}")
        files = {f"{stem}.00-traced.ir": print_function(traced)}
        for number, record in enumerate(run.records, 1):
            files[f"{stem}.{number:02d}-{record.name}.ir"] = record.ir
        kinds = getattr(self._backend, "EMIT_KINDS", None)  # llvm: its IR, optimized, assembly
        if kinds is None:
            files[f"{stem}.{self.backend}.txt"] = self._backend.emit(final)
        else:
            for kind in kinds:
                files[f"{stem}.{self.backend}-{kind}.txt"] = self._backend.emit(final, kind)
        for path, text in files.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.rstrip("\n") + "\n")

    def _reason(self, call: _Call) -> str:
        same_key = self._entries.get(call.key)
        if same_key:  # only sizes changed: compare with the latest entry of the same key
            entry = same_key[-1]
            changes = [f"{call.leaves[i].path}: dim {axis} {size} → {call.size((i, axis))} "
                       "(made static when traced)"
                       for (i, axis), size in entry.specialized.items()
                       if call.size((i, axis)) != size]
            changes += [f"{call.leaves[i].path} dim {a} and {call.leaves[j].path} dim {b}: "
                        "sizes equal → different" for (i, a), (j, b) in entry.unequal(call)]
            return "; ".join(changes)
        if self._last is None:
            return "first call"
        return "; ".join(_differences(self._last.call, call)) or "new signature"


def _differences(old: _Call, new: _Call) -> list[str]:
    """What changed between the keys of two calls, as "x: dtype float32 → float64"."""
    changes = [f"static argument {name}: {a[1]!r} → {b[1]!r}"
               for (name, a), (_, b) in zip(old.statics, new.statics) if a != b]
    if old.structures != new.structures:
        names = [name for (name, a), (_, b) in zip(old.structures, new.structures) if a != b]
        return changes + [f"{name}: structure (tuples, lists, dicts) changed" for name in names]
    for a, b in zip(old.leaves, new.leaves):
        if a.dtype != b.dtype:
            changes.append(f"{b.path}: dtype {a.dtype} → {b.dtype}")
        if a.weak != b.weak:
            kinds = ("an array", "a Python scalar")
            changes.append(f"{b.path}: {kinds[a.weak]} → {kinds[b.weak]}")
        if len(a.shape) != len(b.shape):
            changes.append(f"{b.path}: rank {len(a.shape)} → {len(b.shape)}")
        elif a.static_shape != b.static_shape:
            changes += [f"{b.path}: dim {axis} {x} → {y}" for axis, (x, y)
                        in enumerate(zip(a.static_shape, b.static_shape)) if x != y]
    return changes


def jit(fn=None, *, static_argnums=(), static_argnames=(), symbolic_dims=None,
        backend: str | None = None, debug_nans: bool | None = None):
    """Compiles `fn` for each new input signature: `@tflc.jit`, or `@tflc.jit(static_argnums=1)`.

    - `static_argnums` / `static_argnames`: arguments passed to `fn` as Python values (settings,
      sizes, flags: Python `if` on them works); each new value compiles again.
    - `symbolic_dims`: {parameter name or position: axes} marks those axes of every array in
      that argument symbolic and the others static (default: the leading axis, see the module doc).
    - `backend`: "numpy", "llvm", ... (default: tflc's default backend).
    - `debug_nans` (default: the environment's TFLC_DEBUG_NANS): stop at the first op that makes
      a NaN or an infinity, naming its line (runs the numpy backend's checked code).
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, symbolic_dims=symbolic_dims,
                                 backend=backend, debug_nans=debug_nans)
    return Jitted(fn, static_argnums=static_argnums, static_argnames=static_argnames,
                  symbolic_dims=symbolic_dims, backend=backend, debug_nans=debug_nans)


def dump(fn, *args, after: str | None = None, **kwargs) -> str:
    """The IR of `fn` (jitted or not) traced with the example arguments, after the pass `after`
    (None: as traced; "all": after every pass that changed it)."""
    jitted = fn if isinstance(fn, Jitted) else Jitted(fn)
    return jitted.dump(*args, after=after, **kwargs)


# -- grad and value_and_grad ---------------------------------------------------------------------

class _Grad:
    """`fn` differentiated: traced, its scalar result gets a `grad` op per argument leaf (the
    autodiff pass expands them). Inside a trace it traces inline; called on arrays, it compiles
    itself like a jitted function."""

    def __init__(self, fn, argnums, with_value: bool):
        functools.update_wrapper(self, fn)
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + getattr(
            fn, "__name__", "fn")
        if not (isinstance(argnums, int) or isinstance(argnums, tuple)
                and all(isinstance(n, int) for n in argnums)):
            raise Error(f"argnums must be an int or a tuple of ints, got {argnums!r}", user_loc())
        self.fn = fn
        self.argnums = argnums
        self.with_value = with_value
        self._jitted: Jitted | None = None

    def __call__(self, *args, **kwargs):
        if current_trace() is None:
            if self._jitted is None:
                self._jitted = Jitted(self)
            return self._jitted(*args, **kwargs)
        numbers = (self.argnums,) if isinstance(self.argnums, int) else self.argnums
        for number in numbers:
            if not -len(args) <= number < len(args):
                raise Error(f"{self.__name__}: argnums={self.argnums!r}, but it was called with "
                            f"{len(args)} positional arguments", user_loc())
        y = self._scalar(self.fn(*args, **kwargs))
        grads = tuple(self._grads(y, args[n], f"argument {n}") for n in numbers)
        grads = grads[0] if isinstance(self.argnums, int) else grads
        return (y, grads) if self.with_value else grads

    def _scalar(self, y) -> Tracer:
        name = getattr(self.fn, "__name__", "the function")
        if not (isinstance(y, (Tracer, np.ndarray)) or T.is_literal(y)):
            raise Error(f"grad of {name}: it returned a {type(y).__name__}, not a scalar",
                        user_loc(), hint="return one scalar (the loss) from the function")
        y = T.as_tracer(y)
        if y.type.shape != ():
            raise Error(f"grad of {name}: it returned a {y.type} value, not a scalar",
                        user_loc(), hint="reduce it to one number first, e.g. with tflc.sum or "
                                         "tflc.mean")
        if not y.type.is_float:
            raise Error(f"grad of {name}: it returned a {y.type} value; gradients need a float "
                        "result", user_loc(), hint="cast it to a float dtype first")
        return y

    def _grads(self, y: Tracer, arg, what: str):
        found: list = []
        structure = flatten(arg, what, found)
        grads = []
        for path, leaf in found:
            x = T.as_tracer(leaf)
            if not x.type.is_float:
                raise Error(f"{self.__name__}: {path} is {x.type}; gradients are taken with "
                            "respect to float values only", user_loc(),
                            hint="leave it out of argnums, or pass it as a float array")
            grads.append(y.trace.emit("grad", y, x))
        return unflatten(structure, iter(grads))


def grad(fn, argnums=0):
    """The gradient of `fn` (which returns a float scalar) with respect to its positional
    argument `argnums` (an int, or a tuple of ints for a tuple of gradients). Each gradient has
    the structure of its argument (arrays, tuples, lists, dicts)."""
    return _Grad(fn, argnums, with_value=False)


def value_and_grad(fn, argnums=0):
    """Like `grad`, but returns `(fn(...), gradients)` from one traced function."""
    return _Grad(fn, argnums, with_value=True)


# -- the builtins of the .tfl language ------------------------------------------------------------

_eager_functions: dict[tuple, Jitted] = {}


def _builtin(operands: int):
    """A tflc.* function that works inside a trace (it emits ops) and on arrays outside one: there
    it is compiled, per signature, as a jitted function of its first `operands` arguments, with the
    others (axis, dtype, ...) static."""
    def wrap(fn):
        signature = inspect.signature(fn)
        tensor_names = list(signature.parameters)[:operands]

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if current_trace() is not None:
                return fn(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise Error(f"{fn.__name__}: {e}", user_loc()) from None
            bound.apply_defaults()
            tensors = [bound.arguments[name] for name in tensor_names]
            attrs = {k: v for k, v in bound.arguments.items() if k not in tensor_names}
            key = (fn, _freeze(attrs, fn.__name__))
            if key not in _eager_functions:
                def apply(*tensors):
                    return fn(*tensors, **attrs)
                apply.__name__ = fn.__name__
                _eager_functions[key] = Jitted(apply)
            return _eager_functions[key](*tensors)
        return call
    return wrap


def _unary(opcode: str, name: str | None = None):
    def fn(x):
        return T.unary(opcode, x)
    fn.__name__ = name or opcode
    fn.__doc__ = REGISTRY[opcode].doc
    return _builtin(1)(fn)


def _binary(opcode: str, name: str | None = None):
    def fn(a, b):
        return T.binary(opcode, a, b)
    fn.__name__ = name or opcode
    fn.__doc__ = REGISTRY[opcode].doc
    return _builtin(2)(fn)


def _reduction(opcode: str):
    def fn(x, axis=None, keepdims=False):
        return T.reduce(opcode, x, axis, keepdims)
    fn.__name__ = opcode
    fn.__doc__ = REGISTRY[opcode].doc
    return _builtin(1)(fn)


def _arg_reduction(opcode: str):
    def fn(x, axis):
        return T.arg_reduce(opcode, x, axis)
    fn.__name__ = opcode
    fn.__doc__ = REGISTRY[opcode].doc
    return _builtin(1)(fn)


neg = _unary("neg")
abs = _unary("abs")  # noqa: A001  (the names are the language's)
sign = _unary("sign")
exp = _unary("exp")
log = _unary("log")
sqrt = _unary("sqrt")
rsqrt = _unary("rsqrt")
square = _unary("square")
sin = _unary("sin")
cos = _unary("cos")
tanh = _unary("tanh")
sigmoid = _unary("sigmoid")
relu = _unary("relu")
softplus = _unary("softplus")
logical_not = _unary("not", "logical_not")

pow = _binary("pow")  # noqa: A001
maximum = _binary("maximum")
minimum = _binary("minimum")
logical_and = _binary("and", "logical_and")
logical_or = _binary("or", "logical_or")
matmul = _binary("matmul")

sum = _reduction("sum")  # noqa: A001
mean = _reduction("mean")
max = _reduction("max")  # noqa: A001
min = _reduction("min")  # noqa: A001
prod = _reduction("prod")
reduce_sum, reduce_mean, reduce_max = sum, mean, max
argmax = _arg_reduction("argmax")
argmin = _arg_reduction("argmin")


@_builtin(3)
def clip(x, lo, hi):
    """minimum(maximum(x, lo), hi)"""
    x, lo, hi = T.promote(x, lo, hi)
    return x.trace.emit("clip", x, lo, hi)


@_builtin(3)
def where(cond, a, b):
    """cond ? a : b, elementwise with broadcasting"""
    return T.where(cond, a, b)


@_builtin(1)
def cast(x, dtype):
    """x converted to dtype ("f32", np.float32, "float32", ...)"""
    return T.cast(x, dtype)


@_builtin(1)
def reshape(x, shape):
    """x with a new shape (one -1 allowed; sizes from x.shape keep symbolic dims)"""
    return T.reshape(x, shape)


@_builtin(1)
def transpose(x, perm=None):
    """x with its axes permuted (default: reversed)"""
    return T.transpose(x, perm)


@_builtin(1)
def expand_dims(x, axis):
    """x with a size-1 axis inserted at axis"""
    x = T.as_tracer(x)
    return x.trace.emit("expand_dims", x, axis=T.python_int(axis, "axis"))


@_builtin(1)
def squeeze(x, axis=None):
    """x without its size-1 axes (all of them, or those of axis)"""
    x = T.as_tracer(x)
    return x.trace.emit("squeeze", x, axis=T.axis_attr(axis))


@_builtin(1)
def broadcast_to(x, shape):
    """x broadcast to shape"""
    return T.broadcast_to(x, shape)


@_builtin(1)
def concat(xs, axis=0):
    """the tensors xs joined along axis"""
    xs = T.promote(*xs)
    return xs[0].trace.emit("concat", *xs, axis=T.python_int(axis, "axis"))


@_builtin(1)
def slice(x, begin, size):  # noqa: A001
    """x[begin[i] : begin[i] + size[i]] along every axis i (size -1: to the end)"""
    x = T.as_tracer(x)
    return x.trace.emit("slice", x, begin=T.axis_attr(list(begin)), size=T.axis_attr(list(size)))


@_builtin(1)
def one_hot(indices, depth):
    """f32 rows with a 1 at each index (a row of zeros for an index outside [0, depth))"""
    indices = T.as_tracer(indices)
    return indices.trace.emit("one_hot", indices, depth=T.python_int(depth, "depth"))


@_builtin(1)
def shape(x, axis):
    """the size of axis of x when the function runs (an i64 scalar)"""
    x = T.as_tracer(x)
    return x.trace.dim_size(x, T.python_int(axis, "axis"))


@_builtin(1)
def softmax(x, axis=-1):
    """exp(x - max(x)) / sum(exp(x - max(x))) along axis"""
    x = T.as_tracer(x)
    return x.trace.emit("softmax", x, axis=T.python_int(axis, "axis"))


@_builtin(1)
def log_softmax(x, axis=-1):
    """x - max(x) - log(sum(exp(x - max(x)))) along axis"""
    x = T.as_tracer(x)
    return x.trace.emit("log_softmax", x, axis=T.python_int(axis, "axis"))


@_builtin(2)
def softmax_cross_entropy_with_logits(labels, logits):
    """-sum(labels * log_softmax(logits)) over the last axis: one loss per row"""
    labels, logits = T.promote(labels, logits)
    return labels.trace.emit("softmax_cross_entropy_with_logits", labels, logits)


@_builtin(2)
def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """softmax cross-entropy with labels given as class indices (integers)"""
    labels, logits = T.as_tracer(labels), T.as_tracer(logits)
    return labels.trace.emit("sparse_softmax_cross_entropy_with_logits", labels, logits)


@_builtin(2)
def sigmoid_cross_entropy_with_logits(labels, logits):
    """softplus(logits) - logits * labels, elementwise (stable)"""
    labels, logits = T.promote(labels, logits)
    return labels.trace.emit("sigmoid_cross_entropy_with_logits", labels, logits)


@_builtin(3)
def dropout(x, keep_prob, counter, seed=0, stream=None):
    """x / keep_prob where a uniform draw is below keep_prob, else 0. The mask depends on
    (seed, stream, counter): pass a new counter (e.g. the step number) for a new mask. Each
    dropout of a traced function gets its own stream unless one is given."""
    x, keep_prob = T.promote(x, keep_prob)
    counter = T.as_tracer(counter)
    if counter.type.dtype != "i64":
        counter = T.cast(counter, "i64")
    stream = x.trace.next_stream() if stream is None else T.python_int(stream, "stream")
    return x.trace.emit("dropout", x, keep_prob, counter, seed=T.python_int(seed, "seed"),
                        stream=stream)


@_builtin(2)
def mse(a, b):
    """mean(square(a - b)): a scalar"""
    a, b = T.promote(a, b)
    return a.trace.emit("mse", a, b)
