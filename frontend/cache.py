"""Parsed programs kept on disk: a `.tfl` program parsed before is read back from the cache
directory (ir/diskcache.py) instead of parsed again, which skips lark and the type checks (~20 ms
for a tutorial network; reading one back takes well under 1 ms).

The key is a SHA-256 of everything the module depends on: the text and the file name (both are
in its locations), the source of the frontend and of the IR (grammar, builtins, type rules), the
installed lark, and NumPy's version (constants are its arrays). A program with a mistake is not
kept: it is parsed again, and fails again with the same message.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..ir import diskcache
from ..ir.core import Module


def parsed(text: str, filename: str, parse: Callable[[str, str], Module]) -> Module:
    """`parse(text, filename)`, or what it returned before."""
    return diskcache.remembered("module", key(text, filename), lambda: parse(text, filename),
                                Module)


def key(text: str, filename: str) -> str:
    here = Path(__file__).parent
    lark = importlib.util.find_spec("lark")  # its __init__.py holds its version
    code = diskcache.code_digest(here, here.parent / "ir", Path(lark.origin))
    digest = hashlib.sha256(f"{code} {np.__version__}\n".encode())
    for part in (filename, text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()
