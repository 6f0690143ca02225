"""What the pass tests share: input IR → expected IR checks, and broadcasting for graph builders."""

from tflc.ir import Function, ShapeError, Value, parse_function, print_function, verify
from tflc.ir.registry import broadcast_shapes


def canonical(text: str) -> str:
    return print_function(parse_function(text.strip()))


def check_rewrite(run_pass, before: str, after: str | None) -> Function:
    """`run_pass` on the IR `before` verifies and prints as `after` (None: unchanged)."""
    result = run_pass(parse_function(before.strip()))
    verify(result)
    assert print_function(result) == canonical(after or before)
    return result


def check_pure_and_idempotent(run_pass, before: str) -> None:
    """The pass leaves its input as it was, and a second run changes nothing."""
    func = parse_function(before.strip())
    text = print_function(func)
    once = run_pass(func)
    assert print_function(func) == text
    assert print_function(run_pass(once)) == print_function(once)


def broadcasts(a: Value, b: Value) -> bool:
    try:
        broadcast_shapes(a.type.shape, b.type.shape)
    except ShapeError:
        return False
    return True
