"""Parsed programs kept on disk: a `.tfl` program parsed before is read back from the cache
directory (ir/diskcache.py) instead of parsed again, which skips lark and the type checks (~20 ms
for a tutorial network; reading one back takes well under 1 ms).

The key is a SHA-256 of everything the module depends on: the text and the file name (both are
in its locations), the source of the frontend and of the IR (grammar, builtins, type rules), the
installed lark, and the versions of NumPy (constants are its arrays) and Python (the pickle). A
program with a mistake is not kept: it is parsed again, and fails again with the same message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from ..ir import diskcache
from ..ir.core import Module


def parsed(text: str, filename: str, parse: Callable[[str, str], Module]) -> Module:
    """`parse(text, filename)`, or what it returned before."""
    name = diskcache.file_name("module", key(text, filename))
    data = diskcache.read(name)
    if data is not None:
        try:
            module = pickle.loads(data)
        except Exception:  # noqa: BLE001  (whatever unpickling raises, the answer is to parse)
            module = None
        if isinstance(module, Module):
            return module
    module = parse(text, filename)
    diskcache.write(name, pickle.dumps(module, pickle.HIGHEST_PROTOCOL))
    return module


def key(text: str, filename: str) -> str:
    digest = hashlib.sha256(source_hash().encode())
    for part in (filename, text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


@cache
def source_hash() -> str:
    """The code that makes a module from a program, and what its pickle depends on."""
    frontend = Path(__file__).parent
    ir = frontend.parent / "ir"
    files = sorted([*frontend.glob("*.py"), *frontend.glob("*.lark"), *ir.rglob("*.py")])
    lark = importlib.util.find_spec("lark")
    if lark is not None and lark.origin:
        files.append(Path(lark.origin))  # lark's __init__.py, which holds its version
    digest = hashlib.sha256(f"{np.__version__} {sys.version}".encode())
    for path in files:
        digest.update(str(path.relative_to(path.parents[1])).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
