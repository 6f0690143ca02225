"""The pass manager: passes by name, IR recorded after them, timings, verification."""

import pytest

from tflc import Error
from tflc.ir import Builder, Function, Output, TensorType, Value, VerifyError
from tflc.passes.manager import load_pass, run_pipeline
from tflc.passes.prune import prune


def function_with_dead_op():
    x = Value(TensorType("f32", ("N",)), "x")
    b = Builder()
    b.emit("neg", x, name="dead")
    y = b.emit("exp", x, name="y")
    return Function("model", ("N",), (x,), tuple(b.ops), (Output("y", y),))


def test_passes_are_found_by_name():
    assert load_pass("prune") is prune


@pytest.mark.parametrize("name", ["prnue", "manager", "pipeline"])
def test_unknown_pass_is_an_error(name):
    with pytest.raises(Error, match=f"unknown pass '{name}'"):
        load_pass(name)


def test_print_after_all_shows_input_and_only_passes_that_changed_something():
    run = run_pipeline(function_with_dead_op(), ["prune", "prune"], print_after="all")
    dumps = run.dumps()
    assert dumps.count("// ----- after prune -----") == 1
    assert dumps.index("entry before passes") < dumps.index("after prune")
    assert "%dead" in dumps.split("after prune")[0] and "%dead" not in dumps.split("after prune")[1]
    assert [r.changed for r in run.records] == [True, False]


def test_print_after_one_pass():
    run = run_pipeline(function_with_dead_op(), ["prune"], print_after="prune")
    assert run.dumps().startswith("// ----- after prune -----\nfunc @model<N>(%x: f32[N])")
    assert run.input_ir is None


def test_print_after_a_pass_not_in_the_pipeline_is_an_error():
    with pytest.raises(Error, match=r"no pass 'prun' in the pipeline \(prune\)") as e:
        run_pipeline(function_with_dead_op(), ["prune"], print_after="prun")
    assert e.value.hint == "did you mean 'prune'?"


def test_without_printing_nothing_is_printed_but_every_pass_is_timed():
    run = run_pipeline(function_with_dead_op(), ["prune"])
    assert run.dumps() == "" and [r.ir for r in run.records] == [None]
    assert len(run.function.ops) == 1
    table = run.timing_table().splitlines()
    assert table[0].split() == ["pass", "ms"]
    assert table[1].split()[0] == "prune" and float(table[1].split()[1]) >= 0
    assert table[-1].split()[0] == "total"


def test_verify_checks_the_input_and_every_pass():
    func = function_with_dead_op()
    assert run_pipeline(func, ["prune"], verify=True).function.ops[0].opcode == "exp"
    broken = func.replace(ops=func.ops[1:], outputs=(Output("dead", func.ops[0].result),))
    with pytest.raises(VerifyError, match="invalid IR in the pipeline's input: ") as e:
        run_pipeline(broken, ["prune"], verify=True)
    assert "func @model<N>(%x: f32[N])" in str(e.value)
