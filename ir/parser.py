"""Reads the IR's text form (written by `ir.printer`; grammar in `ir.lark`) back into IR objects.

Print → parse → print is identical. Reading re-runs every op's type rule and reports a result
type that differs from the written one; every mistake in the text is a `tflc.Error` located in
the text. `docs/ir.md` describes the format.
"""

from __future__ import annotations

import functools
import json
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import registry
from .builder import result_type
from .core import Decl, Function, Init, Module, Op, Output, Value
from .errors import Error, Loc
from .types import DTYPES, NUMPY_DTYPES, TensorType, dim_product

# lark, with the regex and interegular modules it loads, takes ~40 ms to import: it is imported
# by the first parse, not by `import tflc`. Its tokens are strings; its trees are the other
# nodes of a parse tree (`_is_tree`).
if TYPE_CHECKING:
    import lark
    from lark import Token, Tree

# What a syntax error says it expected instead, for the terminals that are not plain strings.
TERMINAL_NAMES = {
    "NAME": "a name", "QDIM": "a ?dim", "FUNC_NAME": "@name", "DEF": "%name:",
    "TYPE": "a type like f32[N,3]",
    "VALUE": "a %value", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "DECL_KIND": "input, param, state or counter", "$END": "the end of the text",
}

# A `//` comment on a line, skipping `//` inside quoted strings; and a location in one.
COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//(.*)')
LOCATION = re.compile(r"\s*(.*):(\d+):(\d+)\s*")
TYPE = re.compile(r"(\w+)\[(.*)\]")
DIM_FACTOR = re.compile(r"[0-9]+|[A-Za-z_][A-Za-z0-9_.]*|\?[A-Za-z0-9_]*")


@functools.cache
def _lark() -> lark.Lark:
    import lark

    grammar = Path(__file__).with_name("ir.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", start=["module", "func"], propagate_positions=True)


def parse_module(text: str, file: str = "<ir>") -> Module:
    """A module as `print_module` writes it: `model NAME`, decls, then functions."""
    reader = _Reader(text, file)
    return reader.module(reader.parse("module"))


def parse_function(text: str, file: str = "<ir>") -> Function:
    """One function as `print_function` writes it (handy for pass tests written as IR text)."""
    reader = _Reader(text, file)
    return reader.function(reader.parse("func"))


