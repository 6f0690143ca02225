"""A `.tfl` program, from a file or a string, to its IR module: read back from the cache directory
(ir/diskcache.py) where it was parsed before, else parsed (parser.py).

Reading a module back takes well under a millisecond; parsing one takes ~20 ms for a tutorial
network, and importing lark, the parser's library, another ~40: parser.py is imported by the
first program that is not in the cache, not by `import tflc`.

The key is a SHA-256 of everything the module depends on: the text and the file name (both are
in its locations), the source of the frontend and of the IR (grammar, builtins, type rules), the
installed lark, and NumPy's version (constants are its arrays). A program with a mistake is not
kept: it is parsed again, and fails again with the same message.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from ..ir import diskcache
from ..ir.core import Module
from ..ir.errors import Error, Loc


def parse_source(text: str, filename: str = "<string>") -> Module:
    """The IR module of a `.tfl` program; any mistake in it raises a located `tflc.Error`."""
    return diskcache.remembered("module", key(text, filename), lambda: _parse(text, filename),
                                Module)


def _parse(text: str, filename: str) -> Module:
    from . import parser

    return parser.build_module(text, filename)


def parse_file(path) -> Module:
    """`parse_source` of a file, refusing files that are unreadable or not UTF-8 text."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise Error(f"cannot read {path}: {e.strerror or e}") from None
    if b"\0" in data:
        raise Error(f"{path} is not a text file (it holds a NUL byte)",
                    _byte_loc(path, data, data.index(b"\0")))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Error(f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x})",
                    _byte_loc(path, data, e.start)) from None
    return parse_source(text.removeprefix("\ufeff"), path)


def _byte_loc(path: str, data: bytes, pos: int) -> Loc:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    line = data[start:end if end >= 0 else len(data)].decode("utf-8", "replace")
    # control characters would drive the user's terminal: show them as replacement characters
    printable = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in line)
    return Loc(path, data.count(b"\n", 0, pos) + 1, pos - start + 1, text=printable)


def key(text: str, filename: str) -> str:
    here = Path(__file__).parent
    lark = importlib.util.find_spec("lark")  # its __init__.py holds its version
    code = diskcache.code_digest(here, here.parent / "ir", Path(lark.origin))
    digest = hashlib.sha256(f"{code} {np.__version__}\n".encode())
    for part in (filename, text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()
