"""Initial values of params and state, from their declarations' initializers.

Random initializers draw from a generator of their own per declaration, seeded from the decl's
`seed=` if it has one, else the model's seed, mixed with the decl's name (NumPy's SeedSequence
over the seed and the name's UTF-8 bytes). So a model loaded twice with one seed starts
identical, and adding, removing or reordering other declarations changes no decl's values.
Values are drawn in float64 and then rounded to the decl's dtype.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from ..ir.core import Decl
from ..ir.errors import Error, did_you_mean
from ..ir.types import NUMPY_DTYPES

COUNTER = "__run"  # the run counter's decl: fed by the model, not by the user


def zeros(shape, rng):
    return np.zeros(shape)


def ones(shape, rng):
    return np.ones(shape)


def fill(shape, rng, value):
    return np.full(shape, value)


def normal(shape, rng, mean=0.0, stddev=1.0):
    return rng.normal(mean, stddev, shape)


def truncated_normal(shape, rng, mean=0.0, stddev=1.0):
    """Normal, with every draw beyond two standard deviations drawn again (as TensorFlow)."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return mean + stddev * z


def uniform(shape, rng, low=0.0, high=1.0):
    return rng.uniform(low, high, shape)


def glorot_uniform(shape, rng):
    """Uniform in ±sqrt(6 / (fan_in + fan_out)), fans as Keras computes them."""
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6 / max(fan_in + fan_out, 1))
    return rng.uniform(-limit, limit, shape)


def _fans(shape) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])  # convolution kernels: [..., in, out]
    return shape[-2] * receptive, shape[-1] * receptive


INITIALIZERS = {f.__name__: f for f in (zeros, ones, fill, normal, truncated_normal, uniform,
                                        glorot_uniform)}
RANDOM = ("normal", "truncated_normal", "uniform", "glorot_uniform")


def check_seed(seed, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise Error(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def generator(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *name.encode()]))


def initial_value(decl: Decl, model_seed: int) -> np.ndarray:
    """The starting value of a param or state, of exactly its type."""
    dtype = NUMPY_DTYPES[decl.type.dtype]
    shape = tuple(decl.type.shape)
    init = decl.init
    if init is None:
        raise Error(f"{decl.kind} '{decl.name}' has no initial value", decl.loc)
    if init.kind == "value":
        return _literal(decl, np.asarray(init.arg("value")), dtype, shape)
    if init.kind not in INITIALIZERS:
        raise Error(f"unknown initializer '{init.kind}' for '{decl.name}'", decl.loc,
                    hint=did_you_mean(init.kind, INITIALIZERS))
    if init.kind in RANDOM and decl.type.dtype not in ("f32", "f64"):
        raise Error(f"{init.kind}() draws floats; '{decl.name}' is {decl.type} "
                    "(use a float dtype, or a literal)", decl.loc)
    args = dict(init.args)
    seed = model_seed
    if "seed" in args and init.kind in RANDOM:
        seed = check_seed(args.pop("seed"), f"seed of '{decl.name}'")
    function = INITIALIZERS[init.kind]
    parameters = list(inspect.signature(function).parameters)[2:]
    for name in args:
        if name not in parameters:
            raise Error(f"{init.kind}() has no argument '{name}'", decl.loc,
                        hint=did_you_mean(name, parameters) or _takes(init.kind, parameters))
    try:
        value = function(shape, generator(seed, decl.name), **args)
    except (TypeError, ValueError) as e:
        raise Error(f"cannot initialize '{decl.name}' with {init.kind}(): {e}", decl.loc) \
            from None
    return np.asarray(value).astype(dtype)


def _takes(kind: str, parameters) -> str:
    return f"{kind}() takes " + (", ".join(parameters) if parameters else "no arguments")


def _literal(decl: Decl, value: np.ndarray, dtype, shape) -> np.ndarray:
    if not np.can_cast(value.dtype, dtype, "same_kind"):
        raise Error(f"initial value of dtype {value.dtype} does not fit '{decl.name}': "
                    f"{decl.type}", decl.loc)
    try:
        return np.broadcast_to(value, shape).astype(dtype)
    except ValueError:
        raise Error(f"initial value of shape {list(value.shape)} does not broadcast to "
                    f"'{decl.name}': {decl.type}", decl.loc) from None


def counter_value(count: int, seed: int) -> np.ndarray:
    """What the run counter `__run` holds: the run number plus the model seed times 2**32
    (wrapping to int64), so different seeds draw different dropout masks on the same run."""
    mixed = (count + (seed << 32)) % 2**64
    return np.array(mixed - 2**64 if mixed >= 2**63 else mixed, np.int64)
