"""Checking what is fed, before anything runs: names, dtypes, ranks, sizes, symbolic dims.

Feeds may be arrays, lists or scalars (taken with `np.asarray`). A value of another dtype is
converted when NumPy's `can_cast(fed, expected, "same_kind")` allows it: float64 → float32,
int → float, int64 → int32, bool → int; a float fed to an integer input, or a number fed to a
bool input, is an error. Each symbolic dim (`N`) takes its size from the first input that has it,
in declaration order, and every other input must agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..ir.core import Decl, Module
from ..ir.errors import Error, did_you_mean
from ..ir.types import NUMPY_DTYPES, eval_dim


def check_names(module: Module, feeds: Mapping[str, object], needed: Sequence[str],
                purpose: str) -> None:
    """Every fed name is an input, and every input in `needed` is fed."""
    inputs = [d.name for d in module.decls if d.kind == "input"]
    for name in feeds:
        decl = module.decl(name)
        if decl is not None and decl.kind != "input":
            raise Error(f"cannot feed '{name}': it is a {decl.kind}, not an input "
                        "(only inputs are fed)")
        if decl is None:
            raise Error(f"cannot feed '{name}': model {module.name} has no input of that name"
                        + (f" (inputs: {', '.join(inputs)})" if inputs else " (it has no inputs)"),
                        hint=did_you_mean(name, inputs))
    missing = [module.decl(name) for name in needed if name not in feeds]
    if missing:
        listing = ", ".join(f"{d.name}: {d.type}" for d in missing)
        raise Error(f"missing feed{'s' if len(missing) > 1 else ''} for {purpose}: {listing}",
                    notes=tuple((f"'{d.name}' is declared here", d.loc) for d in missing
                                if d.loc is not None))


def check_feeds(module: Module, feeds: Mapping[str, object]) -> tuple[dict, dict]:
    """Converts and checks every feed; returns the arrays and the sizes of the dims they bind."""
    arrays: dict[str, np.ndarray] = {}
    sizes: dict[str, tuple[int, str]] = {}  # dim → (size, the input it came from)
    for decl in module.decls:  # declaration order: the first input with a dim binds it
        if decl.name in feeds:
            arrays[decl.name] = _convert(decl, feeds[decl.name])
            _bind_dims(decl, arrays[decl.name].shape, sizes)
    for name, array in arrays.items():  # products such as 784*N, once every name is bound
        decl = module.decl(name)
        for axis, dim in enumerate(decl.type.shape):
            if isinstance(dim, str) and "*" in dim:
                bound = {s: size for s, (size, _) in sizes.items()}
                if eval_dim(dim, bound) != array.shape[axis]:
                    raise _shape_error(decl, array.shape,
                                       f"dim {axis} is {array.shape[axis]}, but {dim} is "
                                       f"{eval_dim(dim, bound)}")
    return arrays, {dim: size for dim, (size, _) in sizes.items()}


def _convert(decl: Decl, fed) -> np.ndarray:
    expected = np.dtype(NUMPY_DTYPES[decl.type.dtype])
    try:
        array = np.asarray(fed)
    except (ValueError, TypeError) as e:
        raise Error(f"cannot read the value fed to '{decl.name}' as an array: {e}") from None
    if array.dtype != expected:
        if not np.can_cast(array.dtype, expected, "same_kind"):
            raise Error(f"input '{decl.name}' expects {decl.type}, but was fed "
                        f"{_describe(array.dtype)} values", notes=_declared(decl),
                        hint=f"convert them first, e.g. with .astype(np.{expected.name}), "
                             "if that is what you mean")
        array = array.astype(expected)
    # C order for the native backends (not ascontiguousarray: it makes 0-d arrays 1-d)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _describe(dtype: np.dtype) -> str:
    return dtype.name if dtype.kind in "biuf" else f"non-numeric ({dtype})"


def _bind_dims(decl: Decl, shape: tuple[int, ...], sizes: dict) -> None:
    expected = decl.type.shape
    if len(shape) != len(expected):
        raise _shape_error(decl, shape, f"rank {len(shape)} instead of {len(expected)}")
    for axis, (dim, size) in enumerate(zip(expected, shape)):
        if isinstance(dim, int):
            if size != dim:
                raise _shape_error(decl, shape, f"dim {axis} is {size}, not {dim}")
        elif "*" not in dim:
            if dim not in sizes:
                sizes[dim] = (size, decl.name)
            elif sizes[dim][0] != size:
                first, source = sizes[dim]
                raise _shape_error(decl, shape,
                                   f"{dim} is {first} from '{source}' but {size} from "
                                   f"'{decl.name}'")


def _shape_error(decl: Decl, shape, why: str) -> Error:
    return Error(f"input '{decl.name}' expects {decl.type}, but was fed shape "
                 f"{list(shape)}: {why}", notes=_declared(decl))


def _declared(decl: Decl) -> tuple:
    return ((f"'{decl.name}' is declared here", decl.loc),) if decl.loc is not None else ()
