"""Importing this package registers every op (each module registers its own)."""

from . import elementwise, fused, linalg, nn, random, reduce, shape, special  # noqa: F401
