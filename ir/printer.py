"""The IR's text form. `ir.parser` reads it back; print → parse → print is identical.

```
model NAME
input x: f32[N,784]                                      // file:line:col
param W1: f32[784,300] = normal(mean=0.0, stddev=0.03)
func @model<N>(%x: f32[N,784], %W1: f32[784,300]) -> (f32[N,300]) {
  %0: f32[N,300] = matmul %x, %W1                        // mnist.tfl:12:14
  %s: f32[N] = sum[axis=[1], keepdims=false] %0
  return %s, total = %s, update: W1 <- %7
}
```
Values keep the user's name where there is one; others are numbered in order of definition.
"""

from __future__ import annotations

import json
import re

import numpy as np

from .core import Decl, Function, Module, Op, Value

COMMENT_COLUMN = 56
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
KEYWORDS = ("true", "false", "none", "inf", "nan")  # identifiers that read back as other values


def format_scalar(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, np.floating):
        text = str(x)  # shortest text that reads back as the same value of that precision
    else:
        text = repr(float(x))
    return text if any(c in text for c in ".eni") else text + ".0"


def format_attr(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, np.generic):  # a NumPy scalar prints (and parses back) as Python's
        value = value.item()
    if isinstance(value, np.ndarray):
        return format_array(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if isinstance(value, str):
        return value if IDENT.match(value) and value not in KEYWORDS \
            else json.dumps(value)
    return format_scalar(value)


def format_array(array: np.ndarray) -> str:
    if array.ndim == 0:
        return format_scalar(array[()])
    return "[" + ", ".join(format_array(a) for a in array) + "]"


def format_attrs(attrs: dict) -> str:
    if not attrs:
        return ""
    return "[" + ", ".join(f"{k}={format_attr(v)}" for k, v in attrs.items()) + "]"


class Namer:
    """Gives every value a unique printed name: its own, made unique, or the next number."""

    def __init__(self):
        self.names: dict[int, str] = {}
        self.taken: set[str] = set()
        self.counter = 0

    def define(self, value: Value) -> str:
        if value.name is None:
            while str(self.counter) in self.taken:
                self.counter += 1
            name = str(self.counter)
            self.counter += 1
        else:
            name, n = value.name, 1
            while name in self.taken:
                n += 1
                name = f"{value.name}.{n}"
        self.taken.add(name)
        self.names[id(value)] = name
        return name

    def __getitem__(self, value: Value) -> str:
        return self.names.get(id(value), f"<undefined {value!r}>")


def with_comment(line: str, comment) -> str:
    if comment is None:
        return line
    return f"{line.ljust(COMMENT_COLUMN - 1)} // {comment}"


def print_decl(decl: Decl) -> str:
    line = f"{decl.kind} {decl.name}: {decl.type}"
    if decl.init is not None:
        args = ", ".join(f"{k}={format_attr(v)}" for k, v in decl.init.args)
        line += f" = {decl.init.kind}({args})"
    return with_comment(line, decl.loc)


def print_op(op: Op, namer: Namer, indent: str) -> list[str]:
    operands = ", ".join("%" + namer[v] for v in op.operands)
    results = ", ".join(f"%{namer.define(r)}: {r.type}" for r in op.results)
    attrs = dict(op.attrs)
    literal = attrs.pop("value", None) if op.opcode == "const" else None  # written after
    text = f"{indent}{results} = {op.opcode}{format_attrs(attrs)}"
    if op.opcode == "const":
        text += " " + format_array(literal)
    elif operands:
        text += " " + operands
    if op.region is None:
        return [with_comment(text, op.loc)]
    lines = [with_comment(text + " {", op.loc)]
    lines += print_body(op.region, namer, indent + "  ", keyword="yield")
    lines.append(indent + "}")
    return lines


def print_body(func: Function, namer: Namer, indent: str, keyword: str) -> list[str]:
    """A function's or a region's ops and its return, after its arguments are named."""
    lines = []
    if keyword == "yield":
        args = ", ".join(f"%{namer.define(a)}: {a.type}" for a in func.args)
        lines.append(f"{indent}^({args}):")
    for op in func.ops:
        lines += print_op(op, namer, indent)
    outputs = []
    for out in func.outputs:
        ref = "%" + namer[out.value]
        if out.step is not None:
            outputs.append(f"{out.step}: {out.label} <- {ref}")
        elif out.label == namer[out.value] or keyword == "yield":
            outputs.append(ref)
        else:
            outputs.append(f"{out.label} = {ref}")
    lines.append(f"{indent}{keyword} " + ", ".join(outputs) if outputs else indent + keyword)
    return lines


def print_function(func: Function) -> str:
    namer = Namer()
    dims = f"<{', '.join(func.dims)}>" if func.dims else ""
    args = ", ".join(f"%{namer.define(a)}: {a.type}" for a in func.args)
    results = ", ".join(str(out.value.type) for out in func.outputs)
    lines = [f"func @{func.name}{dims}({args}) -> ({results}) {{"]
    lines += print_body(func, namer, "  ", keyword="return")
    lines.append("}")
    return "\n".join(lines)


def print_module(module: Module) -> str:
    parts = [f"model {format_attr(module.name)}"]
    if module.decls:
        parts.append("\n".join(print_decl(d) for d in module.decls))
    parts += [print_function(f) for f in module.functions]
    return "\n\n".join(parts) + "\n"
