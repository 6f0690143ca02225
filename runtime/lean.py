"""The per-run path of `Model.run`, generated as Python for each planned run.

A small kernel takes a few microseconds, as long as the Python around it: looping over specs,
building dicts of sizes and lists of arguments. So, for one entry, the usual feeds (exactly its
inputs, each a C-ordered NumPy array of its dtype and shape) are checked by straight-line code
written for that entry, which then gathers the params and calls the compiled code. Anything
unusual (a list, another dtype, a missing name, a wrong shape) is declined, with nothing run:
`Model.run` then takes the full check (feeds.py), which converts what it can and explains the
rest. The generated source is kept on the function (`__source__`) for anyone debugging it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Module
from ..ir.types import NUMPY_DTYPES, dim_expression
from .init import COUNTER, counter_value

if TYPE_CHECKING:
    from .model import Entry, Model

DECLINED = object()  # what a generated function returns for feeds it leaves to the full check


class Source:
    """Python source being written: indented lines and the names they use."""

    def __init__(self, namespace: dict | None = None):
        self.lines: list[str] = []
        self.namespace = {"DECLINED": DECLINED, **(namespace or {})}

    def line(self, text: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + text)

    def constant(self, value: object, prefix: str) -> str:
        """A name the source can use for `value`."""
        for name, known in self.namespace.items():
            if known is value:
                return name
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def function(self, name: str, parameters: str) -> Callable:
        text = "\n".join([f"def {name}({parameters}):", *self.lines]) + "\n"
        exec(compile(text, f"<tflc {name}>", "exec"), self.namespace)
        function = self.namespace[name]
        function.__source__ = text
        return function


def check_usual_feeds(source: Source, module: Module, inputs: Sequence[str],
                      declined: str = "DECLINED") -> dict | None:
    """Lines returning `declined` unless `feeds` are the usual ones for these inputs; after
    them, `feed<i>` holds the i-th input's array. Returns the variable holding each dim's size,
    or None where a dim is only ever a product (784*N): that takes the full check every time."""
    source.line(f"if len(feeds) != {len(inputs)}:")
    source.line(f"return {declined}", 2)
    if inputs:
        source.line("try:")
        for i, name in enumerate(inputs):
            source.line(f"feed{i} = feeds[{name!r}]", 2)
        source.line("except KeyError:")
        source.line(f"return {declined}", 2)
    ndarray = source.constant(np.ndarray, "ndarray")
    sizes: dict[str, str] = {}
    products = []  # (feed, axis, dim) checked once every symbol is bound
    order = {d.name: i for i, d in enumerate(module.decls)}  # the first input with a dim binds it
    for i, name in sorted(enumerate(inputs), key=lambda item: order[item[1]]):
        decl_type = module.decl(name).type
        dtype = source.constant(np.dtype(NUMPY_DTYPES[decl_type.dtype]), "dtype")
        source.line(f"if (type(feed{i}) is not {ndarray} or feed{i}.dtype is not {dtype}"
                    f" or not feed{i}.flags.c_contiguous):")
        source.line(f"return {declined}", 2)
        shape = decl_type.shape
        if all(isinstance(dim, int) for dim in shape):
            source.line(f"if feed{i}.shape != {tuple(shape)!r}:")
            source.line(f"return {declined}", 2)
            continue
        source.line(f"shape{i} = feed{i}.shape")
        conditions = [f"len(shape{i}) != {len(shape)}"]
        for axis, dim in enumerate(shape):
            if isinstance(dim, int):
                conditions.append(f"shape{i}[{axis}] != {dim}")
            elif "*" in dim:
                products.append((i, axis, dim))
            elif dim in sizes:
                conditions.append(f"shape{i}[{axis}] != {sizes[dim]}")
        source.line(f"if {' or '.join(conditions)}:")
        source.line(f"return {declined}", 2)
        for axis, dim in enumerate(shape):
            if isinstance(dim, str) and "*" not in dim and dim not in sizes:
                sizes[dim] = f"size{len(sizes)}"
                source.line(f"{sizes[dim]} = shape{i}[{axis}]")
    for i, axis, dim in products:
        size = dim_expression(dim, sizes)
        if size is None:
            return None
        source.line(f"if shape{i}[{axis}] != {size}:")
        source.line(f"return {declined}", 2)
    return sizes


def quick_check(module: Module, inputs: Sequence[str]) -> Callable[[dict], dict | None]:
    """`quick(feeds)`: the sizes of the dims the usual feeds bind, or None for any other feeds
    (for backends that are called with sizes and arguments)."""
    source = Source()
    sizes = check_usual_feeds(source, module, inputs, declined="None")
    if sizes is None:
        return lambda feeds: None
    source.line("return {" + ", ".join(f"{dim!r}: {variable}"
                                       for dim, variable in sizes.items()) + "}")
    return source.function("quick_check", "feeds")


def lean_run(model: Model, entry: Entry, returns: str) -> Callable | None:
    """`run(feeds)`: `model.run` of `entry` for the usual feeds, returning what run returns
    ("none", "one" array or a "list"), or DECLINED with nothing run. None where the backend's
    code cannot be called inline (only the llvm backend's can) or a dim is not read off an
    input's shape."""
    inline = getattr(entry.compiled, "inline", None)
    if inline is None:
        return None
    source = Source({"values": model._values, "model": model, "counter_value": counter_value})
    sizes = check_usual_feeds(source, model.module, entry.inputs)
    if sizes is None or not set(entry.function.dims) <= sizes.keys():
        return None  # (a dim no input binds is an error, which the full check reports)
    args = []
    for name in entry.arguments:
        if name in entry.inputs:
            args.append(f"feed{entry.inputs.index(name)}")
        elif name == COUNTER:
            args.append("counter")
            source.line("counter = counter_value(model._counter, model.seed)")
        else:
            args.append(f"arg{len(args)}")
            source.line(f"{args[-1]} = values[{name!r}]")
    lines, namespace, outputs = inline(args, sizes)
    source.namespace.update(namespace)
    for line in lines:
        source.line(line)
    fetched = outputs[:len(entry.fetches)]
    # an output written into an argument is that argument: the user gets a copy
    fetched = [f"{out}.copy()" if out in args else out for out in fetched]
    for label, out in zip(entry.updates, outputs[len(entry.fetches):]):
        if out not in args:  # (one written in place is already the param's array)
            source.line(f"values[{label!r}] = {out}")
    if entry.counter:
        source.line("model._counter += 1")
    source.line("return " + ("None" if returns == "none" else fetched[0] if returns == "one"
                             else f"[{', '.join(fetched)}]"))
    return source.function("lean_run", "feeds")
