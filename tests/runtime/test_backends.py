"""Backends by name: numpy and llvm from codegen, cuda from the runtime (it loads onto a GPU)."""

import pytest

from tflc import Error
from tflc.codegen import llvm, numpy_backend
from tflc.runtime import cuda
from tflc.runtime.backends import BACKENDS, DEFAULT_BACKEND, backend


def test_backends_by_name():
    assert backend("numpy") is numpy_backend
    assert backend("llvm") is llvm
    assert backend("cuda") is cuda
    assert DEFAULT_BACKEND in BACKENDS
    with pytest.raises(Error, match="unknown backend 'numba' \\(backends: numpy, llvm, cuda\\)"):
        backend("numba")


@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_backend_compiles_and_emits(name):
    module = backend(name)
    assert callable(module.compile) and callable(module.emit)
