"""Checkpoints: a model's params, state and run counter in one `.npz` file.

Written atomically: into a temporary file next to the target, then renamed over it, so a crash
or a full disk never leaves half a checkpoint under the real name. Read back only when every
entry is there with the declared dtype and shape, so a restore either fits the model or changes
nothing.
"""

from __future__ import annotations

import os
import uuid
import zipfile

import numpy as np

from ..ir.errors import Error
from ..ir.types import TensorType, dtype_of_numpy


def save(path, arrays: dict[str, np.ndarray]) -> None:
    path = os.fspath(path)
    temporary = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        # Exclusive create (not mkstemp) so the file gets the usual permissions (umask).
        with open(temporary, "xb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                for name, array in arrays.items():
                    with archive.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        raise Error(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def load(path, expected: dict[str, TensorType]) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at `path`, checked against `expected` (name → type)."""
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as e:
        raise Error(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise Error(f"{path} is not a checkpoint (an .npz file written by save)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise Error(f"{path} is not a checkpoint: it holds a single array, not an .npz archive")
    with archive:
        missing = [name for name in expected if name not in archive.files]
        if missing:
            raise Error(f"checkpoint {path} does not fit the model: it lacks "
                        + ", ".join(f"'{name}'" for name in missing))
        extra = [name for name in archive.files if name not in expected]
        if extra:
            raise Error(f"checkpoint {path} does not fit the model: the model declares no "
                        + ", ".join(f"'{name}'" for name in extra))
        arrays = {}
        for name, type_ in expected.items():
            try:
                array = archive[name]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise Error(f"checkpoint {path}: cannot read '{name}': {e}") from None
            found = f"{dtype_of_numpy(array.dtype) or array.dtype}" \
                    f"[{','.join(str(d) for d in array.shape)}]"
            if found != str(type_):
                raise Error(f"checkpoint {path} does not fit the model: '{name}' is {found} "
                            f"in the checkpoint, but the model declares {type_}")
            arrays[name] = array
    return arrays
