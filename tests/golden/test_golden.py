"""Golden dumps: each example entry's IR after every pass that changes it, checked in.

A change in the compiler's output shows up in review as a diff of these files. After a deliberate
change, regenerate them all with:

    TFLC_REGEN_GOLDEN=1 python -m pytest tests/golden
"""

import os
from pathlib import Path

import pytest

from tflc.frontend import parse_source
from tflc.passes.manager import run_pipeline
from tflc.passes.pipeline import DEFAULT_PIPELINE, select_entry

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent

ENTRIES = [  # (example, fetches, step)
    ("hello", ["a"], None),
    ("linear_regression", ["slope", "intercept"], None),
    ("mnist_mlp", ["accuracy"], None),
    ("mnist_mlp", ["cross_entropy"], "step"),
    ("mnist_relu", ["loss"], "train_step"),
    ("mnist_dropout", ["accuracy"], None),
]


def dump(example: str, fetches: list[str], step: str | None) -> str:
    path = f"examples/{example}.tfl"
    module = parse_source((ROOT / path).read_text(), path)
    entry = select_entry(module, fetches, step)
    return run_pipeline(entry, DEFAULT_PIPELINE, verify=True, print_after="all").dumps()


@pytest.mark.parametrize("example, fetches, step", ENTRIES,
                         ids=[f"{e}-{s or '+'.join(f)}" for e, f, s in ENTRIES])
def test_dump_matches_golden(example, fetches, step):
    golden = GOLDEN / f"{example}.{step or '+'.join(fetches)}.ir"
    text = dump(example, fetches, step)
    if os.environ.get("TFLC_REGEN_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}: run TFLC_REGEN_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text(), f"{golden.name} changed: review, then regenerate"


def test_accuracy_entry_has_no_gradient_and_no_cross_entropy():
    final = dump("mnist_mlp", ["accuracy"], None).split("// ----- after")[-1]
    for opcode in ("grad", "log", "clip", "minimum"):
        assert f"= {opcode} " not in final and f"= {opcode}[" not in final
    assert "%cross_entropy" not in final and "%W1" in final
