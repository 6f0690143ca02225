"""Importing this package registers every op (each module registers its own)."""

from . import elementwise, special  # noqa: F401
