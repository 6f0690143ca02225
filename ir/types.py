"""Tensor types: a dtype and a shape whose dims are integers or symbolic names.

A symbolic dim is a string: a name from the source (`N`), a fresh name for each `?` (`?1`), or a
product of those and an integer (`784*N`), which `reshape` needs to stay exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

Dim = int | str

DTYPES = ("f32", "f64", "i32", "i64", "bool")
NUMPY_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
                "bool": np.bool_}
FLOAT_DTYPES = ("f32", "f64")
INT_DTYPES = ("i32", "i64")


def dtype_of_numpy(dtype) -> str | None:
    for name, np_type in NUMPY_DTYPES.items():
        if np.dtype(dtype) == np.dtype(np_type):
            return name
    return None


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self):
        assert self.dtype in DTYPES, self.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for d in self.shape for s in dim_symbols(d)))

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(dtype, self.shape)

    def with_shape(self, shape) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


def scalar(dtype: str) -> TensorType:
    return TensorType(dtype, ())


# -- symbolic dim arithmetic -------------------------------------------------------------------

def _factors(d: Dim) -> tuple[int, Counter]:
    if isinstance(d, int):
        return d, Counter()
    coef, symbols = 1, Counter()
    for part in d.split("*"):
        if part.isdigit():
            coef *= int(part)
        else:
            symbols[part] += 1
    return coef, symbols


def _make(coef: int, symbols: Counter) -> Dim:
    names = sorted(symbols.elements())
    if not names or coef == 0:
        return coef
    return "*".join(([str(coef)] if coef != 1 else []) + names)


def dim_expression(d: Dim, variables: dict[str, str]) -> str | None:
    """Python for a dim's size, given the variable holding each symbol's (784*N → 784*n), or
    None if a symbol has none."""
    coef, symbols = _factors(d)
    if any(name not in variables for name in symbols):
        return None
    return "*".join([str(coef)] + [variables[name] for name in symbols.elements()])


def dim_symbols(d: Dim) -> tuple[str, ...]:
    return tuple(sorted(_factors(d)[1]))


def dim_product(dims) -> Dim:
    coef, symbols = 1, Counter()
    for d in dims:
        c, s = _factors(d)
        coef *= c
        symbols += s
    return _make(coef, symbols)


def dim_divide(a: Dim, b: Dim) -> Dim | None:
    """a / b when it divides exactly for every value of the symbols, else None."""
    ca, sa = _factors(a)
    cb, sb = _factors(b)
    if cb == 0 or ca % cb or any(sa[k] < n for k, n in sb.items()):
        return None
    return _make(ca // cb, sa - sb)


def eval_dim(d: Dim, sizes: dict[str, int]) -> int:
    coef, symbols = _factors(d)
    for name, power in symbols.items():
        coef *= sizes[name] ** power
    return coef
