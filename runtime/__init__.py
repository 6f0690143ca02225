"""runtime stage: loading a model and running it on NumPy arrays."""

from __future__ import annotations

import os

from .backends import DEFAULT_BACKEND
from .model import Model


def load(path: str | os.PathLike, backend: str = DEFAULT_BACKEND, seed: int = 0,
         debug_nans: bool | None = None) -> Model:
    """Parses and type-checks a `.tfl` file and returns its model, params initialized.
    `debug_nans` (default: the environment's TFLC_DEBUG_NANS) stops a run at the first op that
    makes a NaN or an infinity."""
    from ..frontend import parse_file

    return Model(parse_file(os.fspath(path)), backend=backend, seed=seed, debug_nans=debug_nans)


def loads(text: str, filename: str = "<string>", backend: str = DEFAULT_BACKEND, seed: int = 0,
          debug_nans: bool | None = None) -> Model:
    """`load` for `.tfl` source held in a string."""
    from ..frontend import parse_source

    return Model(parse_source(text, filename), backend=backend, seed=seed,
                 debug_nans=debug_nans)


__all__ = ["Model", "load", "loads"]
