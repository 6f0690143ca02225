"""tflc's cache directory: `TFLC_CACHE_DIR`, else `~/.cache/tflc`. The stages that keep work
there (the frontend's parsed modules, the passes' entries, the LLVM backend's code and its view
of the host) name their files `<kind>-<key>.bin`, the key a SHA-256 of everything the contents
depend on, the code that makes them included (`code_digest`).

Each file starts with a SHA-256 of the rest, so a truncated or damaged file is never used: `read`
answers None and the caller makes the contents again. Files are written to a temporary file and
renamed into place, so processes sharing the directory never read a partial one; two writing
the same key write the same bytes. A directory that cannot be written only makes tflc slower.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

MAGIC = b"tflc cache 1 "
NAME = re.compile(r"[a-z]+-[0-9a-f]{64}\.bin")


def directory() -> Path:
    return Path(os.environ.get("TFLC_CACHE_DIR") or Path.home() / ".cache" / "tflc")


def file_name(kind: str, key: str) -> str:
    return f"{kind}-{key}.bin"


def read(name: str) -> bytes | None:
    """The contents written under `name`, or None if there are none or they do not check out."""
    try:
        data = (directory() / name).read_bytes()
    except OSError:
        return None
    digest_end = len(MAGIC) + 64
    if not data.startswith(MAGIC) or data[digest_end:digest_end + 1] != b"\n":
        return None
    contents = data[digest_end + 1:]
    if hashlib.sha256(contents).hexdigest().encode() != data[len(MAGIC):digest_end]:
        return None
    return contents


def write(name: str, contents: bytes) -> None:
    import tempfile  # here: a process that finds everything in the cache never writes

    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(descriptor, "wb") as f:
                f.write(MAGIC + hashlib.sha256(contents).hexdigest().encode() + b"\n" + contents)
            os.replace(temporary, folder / name)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass


def remembered(kind: str, key: str, make: Callable[[], T], expected: type[T]) -> T:
    """`make()`, or what it made before under this key (pickled: for tflc's own objects, in a
    directory only its user writes, as the compiled code is)."""
    name = file_name(kind, key)
    contents = read(name)
    if contents is not None:
        try:
            made = pickle.loads(contents)
        except Exception:  # noqa: BLE001  (whatever unpickling raises, the answer is to make it)
            made = None
        if isinstance(made, expected):
            return made
    made = make()
    write(name, pickle.dumps(made, pickle.HIGHEST_PROTOCOL))
    return made


def code_digest(*paths: Path) -> str:
    """A SHA-256 of source code: files, and the .py and .lark files in folders (at any depth);
    with the Python version, which pickles depend on."""
    return hashlib.sha256(" ".join([sys.version, *map(_code_digest, paths)]).encode()).hexdigest()


@cache  # once per process: the folders are shared by several keys
def _code_digest(path: Path) -> str:
    found = sorted(p for p in path.rglob("*") if p.suffix in (".py", ".lark")) \
        if path.is_dir() else [path]
    digest = hashlib.sha256()
    for source in found:
        contents = source.read_bytes()
        digest.update(f"{source.relative_to(path.parent)} {len(contents)}\n".encode() + contents)
    return digest.hexdigest()


def files() -> list[Path]:
    try:
        return sorted(p for p in directory().iterdir() if NAME.fullmatch(p.name))
    except OSError:
        return []


def info() -> dict:
    """What `tflc cache info` shows: the directory, its files (how many of each kind) and their
    bytes."""
    found = files()
    kinds: dict[str, int] = {}
    for path in found:
        kind = path.name.partition("-")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"directory": str(directory()), "entries": len(found), "kinds": kinds,
            "bytes": sum(p.stat().st_size for p in found)}


def clear() -> int:
    """Removes every file of the cache (`tflc cache clear`); returns how many there were."""
    found = files()
    for path in found:
        path.unlink(missing_ok=True)
    return len(found)
