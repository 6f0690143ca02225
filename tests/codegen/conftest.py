"""The codegen tests share `codegen_cases.py`; tests run with --import-mode=importlib, which puts
no test folder on sys.path, so this one is put there."""

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def every_kernel_parallel(monkeypatch):
    """Kernels go parallel from the first element on, so small tests use the threads."""
    from tflc.codegen.llvm import jit

    options_for = jit.options_for
    monkeypatch.setattr(jit, "options_for", lambda target, fast_math=False: dataclasses.replace(
        options_for(target, fast_math), parallel_work=1))
