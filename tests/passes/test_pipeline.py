"""compile_entry: the outputs asked for, pruned for exactly what they need."""

import pytest

from tflc import Error
from tflc.frontend import parse_source
from tflc.ir import parse_module, print_function
from tflc.passes import pipeline
from tflc.passes.manager import load_pass
from tflc.passes.pipeline import DEFAULT_PIPELINE, compile_entry

MODULE = """\
model m
input x: f32[N]
input y: f32[N]
param w: f32[] = value(value=1.0)

func @model<N>(%x: f32[N], %y: f32[N], %w: f32[]) -> (f32[N], f32[N], f32[]) {
  %h: f32[N] = mul %x, %w
  %e: f32[N] = sub %h, %y
  %s: f32[] = sum %e
  return %h, %e, train: w <- %s
}
"""


@pytest.fixture
def module():
    return parse_module(MODULE, "m.ir")


def test_an_entry_computes_only_what_its_fetches_need(module):
    assert print_function(compile_entry(module, ["h"])) == "\n".join([
        "func @model<N>(%x: f32[N], %w: f32[]) -> (f32[N]) {",
        "  %h: f32[N] = mul %x, %w",
        "  return %h",
        "}",
    ])


def test_a_step_adds_its_updates_after_the_fetches(module):
    entry = compile_entry(module, ["h"], step="train")
    assert [(o.label, o.step) for o in entry.outputs] == [("h", None), ("w", "train")]
    assert [a.name for a in entry.args] == ["x", "y", "w"]


def test_decls_can_be_fetched(module):
    entry = compile_entry(module, ["w", "x"])
    assert entry.ops == () and [o.value for o in entry.outputs] == [entry.args[1], entry.args[0]]


def test_unknown_names_are_errors_with_hints(module):
    with pytest.raises(Error, match="unknown name 'hh': nothing called that is defined or "
                                    "declared in model m") as e:
        compile_entry(module, ["hh"])
    assert e.value.hint == "did you mean 'h'?"
    with pytest.raises(Error, match=r"unknown step 'trian' \(the model's steps: train\)") as e:
        compile_entry(module, [], step="trian")
    assert e.value.hint == "did you mean 'train'?"
    with pytest.raises(Error, match="'train' is a step, not a value to fetch"):
        compile_entry(module, ["train"])


def test_every_default_pass_exists():
    for name in DEFAULT_PIPELINE:
        assert callable(load_pass(name))


# -- entries kept in the cache directory ---------------------------------------------------------

@pytest.fixture
def pipeline_runs(tmp_path, monkeypatch):
    """A cache directory of the test's own, and the entries the passes actually ran on."""
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path))
    runs = []
    run = pipeline.run_pipeline
    monkeypatch.setattr(pipeline, "run_pipeline",
                        lambda func, passes: runs.append(func) or run(func, passes))
    return runs


def test_an_entry_compiled_before_is_read_back_the_same(module, pipeline_runs):
    first = compile_entry(module, ["h"], "train")
    second = compile_entry(parse_module(MODULE, "m.ir"), ["h"], "train")
    assert len(pipeline_runs) == 1
    assert print_function(second) == print_function(first)
    assert [op.loc for op in second.ops] == [op.loc for op in first.ops]


def test_another_entry_is_compiled(module, pipeline_runs):
    compile_entry(module, ["h"], "train")
    compile_entry(module, ["h"])
    compile_entry(module, ["e"], "train")
    assert len(pipeline_runs) == 3


def test_source_lines_are_part_of_the_key(pipeline_runs):
    source = "model m\ninput x: f32[N]\ny = exp(x)\n"
    first = compile_entry(parse_source(source, "m.tfl"), ["y"])
    commented = compile_entry(parse_source(source.replace("(x)", "(x)  # e"), "m.tfl"), ["y"])
    assert len(pipeline_runs) == 2  # the same IR text, but an error would show another line
    assert print_function(first) == print_function(commented)
    assert commented.ops[0].loc.text.endswith("# e")
