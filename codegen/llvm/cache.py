"""The compile cache: compiled code on disk, so that compiling the same function again on the same
machine only loads it (a few milliseconds instead of O3 and instruction selection).

Where: the cache directory (ir/diskcache.py: `TFLC_CACHE_DIR`, else `~/.cache/tflc`), one file
per compiled function, `llvm-<key>.bin`. The key is a SHA-256 of everything that changes the
code: the function's IR text (it prints everything the function holds: print → parse → print is
identical), the options, the target (triple, CPU name, features), the LLVM, llvmlite and tflc
versions, and the source of this backend (so that changing the code generator never loads stale
code).

An entry is a magic line, a JSON header (the entry function's signature, the lengths of what
follows), the object code, then the same code linked into a shared library where the machine
has a linker (loading.py). diskcache checks a whole entry before it is used: one that does not
check out (truncated, corrupt, another format) is compiled again and overwritten, never loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import llvmlite

from ...ir import diskcache
from ...ir.core import Function
from ...ir.printer import print_function
from ...version import __version__
from .abi import Options, Signature
from .target import Target

MAGIC = b"tflc llvm code 2\n"
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Entry:
    signature: Signature
    object_code: bytes
    library: bytes | None = None  # the object code linked into a shared library


def key(func: Function, target: Target, options: Options) -> str:
    facts = {
        "function": print_function(func),
        "options": dataclasses.asdict(options),
        "target": [target.triple, target.cpu, target.features],
        "llvm": target.llvm,
        "llvmlite": llvmlite.__version__,
        "tflc": __version__,
        # this backend's source, and the fuse pass's kernel spaces it follows
        "backend": diskcache.code_digest(HERE, HERE.parent.parent / "passes" / "fuse.py"),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def file_name(cache_key: str) -> str:
    return diskcache.file_name("llvm", cache_key)


def load(cache_key: str) -> Entry | None:
    """The entry for the key, or None if there is none or it does not check out."""
    data = diskcache.read(file_name(cache_key))
    if data is None:
        return None
    try:
        return decode(data)
    except (ValueError, KeyError, TypeError):
        return None


def save(cache_key: str, entry: Entry) -> None:
    diskcache.write(file_name(cache_key), encode(entry))


def encode(entry: Entry) -> bytes:
    library = entry.library or b""
    header = {"signature": dataclasses.asdict(entry.signature),
              "object_bytes": len(entry.object_code), "library_bytes": len(library)}
    return MAGIC + json.dumps(header).encode() + b"\n" + entry.object_code + library


def decode(data: bytes) -> Entry:
    if not data.startswith(MAGIC):
        raise ValueError("not a tflc llvm cache entry")
    header_end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):header_end])
    code = data[header_end + 1:]
    object_bytes, library_bytes = header["object_bytes"], header["library_bytes"]
    if len(code) != object_bytes + library_bytes:
        raise ValueError("the code does not match its header")
    signature = Signature(**{name: _tuples(value) for name, value in header["signature"].items()})
    return Entry(signature, code[:object_bytes], code[object_bytes:] or None)


def _tuples(value):
    """JSON's lists back into the signature's tuples."""
    return tuple(map(_tuples, value)) if isinstance(value, list) else value
