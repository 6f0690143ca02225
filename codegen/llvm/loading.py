"""Putting compiled code into the process: as a shared library where the cache entry has one, else
with MCJIT.

Loading a shared library needs no LLVM in the process, and loading LLVM (llvmlite's library) is
most of what a model compiled before would otherwise cost to start (~30 ms of ~60). So when the
compile cache keeps code, `link` also links the object code into a shared library with the
system's C compiler driver (`cc -shared`), where there is one. Its own symbols are bound inside
it (`-Bsymbolic`: an entry function named like a C library function still calls its own code);
libgomp's are found when it loads, in the global symbols threads.py put libgomp's in.

`load` opens the library from a memory file (memfd): each load of the same code gets its own
copy of its globals (the thread count), as each MCJIT engine does, and what is loaded is the
cache entry that diskcache checked, not a file that may have changed since. The memory file
stays open while its library is loaded, one file descriptor each: past MAX_LIBRARIES loaded at
once, code loads with MCJIT, which takes none. Where loading fails (no memfd, a kernel refusing
executable memory files, a symbol missing) the object code is loaded with MCJIT, as it is where
there is no linker.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import weakref
from functools import cache

from .target import Target

MAX_LIBRARIES = 256  # loaded at once (each holds a file descriptor; the usual limit is 1024)


@cache
def linker() -> str | None:
    """The C compiler driver that links shared libraries, or None where there is none or no way
    to load what it makes (memfd)."""
    return shutil.which("cc") if hasattr(os, "memfd_create") else None


def link(object_code: bytes) -> bytes | None:
    """The object code as a shared library, or None where it cannot be made."""
    cc = linker()
    if cc is None:
        return None
    import subprocess  # here: a process that loads cached code never links
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tflc-link-") as folder:
        objects, library = os.path.join(folder, "code.o"), os.path.join(folder, "code.so")
        with open(objects, "wb") as f:
            f.write(object_code)
        command = [cc, "-shared", "-nostdlib", "-Wl,-Bsymbolic", "-o", library, objects]
        try:
            linked = subprocess.run(command, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if linked.returncode != 0:
            return None
        with open(library, "rb") as f:
            return f.read()


class Library:
    """A shared library loaded from its bytes; unloaded when collected."""

    def __init__(self, data: bytes):
        # the descriptor stays open while the library is loaded: dlopen takes a path it has
        # loaded before for the library loaded then, and a closed descriptor's number is reused
        descriptor = os.memfd_create("tflc-code", os.MFD_CLOEXEC)
        try:
            with open(descriptor, "wb", closefd=False) as f:
                f.write(data)
            self._library = ctypes.CDLL(f"/proc/self/fd/{descriptor}")
        except BaseException:
            os.close(descriptor)
            raise
        weakref.finalize(self, _unload, self._library._handle, descriptor).atexit = False
        LOADED.add(self)

    def address(self, symbol: str) -> int:
        return ctypes.cast(self._library[symbol], ctypes.c_void_p).value


def _unload(handle: int, descriptor: int) -> None:
    _ctypes.dlclose(handle)
    os.close(descriptor)


LOADED: weakref.WeakSet[Library] = weakref.WeakSet()


class JITCode:
    """Object code loaded by MCJIT."""

    def __init__(self, object_code: bytes, target: Target):
        import llvmlite.binding as llvm

        # MCJIT wants a module: an empty one, then the object code
        empty = llvm.parse_assembly("")
        empty.triple, empty.data_layout = target.triple, target.data_layout
        self._machine = target.machine()  # owned by the engine, kept alive with it
        self._engine = llvm.create_mcjit_compiler(empty, self._machine)
        self._engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
        self._engine.finalize_object()

    def address(self, symbol: str) -> int:
        return self._engine.get_global_value_address(symbol)


def load(object_code: bytes, library: bytes | None, target: Target) -> Library | JITCode:
    """The code in the process: `address(symbol)` finds its functions and globals."""
    if library is not None and hasattr(os, "memfd_create") and len(LOADED) < MAX_LIBRARIES:
        try:
            return Library(library)
        except OSError:
            pass
    return JITCode(object_code, target)
