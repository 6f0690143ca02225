"""The compile cache: object code on disk, so that compiling the same function again on the same
machine only loads it (a few milliseconds instead of O3 and instruction selection).

Where: `TFLC_CACHE_DIR`, else `~/.cache/tflc`; one file per compiled function,
`llvm-<key>.bin`. The key is a SHA-256 of everything that changes the code: the function's IR
text (it prints everything the function holds: print → parse → print is identical), the
options, the target (triple, CPU name, features), the LLVM, llvmlite and tflc versions, and the
source of this backend (so that changing the code generator never loads stale code).

An entry is a magic line, a JSON header (the entry function's signature, the object code's
length and SHA-256), then the object code. An entry that does not check out (truncated,
corrupt, another format) is never loaded: it is compiled again and overwritten. Entries are
written to a temporary file and renamed into place, so processes sharing the cache never read
a partial entry; two writing the same key write the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from ...ir.core import Function
from ...ir.printer import print_function
from .lower import Options, Signature
from .target import Target

MAGIC = b"tflc llvm object 1\n"


@dataclass(frozen=True)
class Entry:
    signature: Signature
    object_code: bytes


def directory() -> Path:
    return Path(os.environ.get("TFLC_CACHE_DIR") or Path.home() / ".cache" / "tflc")


def key(func: Function, target: Target, options: Options) -> str:
    facts = {
        "function": print_function(func),
        "options": dataclasses.asdict(options),
        "target": [target.triple, target.cpu, target.features],
        "llvm": list(llvm.llvm_version_info),
        "llvmlite": llvmlite.__version__,
        "tflc": tflc_version(),
        "backend": backend_source_hash(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@cache
def tflc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tflc")
    except PackageNotFoundError:
        return "unknown"


@cache
def backend_source_hash() -> str:
    """This backend's source, and the fuse pass's kernel spaces it follows."""
    here = Path(__file__).parent
    files = sorted(here.glob("*.py")) + [here.parent.parent / "passes" / "fuse.py"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def path_of(cache_key: str) -> Path:
    return directory() / f"llvm-{cache_key}.bin"


def load(cache_key: str) -> Entry | None:
    """The entry for the key, or None if there is none or it does not check out."""
    try:
        data = path_of(cache_key).read_bytes()
    except OSError:
        return None
    try:
        return decode(data)
    except (ValueError, KeyError, TypeError):
        return None


def save(cache_key: str, entry: Entry) -> None:
    """Writes the entry atomically; a cache that cannot be written is only slower, not an error."""
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".llvm-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as f:
                f.write(encode(entry))
            os.replace(temporary, path_of(cache_key))
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass


def encode(entry: Entry) -> bytes:
    header = {"signature": dataclasses.asdict(entry.signature),
              "object_bytes": len(entry.object_code),
              "object_sha256": hashlib.sha256(entry.object_code).hexdigest()}
    return MAGIC + json.dumps(header).encode() + b"\n" + entry.object_code


def decode(data: bytes) -> Entry:
    if not data.startswith(MAGIC):
        raise ValueError("not a tflc llvm cache entry")
    header_end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):header_end])
    object_code = data[header_end + 1:]
    if len(object_code) != header["object_bytes"] or \
            hashlib.sha256(object_code).hexdigest() != header["object_sha256"]:
        raise ValueError("the object code does not match its header")
    s = header["signature"]
    signature = Signature(
        entry=s["entry"], dims=tuple(s["dims"]), args=tuple(s["args"]),
        outputs=tuple((tuple(shape), dtype) for shape, dtype in s["outputs"]),
        scratch=tuple(s["scratch"]), in_place=tuple(tuple(pair) for pair in s["in_place"]))
    return Entry(signature, object_code)


def info() -> dict:
    """What `tflc cache info` shows: the directory, its entries and their bytes."""
    entries = sorted(directory().glob("llvm-*.bin"))
    return {"directory": str(directory()), "entries": len(entries),
            "bytes": sum(p.stat().st_size for p in entries)}


def clear() -> int:
    """Removes every entry (`tflc cache clear`); returns how many there were."""
    removed = 0
    for path in directory().glob("llvm-*.bin"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