class _Scope:
    """The values visible at a point: a function's, or a region's and its enclosing ones."""

    def __init__(self, parent: _Scope | None = None):
        self.values: dict[str, Value] = {}
        self.parent = parent

    def lookup(self, name: str) -> Value | None:
        scope = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        return None


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.lines = text.splitlines()
        self.locs = self._location_comments()
        self.defined: dict[str, Loc] = {}  # every name defined in the current function
        self.types: dict[str, TensorType] = {}  # type texts read so far

    # -- errors and locations ------------------------------------------------------------------

    def at(self, node) -> Loc:
        """The place in the IR text of a token or a tree."""
        if _is_tree(node):
            return self.loc(node.meta.line, node.meta.column)
        return self.loc(node.line, node.column)

    def loc(self, line: int, col: int) -> Loc:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Loc(self.file, line, col, text)

    def error(self, message: str, node, **kwargs) -> Error:
        return Error(message, self.at(node), **kwargs)

    def _location_comments(self) -> dict[int, Loc]:
        """Line number → the source location written in a `// file:line:col` comment there."""
        locs = {}
        for number, line in enumerate(self.lines, 1):
            for match in COMMENT.finditer(line):
                if match.group(1) is None:
                    continue
                loc = LOCATION.fullmatch(match.group(1))
                if loc:
                    locs[number] = Loc(loc.group(1), int(loc.group(2)), int(loc.group(3)))
                break
        return locs

    def parse(self, start: str) -> Tree:
        import lark

        try:
            return _lark().parse(self.text, start=start)
        except lark.UnexpectedInput as e:
            raise self._syntax_error(e) from None

    def _syntax_error(self, e: lark.UnexpectedInput) -> Error:
        import lark

        line, col = e.line, e.column
        if isinstance(e, lark.UnexpectedCharacters):
            message = f"unexpected character {self.text[e.pos_in_stream]!r}"
        else:
            accepted = getattr(e, "accepts", None) or e.expected  # `accepts` is exact for LALR
            expected = sorted(_describe_terminal(name) for name in accepted)
            at_end = isinstance(e, lark.UnexpectedEOF) or e.token.type == "$END"
            found = "the end of the text" if at_end else repr(str(e.token))
            message = f"unexpected {found}, expected " + (
                expected[0] if len(expected) == 1 else "one of " + ", ".join(expected))
            if at_end:  # point just past the last text
                lines = self.text.rstrip().splitlines() or [""]
                line, col = len(lines), len(lines[-1]) + 1
        return Error(f"syntax error: {message}", self.loc(line, col))

    # -- module and decls ----------------------------------------------------------------------

    def module(self, tree: Tree) -> Module:
        name_token, *items = tree.children
        name = json.loads(name_token) if name_token.type == "STRING" else str(name_token)
        decls, functions, seen = [], [], {}
        for item in items:
            if item.data == "decl":
                decls.append(self.decl(item))
                continue
            func = self.function(item)
            if func.name in seen:
                raise self.error(f"function @{func.name} is defined twice", item,
                                 notes=(("first defined here", seen[func.name]),))
            seen[func.name] = self.at(item)
            functions.append(func)
        return Module(name, tuple(decls), tuple(functions))

    def decl(self, tree: Tree) -> Decl:
        kind, name, type_token, *init_tree = tree.children
        decl_type = self.type(type_token)
        init = self.init(init_tree[0], decl_type) if init_tree else None
        return Decl(str(kind), str(name), decl_type, init, self.locs.get(tree.meta.line))

    def init(self, tree: Tree, decl_type: TensorType) -> Init:
        kind, *arg_trees = tree.children
        args = []
        for arg in arg_trees:
            name, value = arg.children
            if kind == "value" and name == "value":  # a literal, in the decl's dtype
                args.append((str(name), self.array(value, decl_type.dtype)))
            else:
                args.append((str(name), self.attr_value(value)))
        return Init(str(kind), tuple(args))

    # -- functions, ops and regions ------------------------------------------------------------

    def function(self, tree: Tree) -> Function:
        name_token, *items, body = tree.children
        dims = ()
        if items and _is(items[0], "dims"):
            dims = tuple(str(d) for d in items.pop(0).children)
        self.defined = {}
        scope = _Scope()
        args = tuple(self.define_arg(a, scope) for a in items if _is(a, "arg"))
        written = [(t, self.type(t)) for t in items if isinstance(t, str)]  # tokens
        *op_trees, return_tree = body.children
        ops = tuple(self.op(o, scope) for o in op_trees)
        outputs = self.outputs(return_tree, scope, in_region=False)
        returned = [out.value.type for out in outputs]
        if [t for _, t in written] != returned:
            where = next((node for (node, t), r in zip(written, returned) if t != r), tree)
            raise self.error(f"@{name_token[1:]} says it returns "
                             f"({', '.join(str(t) for _, t in written)}) but it returns "
                             f"({', '.join(str(t) for t in returned)})", where)
        return Function(str(name_token[1:]), dims, args, ops, outputs)

    def define_arg(self, tree: Tree, scope: _Scope) -> Value:
        token, type_token = tree.children
        return self.define(token, self.type(type_token), scope)

    def define(self, token: Token, value_type: TensorType, scope: _Scope) -> Value:
        """A new value named by a `%name:` token; numbered names (`%3`) give unnamed values."""
        name = token.rstrip(" \t:")[1:]
        if name in self.defined:
            raise self.error(f"%{name} is defined twice", token,
                             notes=(("first defined here", self.defined[name]),))
        if name[0].isdigit() and not name.isdigit():
            raise self.error(f"bad value name %{name}: a name starts with a letter or _, "
                             "or is a number", token)
        self.defined[name] = self.at(token)
        value = Value(value_type, None if name.isdigit() else name)
        scope.values[name] = value
        return value

    def use(self, token: Token, scope: _Scope) -> Value:
        value = scope.lookup(token[1:])
        if value is None:
            inside = " (it is defined inside a region, which is not visible here)" \
                if token[1:] in self.defined else ""
            raise self.error(f"{token} is not defined{inside}", token)
        return value

    def op(self, tree: Tree, scope: _Scope) -> Op:
        results = [c for c in tree.children if _is(c, "result")]
        opcode_token = tree.children[len(results)]
        parts = {c.data: c for c in tree.children[len(results) + 1:]}
        opcode = str(opcode_token)
        if opcode not in registry.REGISTRY:
            raise self.error(f"unknown op '{opcode}'", opcode_token)
        opdef = registry.get(opcode)
        result_types = [self.type(r.children[1]) for r in results]
        attrs = self.op_attrs(parts.get("attrs"), opdef)

        if ("const_value" in parts) != (opcode == "const"):
            raise self.error("only const takes a literal value" if opcode != "const" else
                             "const needs a literal value, like `const 1.0` or `const [1, 2]`",
                             parts.get("const_value", opcode_token))
        if opcode == "const":
            attrs["value"] = self.array(parts["const_value"].children[0], result_types[0].dtype,
                                        shape_if_empty=result_types[0].shape)
        operand_tokens = parts["operands"].children if "operands" in parts else []
        operands = tuple(self.use(t, scope) for t in operand_tokens)
        if opdef.arity is not None and len(operands) != opdef.arity:
            raise self.error(f"{opcode} takes {opdef.arity} operands, got {len(operands)}",
                             opcode_token)

        region = self.region(parts["region"], opcode, scope) if "region" in parts else None
        if region is None:
            self.check_type_rule(tree, results, result_types, opcode, operands, attrs)
        else:
            self.check_region(parts["region"], results, result_types, operands, region)
        values = tuple(self.define(r.children[0], t, scope) for r, t in zip(results, result_types))
        return Op(opcode, operands, values, attrs, self.locs.get(tree.meta.line), region)

    def op_attrs(self, tree: Tree | None, opdef: registry.OpDef) -> dict:
        """The written attributes in written order, then the defaults of those left out."""
        attrs = {}
        for attr in tree.children if tree is not None else []:
            name, value = attr.children
            if name not in opdef.attrs or (opdef.name == "const" and name == "value"):
                raise self.error(f"{opdef.name} has no attribute '{name}'", name)
            if name in attrs:
                raise self.error(f"attribute '{name}' is given twice", name)
            attrs[str(name)] = self.attr_value(value)
        return {**attrs, **{k: v for k, v in opdef.attrs.items() if k not in attrs}}

    def check_type_rule(self, tree, results, result_types, opcode, operands, attrs) -> None:
        if len(results) != 1:
            raise self.error(f"{opcode} has one result, not {len(results)}", tree)
        try:
            expected = result_type(opcode, tuple(v.type for v in operands), attrs)
        except registry.ShapeError as e:
            raise self.error(f"{opcode}: {e}", tree) from None
        except Exception as e:  # a type rule given attributes it cannot read
            raise self.error(f"{opcode}: bad attributes ({type(e).__name__}: {e})", tree) \
                from None
        if expected != result_types[0]:
            raise self.error(f"{opcode}: the type rule gives {expected}, not the written "
                             f"{result_types[0]}", results[0].children[1])

    def region(self, tree: Tree, opcode: str, scope: _Scope) -> Function:
        """A fused op's body: its own arguments, ops and yields, seeing the enclosing values."""
        inner = _Scope(scope)
        args = tuple(self.define_arg(a, inner) for a in tree.children if a.data == "arg")
        ops = tuple(self.op(o, inner) for o in tree.children if o.data == "op")
        outputs = self.outputs(tree.children[-1], inner, in_region=True)
        dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
        return Function(opcode, dims, args, ops, outputs)

    def check_region(self, tree, results, result_types, operands, region: Function) -> None:
        arg_types = [a.type for a in region.args]
        if arg_types != [v.type for v in operands]:
            raise self.error("the region's arguments ("
                             + ", ".join(str(t) for t in arg_types)
                             + ") do not match the op's operands ("
                             + ", ".join(str(v.type) for v in operands) + ")", tree)
        yielded = [out.value.type for out in region.outputs]
        if yielded != result_types:
            raise self.error("the region yields (" + ", ".join(str(t) for t in yielded)
                             + ") but the op's results are ("
                             + ", ".join(str(t) for t in result_types) + ")", results[0])

    def outputs(self, tree: Tree, scope: _Scope, in_region: bool) -> tuple[Output, ...]:
        outputs = []
        for index, node in enumerate(tree.children):
            *names, value_token = node.children
            value = self.use(value_token, scope)
            if node.data == "plain_output" and in_region:
                outputs.append(Output(str(index), value))  # a region's yields go by position
            elif node.data == "plain_output":
                if value_token[1:].isdigit():
                    raise self.error(f"an output needs a name: write `NAME = {value_token}`",
                                     value_token)
                outputs.append(Output(value_token[1:], value))
            elif node.data == "labelled_output":
                outputs.append(Output(str(names[0]), value))
            else:
                outputs.append(Output(str(names[1]), value, str(names[0])))
        return tuple(outputs)

    # -- types, attribute values and literals --------------------------------------------------

    def type(self, token: Token) -> TensorType:
        """`DTYPE[DIM, ...]`, each dim a size, a symbol (`N`, `?1`) or a product (`784*N`)."""
        if token not in self.types:  # a function repeats a few types many times
            self.types[str(token)] = self.read_type(token)
        return self.types[token]

    def read_type(self, token: Token) -> TensorType:
        dtype, inside = TYPE.fullmatch(token).groups()
        if dtype not in DTYPES:
            raise self.error(f"unknown dtype '{dtype}' (one of {', '.join(DTYPES)})", token)
        dims, col = [], token.column + len(dtype) + 1
        for text in inside.split(",") if inside.strip() else []:
            factors = [f.strip() for f in text.split("*")]
            if not all(DIM_FACTOR.fullmatch(f) for f in factors):
                raise Error(f"bad dim '{text.strip()}': a dim is a size, a symbol or a product "
                            "of them", self.loc(token.line, col))
            dims.append(dim_product([int(f) if f.isdigit() else f for f in factors]))
            col += len(text) + 1
        return TensorType(str(dtype), tuple(dims))

    def attr_value(self, node):
        if _is_tree(node):
            if node.data == "none":
                return None
            return tuple(self.attr_value(item) for item in node.children)
        if node.type == "NAME":
            return str(node)
        if node.type == "STRING":
            return json.loads(node)
        return SCALARS[node.type](node)

    def array(self, node, dtype: str, shape_if_empty=None) -> np.ndarray:
        """A literal as an array of `dtype`; floats read to the nearest value of that precision.

        A literal with no elements takes the written shape where there is one (`[]` is printed
        for every shape with a zero in it)."""
        tokens = []
        shape = self.literal_shape(node, tokens)
        kinds = {"bool": ("TRUE", "FALSE"), "i32": ("INT",), "i64": ("INT",)}.get(
            dtype, ("INT", "FLOAT", "INF", "NEG_INF", "NAN"))
        for token in tokens:
            if token.type not in kinds:
                raise self.error(f"{token} is not a {dtype} value", token)
        if dtype in ("f32", "f64"):
            array = _read_floats([str(t) for t in tokens], dtype)
            for token, x in zip(tokens, array):
                if math.isinf(x) and token.type not in ("INF", "NEG_INF"):
                    raise self.error(f"{token} is out of range for {dtype}", token)
        else:
            try:
                array = np.array([SCALARS[t.type](t) for t in tokens], NUMPY_DTYPES[dtype])
            except OverflowError:
                raise self.error(f"a value is out of range for {dtype}", node) from None
        if not tokens and shape_if_empty is not None \
                and all(isinstance(d, int) for d in shape_if_empty) and 0 in shape_if_empty:
            shape = shape_if_empty
        return array.reshape(shape)

    def literal_shape(self, node, tokens: list) -> tuple[int, ...]:
        """The shape of a nested-list literal (which must be rectangular); collects its scalars."""
        if isinstance(node, str):  # a token
            if node.type in ("NAME", "STRING"):
                raise self.error(f"{node} is not a number", node)
            tokens.append(node)
            return ()
        if node.data == "none":
            raise self.error("none is not a number", node)
        shapes = [self.literal_shape(item, tokens) for item in node.children]
        if any(s != shapes[0] for s in shapes):
            raise self.error("the literal is not rectangular (its rows differ in length)", node)
        return (len(shapes),) + (shapes[0] if shapes else ())


