"""Every registered op has every rule it needs, and is exercised by the tests: a missing rule or
an untested op fails here rather than in a user's model."""

import ast
import functools
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from tflc.ir import REGISTRY
from tflc.ir.registry import KINDS

TESTS = Path(__file__).resolve().parents[1]
NOT_PRIMITIVE = ("composite", "special", "source")
PRIMITIVES = sorted(name for name, d in REGISTRY.items() if d.kind not in NOT_PRIMITIVE)
WITH_REFERENCE = sorted(name for name, d in REGISTRY.items() if d.reference is not None)


def string_constants(path: Path) -> set[str]:
    """Every string literal of a file: op names appear as `emit("sum", ...)` or table keys."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@functools.cache
def words_in_tests() -> set[str]:
    """Every identifier-like word of the other test files (Python, or .tfl text in strings)."""
    words: set[str] = set()
    for path in sorted(TESTS.rglob("test_*.py")):
        if path.resolve() != Path(__file__).resolve():
            words |= set(re.findall(r"[A-Za-z_]\w*", path.read_text(encoding="utf-8")))
    return words


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_op_has_a_type_rule_and_a_kind(name):
    opdef = REGISTRY[name]
    assert opdef.name == name
    assert opdef.kind in KINDS
    assert callable(opdef.infer)
    assert opdef.doc
    if opdef.kind == "composite":
        assert callable(opdef.expand), f"composite {name} has no expansion"


@pytest.mark.parametrize("name", PRIMITIVES)
def test_every_primitive_has_a_reference(name):
    assert callable(REGISTRY[name].reference), f"primitive {name} has no NumPy reference"


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_references_follow_the_backend_contract(name):
    """The numpy backend copies `op_<name>`'s source into a module that imports only numpy as
    np, passes operands positionally, every attribute as a keyword, and `out_shape` if asked."""
    opdef = REGISTRY[name]
    reference = opdef.reference
    assert reference.__name__ == f"op_{name}"
    assert set(inspect.getclosurevars(reference).globals) <= {"np"}
    namespace = {"np": np}
    exec(inspect.getsource(reference), namespace)  # the source stands alone
    assert callable(namespace[f"op_{name}"])
    params = inspect.signature(reference).parameters.values()
    positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    variadic = [p for p in params if p.kind == p.VAR_POSITIONAL]
    keywords = {p.name for p in params if p.kind == p.KEYWORD_ONLY} - {"out_shape"}
    if opdef.arity is None:
        assert variadic and not positional
    else:
        assert len(positional) == opdef.arity and not variadic
    assert keywords == set(opdef.attrs)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_every_primitive_is_in_the_op_tests(name):
    assert name in string_constants(TESTS / "ir" / "test_ops.py"), \
        f"tests/ir/test_ops.py does not test {name}"


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - set(PRIMITIVES)))
def test_every_other_op_is_tested_somewhere(name):
    assert name in words_in_tests(), f"no test mentions op {name}"


@pytest.mark.parametrize("name", PRIMITIVES)
def test_every_differentiable_primitive_has_a_vjp(name):
    opdef = REGISTRY[name]
    if opdef.differentiable:
        assert callable(opdef.vjp), f"{name} is differentiable but has no VJP rule"
    else:
        assert opdef.vjp is None, f"{name} is not differentiable but has a VJP rule"
