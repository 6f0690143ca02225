"""runtime stage: loading a model and running it on NumPy arrays."""

from __future__ import annotations

import os

from .model import Model


def load(path: str | os.PathLike, backend: str = "numpy", seed: int = 0) -> Model:
    """Parses and type-checks a `.tfl` file and returns its model, params initialized."""
    from ..frontend import parse_file

    return Model(parse_file(os.fspath(path)), backend=backend, seed=seed)


def loads(text: str, filename: str = "<string>", backend: str = "numpy", seed: int = 0) -> Model:
    """`load` for `.tfl` source held in a string."""
    from ..frontend import parse_source

    return Model(parse_source(text, filename), backend=backend, seed=seed)


__all__ = ["Model", "load", "loads"]