SCALARS = {
    "INT": int, "FLOAT": float, "INF": float, "NEG_INF": float, "NAN": float,
    "TRUE": lambda token: True, "FALSE": lambda token: False,
}


def _is(node, rule: str) -> bool:
    return _is_tree(node) and node.data == rule


def _is_tree(node) -> bool:
    """A rule's node of a parse tree; the others are tokens (strings) and the None of an absent
    optional part."""
    return node is not None and not isinstance(node, str)


def _describe_terminal(name: str) -> str:
    if name in TERMINAL_NAMES:
        return TERMINAL_NAMES[name]
    pattern = _lark().get_terminal(name).pattern
    return repr(pattern.value) if pattern.type == "str" else name.lower()


def _read_floats(texts: list[str], dtype: str) -> np.ndarray:
    """Decimal texts → the nearest f64 or f32 values (correctly rounded, ties to even).

    Going through f64 on the way to f32 rounds twice, which errs only when the f64 lands exactly
    half-way between two f32 values: those few are settled against the exact decimal."""
    wide = np.array([float(t) for t in texts], np.float64)
    if dtype == "f64":
        return wide
    with np.errstate(over="ignore"):  # out of range: inf, which the caller reports
        narrow = wide.astype(np.float32)
        back = narrow.astype(np.float64)
        toward = np.where(wide > back, np.inf, -np.inf).astype(np.float32)
        neighbour = np.nextafter(narrow, toward).astype(np.float64)
    halfway = (wide != back) & (wide == (back + neighbour) / 2)
    for i in np.flatnonzero(halfway):
        exact, middle = Fraction(texts[i]), Fraction(float(wide[i]))
        past_halfway = exact > middle if neighbour[i] > back[i] else exact < middle
        if past_halfway:
            narrow[i] = neighbour[i]
    return narrow
