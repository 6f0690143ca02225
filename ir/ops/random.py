"""`rng_uniform`: counter-based uniform numbers in [0, 1) that every backend draws bit for bit.

For flat element index `i` (docs/ops.md):
`key = mix(mix(mix(seed) ^ stream) ^ counter)`, `bits = mix(key + (i + 1) * 0x9E3779B97F4A7C15)`,
`u = (bits >> 40) * 2**-24`, all in wrapping uint64, where `mix` is splitmix64's finalizer.
The top 24 bits make every `u` exact in f32 as well as in f64.
"""

from __future__ import annotations

import numpy as np

from ..registry import OpDef, ShapeError, register

UINT64_LIMIT = 2 ** 64


def infer_rng_uniform(types, attrs):
    like, counter = types
    if not like.is_float:
        raise ShapeError(f"like must be a float tensor, got {like}")
    if counter.dtype != "i64" or counter.shape != ():
        raise ShapeError(f"counter must be an i64[] scalar, got {counter}")
    for name in ("seed", "stream"):
        value = attrs[name]
        if isinstance(value, bool) or not isinstance(value, int) or \
                not 0 <= value < UINT64_LIMIT:
            raise ShapeError(f"{name} must be an int in [0, 2**64), got {value!r}")
    return like


def op_rng_uniform(like, counter, *, seed, stream):
    # 1-element uint64 arrays, not numpy scalars: array arithmetic wraps without overflow warnings
    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    key = mix(np.array([seed], dtype=np.uint64))
    key = mix(key ^ np.array([stream], dtype=np.uint64))
    key = mix(key ^ np.asarray(counter).astype(np.uint64).reshape(1))
    index = np.arange(np.size(like), dtype=np.uint64)
    bits = mix(key + (index + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    dtype = np.asarray(like).dtype
    u = (bits >> np.uint64(40)).astype(dtype) * dtype.type(2.0 ** -24)
    return u.reshape(np.shape(like))


register(OpDef("rng_uniform", "source",
               "uniform [0, 1) numbers of like's type, from (seed, stream, counter, index)",
               infer_rng_uniform, reference=op_rng_uniform, arity=2,
               attrs={"seed": 0, "stream": 0}, differentiable=False))
