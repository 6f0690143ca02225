"""`.tfl` parse tree → IR module (docs/internals.md, "What the frontend produces").

`ModelBuilder` walks the statements in order. Declarations become decls and function arguments;
every expression is built with `ir.Builder.emit`, so each op is type-checked by its registry rule
where the user wrote it. Literals stay weak (`literals.py`) until they meet a tensor. Functions are
inlined at each call; scopes prefix names (`fc1.h`); steps and `train` add step outputs.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from lark import Token, Tree

from ..ir import Builder, Decl, Error, Function, Init, Loc, Module, Output, TensorType, Value
from ..ir.errors import did_you_mean
from ..ir.optimizers import ARGUMENTS as OPTIMIZERS
from ..ir.optimizers import expand_optimizer
from ..ir.registry import ShapeError, broadcast_shapes
from ..ir.types import DTYPES
from .builtins import ATTR_KINDS, BUILTINS, INITIALIZERS, Builtin
from .literals import (
    Weak,
    dtype_for,
    fold,
    peer_dtype,
    tensor_literal,
    to_array,
    weak_bool,
    weak_number,
)
from .syntax import Source, parse_tree, reserved_words

BINARY_OPCODES = {"PLUS": "add", "MINUS": "sub", "STAR": "mul", "SLASH": "div", "AT": "matmul",
                  "POW": "pow", "EQ": "eq", "NE": "ne", "LT": "lt", "LE": "le", "GT": "gt",
                  "GE": "ge", "AND": "and", "OR": "or"}
UNARY_OPCODES = {"MINUS": "neg", "NOT": "not"}
KIND_WORDS = {"input": "an input", "param": "a param", "state": "a state", "const": "a const",
              "def": "a defined value", "local": "a local value", "fn": "a function",
              "step": "a step", "scope": "a scope"}
MAX_SEED = 2**64


@dataclass(frozen=True)
class FnDef:
    """A `fn`: its parameters (name tokens), its body (an expression or a `fn_body` block) and
    the scope it was defined in, where its free names are looked up."""

    name: str
    params: tuple[Token, ...]
    body: Tree
    scope: tuple[str, ...]


@dataclass
class Entry:
    """What a name means: its kind (KIND_WORDS), full dotted name, place, and value or fn."""

    kind: str
    name: str
    loc: Loc | None
    value: Value | Weak | tuple | None = None
    fn: FnDef | None = None


@dataclass
class Frame:
    """One inlined call of a fn: its parameters and local definitions."""

    fn: FnDef
    locals: dict[str, Entry]


def build_module(text: str, filename: str) -> Module:
    """The IR module of a `.tfl` program (program.py's `parse_source` is the way in)."""
    source = Source(text, filename)
    builder = ModelBuilder(source)
    try:
        return builder.build(parse_tree(source), default_model_name(filename))
    except RecursionError:
        raise Error("this is nested too deeply to compile", builder.here) from None


def default_model_name(filename: str) -> str:
    """The file's stem, made a valid name (`2-layer.tfl` → `_2_layer`)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", Path(filename).stem)
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _broadcasts_to(shape, target) -> bool:
    try:
        return broadcast_shapes(shape, target) == tuple(target)
    except ShapeError:
        return False


ATTR_CHECKS = {
    "int": _is_int,
    "axes": lambda v: _is_int(v) or isinstance(v, list) and all(map(_is_int, v)),
    "bool": lambda v: isinstance(v, bool),
    "ints": lambda v: isinstance(v, list) and all(map(_is_int, v)),
    "shape": lambda v: isinstance(v, list) and all(_is_int(d) or isinstance(d, str) for d in v),
}


class ModelBuilder:
    def __init__(self, source: Source):
        self.source = source
        self.b = Builder()
        self.decls: list[Decl] = []
        self.args: list[Value] = []
        self.arg_decls: dict[int, Decl] = {}  # id of an arg value → its decl
        self.outputs: list[Output] = []
        self.updates: list[Output] = []
        self.symbols: dict[str, Entry] = {}  # full dotted name → entry
        self.scope: tuple[str, ...] = ()
        self.frames: list[Frame] = []
        self.dims: dict[str, None] = {}  # symbolic dims named by inputs, in order
        self.fresh_dims = itertools.count(1)
        self.dropout_streams = itertools.count()
        self.run_counter: Value | None = None
        self.model_name: str | None = None
        self.statements = 0
        self.here: Loc | None = None  # the statement being built

    def build(self, tree: Tree, default_name: str) -> Module:
        for stmt in tree.children:
            self.statement(stmt)
        dims = tuple(dict.fromkeys(s for a in self.args for s in a.type.symbols))
        func = Function("model", dims, tuple(self.args), tuple(self.b.ops),
                        tuple(self.outputs + self.updates))
        return Module(self.model_name or default_name, tuple(self.decls), (func,))

    # -- places, names and lookup -----------------------------------------------------------------

    def loc(self, node: Tree | Token | None) -> Loc | None:
        return (node is not None and self.source.loc_of(node)) or self.here

    def statement(self, node: Tree) -> None:
        self.here = self.loc(node)
        self.statements += 1
        getattr(self, "stmt_" + node.data)(node)

    def check_name(self, token: Token, keyword_ok: bool = False) -> str:
        """A name the user defines: plain, not a builtin or dtype, not reserved. Steps may be
        named by a keyword (`train step = ...`): no expression ever names a step."""
        name, loc = str(token), self.loc(token)
        if "." in name:
            raise Error(f"cannot define the dotted name '{name}' here", loc,
                        hint=f"define it inside `scope {name.split('.')[0]} {{ ... }}`")
        if name in reserved_words() and not keyword_ok:
            raise Error(f"'{name}' is a keyword and cannot be used as a name", loc)
        if name in BUILTINS:
            raise Error(f"'{name}' is a builtin function and cannot be redefined", loc)
        if name in DTYPES:
            raise Error(f"'{name}' is a dtype and cannot be redefined", loc)
        if name.startswith("__"):
            raise Error(f"'{name}': names starting with '__' are reserved for the compiler", loc)
        return name

    def qualified(self, name: str) -> str:
        return name if self.frames else ".".join(self.scope + (name,))

    def claim(self, entry: Entry) -> Entry:
        table = self.frames[-1].locals if self.frames else self.symbols
        if entry.name in table:
            raise Error(f"'{entry.name}' is already defined", entry.loc,
                        notes=[("first defined here", table[entry.name].loc)])
        table[entry.name] = entry
        return entry

    def define(self, token: Token, kind: str, value=None, fn: FnDef | None = None) -> Entry:
        name = self.qualified(self.check_name(token, keyword_ok=kind == "step"))
        return self.claim(Entry(kind, name, self.loc(token), value, fn))

    def find(self, name: str) -> Entry | None:
        """`name` looked up in the innermost fn call, then its scope and every scope outside."""
        scope = self.scope
        if self.frames:
            frame = self.frames[-1]
            if name in frame.locals:
                return frame.locals[name]
            scope = frame.fn.scope
        for depth in range(len(scope), -1, -1):
            entry = self.symbols.get(".".join(scope[:depth] + (name,)))
            if entry is not None:
                return entry
        return None

    def visible_names(self) -> list[str]:
        scope = self.frames[-1].fn.scope if self.frames else self.scope
        names = list(self.frames[-1].locals) if self.frames else []
        for full in self.symbols:
            names.append(full)
            for depth in range(1, len(scope) + 1):
                prefix = ".".join(scope[:depth]) + "."
                if full.startswith(prefix):
                    names.append(full[len(prefix):])
        return names

    def lookup(self, token: Token) -> Entry:
        name = str(token)
        entry = self.find(name)
        if entry is not None:
            return entry
        if name in reserved_words():
            raise Error(f"'{name}' is a keyword and cannot be used as a name", self.loc(token))
        if name in BUILTINS:
            raise Error(f"'{name}' is a builtin function: call it, as in {name}(...)",
                        self.loc(token))
        scoped = [full for full in self.symbols if full.endswith("." + name)]
        raise Error(f"undefined name '{name}'", self.loc(token),
                    hint=did_you_mean(name, self.visible_names()) if not scoped
                    else f"did you mean '{scoped[0]}'?")

    # -- statements -------------------------------------------------------------------------------

    def stmt_model_stmt(self, node: Tree) -> None:
        token, = node.children
        if self.statements > 1 or self.scope:
            raise Error("`model NAME` must be the first statement of the file", self.loc(node))
        if "." in token:
            raise Error(f"a model name cannot contain '.': '{token}'", self.loc(token))
        self.model_name = str(token)

    def stmt_decl(self, node: Tree) -> None:
        kind_token, name_token, type_node, *init = node.children
        kind, loc = str(kind_token), self.loc(name_token)
        full = self.qualified(self.check_name(name_token))
        type = self.type_of(type_node, kind)
        if kind == "input" and init:
            raise Error(f"input '{full}' cannot have an initial value: inputs are fed on every "
                        "run", self.loc(init[0]),
                        hint="declare a `state` (or `param`) to keep a value between runs")
        if kind != "input" and not init:
            raise Error(f"{kind} '{full}' needs an initial value, such as `= zeros()`", loc)
        initializer = self.initializer(init[0], type, full) if init else None
        value = self.add_decl(Decl(kind, full, type, initializer, loc))
        self.claim(Entry(kind, full, loc, value))

    def add_decl(self, decl: Decl, value: Value | None = None) -> Value:
        value = value or Value(decl.type, decl.name)
        self.decls.append(decl)
        self.args.append(value)
        self.arg_decls[id(value)] = decl
        return value

    def type_of(self, node: Tree, kind: str) -> TensorType:
        dtype, *dims = node.children
        if dtype not in DTYPES:
            raise Error(f"unknown dtype '{dtype}'", self.loc(dtype),
                        hint=did_you_mean(str(dtype), DTYPES) or "the dtypes are "
                        + ", ".join(DTYPES))
        shape = []
        for dim in dims:
            if dim.type == "INT":
                if not 1 <= int(dim) < 2**63:
                    raise Error(f"a dim must be a positive size, got {dim}", self.loc(dim))
                shape.append(int(dim))
            elif kind != "input":
                raise Error(f"a {kind}'s shape must be known when compiling: '{dim}' is not a "
                            "number", self.loc(dim),
                            hint="only inputs can have symbolic or '?' dims")
            elif dim.type == "QMARK":
                shape.append(f"?{next(self.fresh_dims)}")
            elif "." in dim:
                raise Error(f"a dim name cannot contain '.': '{dim}'", self.loc(dim))
            else:
                self.dims.setdefault(str(dim))
                shape.append(str(dim))
        return TensorType(str(dtype), tuple(shape))

    def initializer(self, node: Tree, type: TensorType, name: str) -> Init:
        if node.data == "call" and node.children[0] in INITIALIZERS:
            return self.initializer_call(node, type, name)
        value = self.expr(node)
        if not isinstance(value, Weak):
            raise Error(f"the initial value of '{name}' must be a constant or an initializer "
                        "such as zeros(), fill(v) or normal(stddev=0.1)", self.loc(node))
        array = to_array(value, type.dtype, self.loc(node), "initial value")
        if not _broadcasts_to(array.shape, type.shape):
            raise Error(f"an initial value of shape {list(array.shape)} does not broadcast to "
                        f"'{name}': {type}", self.loc(node))
        return Init("value", (("value", array),))

    def initializer_call(self, node: Tree, type: TensorType, name: str) -> Init:
        token, *args = node.children
        spec, loc = INITIALIZERS[token], self.loc(token)
        bound = self.bind(str(token), spec.params, *self.split_args(args), loc)
        self.require(bound, [a for a, default in spec.args if default is None], str(token), loc)
        if spec.random and not type.is_float:
            raise Error(f"{token}() draws floats, but '{name}' is {type}", loc,
                        hint="use a float dtype, or a literal or fill(v)")
        values = dict(spec.args)
        for arg in values:
            if arg in bound and token == "fill":
                values[arg] = self.fill_value(bound[arg], type)
            elif arg in bound:
                values[arg] = self.number(bound[arg], f"{token}'s {arg}")
        if values.get("stddev", 1) <= 0:
            raise Error(f"{token}'s stddev must be positive", self.loc(bound["stddev"]))
        if values.get("low", 0) >= values.get("high", 1):
            raise Error(f"{token}'s high must be above its low",
                        self.loc(bound.get("high", bound.get("low"))))
        values = list(values.items())
        if "seed" in bound:
            seed = self.constant(bound["seed"], "seed")
            if not _is_int(seed) or not 0 <= seed < MAX_SEED:
                raise Error(f"a seed must be an integer in [0, 2**64), got {seed!r}",
                            self.loc(bound["seed"]))
            values.append(("seed", seed))
        return Init(str(token), tuple(values))

    def fill_value(self, node: Tree, type: TensorType):
        weak = self.weak(node, "fill's value")
        if weak.shape != ():
            raise Error("fill's value must be one number; for a tensor, write the literal itself",
                        self.loc(node))
        return to_array(weak, type.dtype, self.loc(node)).item()

    def stmt_const_def(self, node: Tree) -> None:
        token, expr = node.children
        full, loc = self.qualified(self.check_name(token)), self.loc(token)
        start = len(self.b.ops)
        value = self.expr(expr)
        if isinstance(value, tuple):
            raise self.tuple_error(value, self.loc(expr))
        if isinstance(value, Value):
            self.check_constant(value, full, loc)
        named, = self.name_results(start, [(self.tensor(value, loc), full)])
        self.claim(Entry("const", full, loc, value if isinstance(value, Weak) else named))
        self.outputs.append(Output(full, named))

    def check_constant(self, value: Value, name: str, loc: Loc | None) -> None:
        """A const may not depend on anything fed or stored: inputs, params, state, the run
        counter."""
        producers = {id(r): op for op in self.b.ops for r in op.results}
        pending, seen = [value], set()
        while pending:
            v = pending.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if id(v) in producers:
                pending.extend(producers[id(v)].operands)
                continue
            decl = self.arg_decls[id(v)]
            what = "dropout's random mask" if decl.kind == "counter" else \
                f"{decl.kind} '{decl.name}'"
            raise Error(f"const '{name}' is not constant: it depends on {what}", loc,
                        hint="define it without `const`")

    def stmt_definition(self, node: Tree) -> None:
        token, expr = node.children
        start = len(self.b.ops)
        value = self.expr(expr)
        if isinstance(value, tuple):
            raise self.tuple_error(value, self.loc(expr))
        self.bind_names([token], [value], start)

    def stmt_unpack(self, node: Tree) -> None:
        *tokens, expr = node.children
        start = len(self.b.ops)
        value = self.expr(expr)
        if not isinstance(value, tuple):
            raise Error(f"only a tuple, such as grad(y, [a, b]), can be unpacked into "
                        f"{len(tokens)} names", self.loc(expr))
        if len(value) != len(tokens):
            raise Error(f"{len(value)} values cannot be unpacked into {len(tokens)} names",
                        self.loc(expr))
        self.bind_names(tokens, list(value), start)

    def bind_names(self, tokens: list[Token], values: list, start: int) -> None:
        """Defines each name as its value: outside fns, a fetchable output named as the user
        wrote it (qualified by its scope)."""
        values = [self.tensor(v, self.loc(t)) for t, v in zip(tokens, values)]
        if self.frames:
            for token, value in zip(tokens, values):
                self.define(token, "local", value)
            return
        fulls = [self.qualified(self.check_name(t)) for t in tokens]
        named = self.name_results(start, list(zip(values, fulls)))
        for token, value in zip(tokens, named):
            entry = self.define(token, "def", value)
            self.outputs.append(Output(entry.name, value))

    def name_results(self, start: int, wanted: list[tuple[Value, str]]) -> list[Value]:
        """Gives each value its user name, rebuilding the ops made since op `start` (a value made
        earlier, or already named, keeps its name: the new name is an alias of it)."""
        names: dict[int, str] = {}
        for value, name in wanted:
            names.setdefault(id(value), name)
        renamed: dict[int, Value] = {}
        for i in range(start, len(self.b.ops)):
            op = self.b.ops[i]
            results = tuple(Value(r.type, names[id(r)]) if id(r) in names and r.name is None
                            else r for r in op.results)
            operands = tuple(renamed.get(id(v), v) for v in op.operands)
            if results != op.results or operands != op.operands:
                renamed.update((id(old), new) for old, new in zip(op.results, results))
                self.b.ops[i] = dataclasses.replace(op, operands=operands, results=results)
        return [renamed.get(id(value), value) for value, _ in wanted]

    def stmt_fn_def(self, node: Tree) -> None:
        token, *params, body = node.children
        seen: dict[str, Token] = {}
        for param in params:
            name = self.check_name(param)
            if name in seen:
                raise Error(f"'{token}' has two parameters named '{name}'", self.loc(param),
                            notes=[("first here", self.loc(seen[name]))])
            seen[name] = param
        fn = FnDef(self.qualified(str(token)), tuple(params), body, self.scope)
        self.define(token, "fn", fn=fn)

    def stmt_scope_def(self, node: Tree) -> None:
        token, *statements = node.children
        self.define(token, "scope")
        self.scope += (str(token),)
        for stmt in statements:
            self.statement(stmt)
        self.scope = self.scope[:-1]

    def stmt_step_def(self, node: Tree) -> None:
        token, *updates = node.children
        step = self.define(token, "step")
        if not updates:
            raise Error(f"step '{step.name}' assigns nothing", step.loc,
                        hint="write `NAME <- EXPR` lines inside its braces")
        assigned: dict[str, Loc | None] = {}
        for update in updates:
            target_token, expr = update.children
            target, loc = self.lookup(target_token), self.loc(target_token)
            if target.kind not in ("param", "state"):
                raise Error(f"'{target.name}' is {KIND_WORDS[target.kind]}: a step can assign "
                            "only params and state", loc)
            if target.name in assigned:
                raise Error(f"'{target.name}' is assigned twice in step '{step.name}'", loc,
                            notes=[("first assigned here", assigned[target.name])])
            assigned[target.name] = loc
            value = self.update_value(self.expr(expr), target, self.loc(expr))
            self.updates.append(Output(target.name, value, step.name))

    def update_value(self, value, target: Entry, loc: Loc | None) -> Value:
        """The new value of a param or state: of its dtype, broadcast to its shape."""
        type = target.value.type
        if isinstance(value, Weak):
            value = self.materialise(value, type.dtype, loc)
        value = self.tensor(value, loc)
        if value.type.dtype != type.dtype:
            raise Error(f"'{target.name}' is {type}, but its new value is {value.type}", loc,
                        hint=f"convert it with cast(..., {type.dtype})")
        if value.type.shape == type.shape:
            return value
        if not _broadcasts_to(value.type.shape, type.shape):
            raise Error(f"'{target.name}' is {type}, but its new value is {value.type}", loc)
        return self.b.emit("broadcast_to", value, shape=list(type.shape), loc=loc)

    def stmt_train_def(self, node: Tree) -> None:
        token, call = node.children
        if call.data != "call" or call.children[0] not in OPTIMIZERS:
            raise Error("train needs an optimizer: " + ", ".join(
                f"{name}(loss, ...)" for name in OPTIMIZERS), self.loc(call))
        step = self.define(token, "step")
        kind_token, *args = call.children
        kind, loc = str(kind_token), self.loc(kind_token)
        arguments = OPTIMIZERS[kind]
        bound = self.bind(kind, ("loss", *arguments, "params"), *self.split_args(args), loc)
        self.require(bound, ["loss", *(a for a, d in arguments.items() if d is None)], kind, loc)
        loss = self.tensor(self.expr(bound["loss"]), self.loc(bound["loss"]))
        if loss.type.shape != () or not loss.type.is_float:
            raise Error(f"the loss must be a float scalar, got {loss.type}",
                        self.loc(bound["loss"]), hint="reduce it, with mean(...) or sum(...)")
        hyper = {}
        for name in arguments:
            if name in bound:
                value = self.expr(bound[name])
                hyper[name] = value.python() if isinstance(value, Weak) else \
                    self.tensor(value, self.loc(bound[name]))
        params = self.trained_params(bound.get("params"), loss, self.loc(bound["loss"]))
        expansion = expand_optimizer(kind, self.b, loss, params, hyper, step.name, loc)
        for decl, value in expansion.state:
            self.add_decl(decl, value)
            self.claim(Entry(decl.kind, decl.name, step.loc, value))
        for label, value in expansion.updates:
            self.updates.append(Output(label, value, step.name))

    def trained_params(self, node: Tree | None, loss: Value, loc: Loc | None) -> list[Value]:
        """`params=[W, b]` as given, else every param that the loss depends on."""
        if node is None:
            found = self.dependencies(loss)
            params = [v for v in self.args if id(v) in found
                      and self.arg_decls[id(v)].kind == "param"]
            if not params:
                raise Error("the loss depends on no param: there is nothing to train", loc)
            return params
        if node.data != "list":
            raise Error("params must be a list of params, such as params=[W1, b1]",
                        self.loc(node))
        params: list[Value] = []
        for item in node.children:
            if item.data != "name":
                raise Error("params must list params by name", self.loc(item))
            entry = self.lookup(item.children[0])
            if entry.kind != "param":
                raise Error(f"'{entry.name}' is {KIND_WORDS[entry.kind]}: an optimizer trains "
                            "only params", self.loc(item))
            if any(p is entry.value for p in params):
                raise Error(f"'{entry.name}' is listed twice", self.loc(item))
            params.append(entry.value)
        return params

    def dependencies(self, value: Value) -> set[int]:
        """Ids of every value that `value` is computed from, itself included."""
        producers = {id(r): op for op in self.b.ops for r in op.results}
        pending, seen = [value], set()
        while pending:
            v = pending.pop()
            if id(v) not in seen:
                seen.add(id(v))
                if id(v) in producers:
                    pending.extend(producers[id(v)].operands)
        return seen

    # -- expressions ------------------------------------------------------------------------------

    def expr(self, node: Tree) -> Value | Weak | tuple:
        return getattr(self, "expr_" + node.data)(node)

    def expr_number(self, node: Tree) -> Weak:
        token, = node.children
        return weak_number(str(token), self.loc(token))

    def expr_boolean(self, node: Tree) -> Weak:
        token, = node.children
        return weak_bool(token == "true")

    def expr_name(self, node: Tree):
        token, = node.children
        entry = self.lookup(token)
        if entry.kind == "fn":
            raise Error(f"'{token}' is a function: call it, as in {token}(...)", self.loc(token))
        if entry.kind == "step":
            raise Error(f"'{token}' is a step: it updates params and state, and has no value",
                        self.loc(token))
        if entry.kind == "scope":
            raise Error(f"'{token}' is a scope: name a value inside it, as in {token}.NAME",
                        self.loc(token))
        return entry.value

    def expr_list(self, node: Tree) -> Weak:
        items = []
        for child in node.children:
            value = self.expr(child)
            if not isinstance(value, Weak):
                raise Error("a tensor literal holds constants only", self.loc(child),
                            hint="to join tensors, use concat([a, b], axis)")
            items.append(value)
        return tensor_literal(items, self.loc(node))

    def expr_unop(self, node: Tree):
        token, operand = node.children
        return self.apply(UNARY_OPCODES[token.type], [self.expr(operand)], self.loc(token),
                          fold_literals=True)

    def expr_binop(self, node: Tree):
        left, token, right = node.children
        operands = [self.expr(left), self.expr(right)]
        return self.apply(BINARY_OPCODES[token.type], operands, self.loc(token),
                          fold_literals=True)

    def apply(self, opcode: str, operands: list, loc: Loc | None, attrs: dict | None = None,
              own_dtype: frozenset[int] = frozenset(), fold_literals: bool = False):
        """`opcode` on operands that may be literals: those take the dtype of the first tensor
        among the other operands (operands in `own_dtype` keep their own). Literals alone are
        folded when `fold_literals`."""
        for value in operands:
            if isinstance(value, tuple):
                raise self.tuple_error(value, loc)
        if fold_literals and all(isinstance(v, Weak) for v in operands):
            return fold(opcode, operands, loc)
        peers = [v for i, v in enumerate(operands) if i not in own_dtype]
        tensors = [v.type.dtype for v in peers if isinstance(v, Value)]
        peer = tensors[0] if tensors else peer_dtype(peers)
        values = [self.materialise(v, None if i in own_dtype else peer, loc)
                  if isinstance(v, Weak) else v for i, v in enumerate(operands)]
        return self.b.emit(opcode, *values, loc=loc, **(attrs or {}))

    def materialise(self, weak: Weak, peer: str | None, loc: Loc | None) -> Value:
        dtype = dtype_for(weak, peer)
        return self.b.const(to_array(weak, dtype, loc), dtype, loc=loc)

    def tensor(self, value, loc: Loc | None) -> Value:
        """A single tensor: a literal takes its default dtype; a tuple is a mistake here."""
        if isinstance(value, tuple):
            raise self.tuple_error(value, loc)
        if isinstance(value, Weak):
            return self.materialise(value, None, loc)
        return value

    @staticmethod
    def tuple_error(value: tuple, loc: Loc | None) -> Error:
        names = ", ".join("abcdefgh"[i % 8] for i in range(len(value))) + \
            ("," if len(value) == 1 else "")
        return Error(f"this is a tuple of {len(value)} values, not one tensor", loc,
                     hint=f"unpack it: {names} = ...")

    def expr_index(self, node: Tree) -> Value:
        """`x[i, a:b, :]` is sugar for `slice`, then a `reshape` dropping the integer-indexed
        axes. Bounds are constants; negative ones count from the end, as in NumPy."""
        base, *items = node.children
        loc = self.loc(node)
        x = self.tensor(self.expr(base), loc)
        if len(items) > x.type.rank:
            raise Error(f"too many indices: {x.type} has {x.type.rank} dims, got {len(items)}",
                        loc)
        items += [Tree("slice", [None, None])] * (x.type.rank - len(items))
        begin, size, kept = [], [], []
        for axis, (item, dim) in enumerate(zip(items, x.type.shape)):
            is_slice = isinstance(item, Tree) and item.data == "slice"
            bounds = [None if b is None else self.index_bound(b) for b in item.children] \
                if is_slice else [self.index_bound(item)]
            if not isinstance(dim, int):
                if bounds != [None, None]:
                    raise Error(f"axis {axis} of {x.type} has the symbolic size {dim}: only all "
                                "of it (`:`) can be taken", self.loc(item) or loc)
                begin.append(0)
                size.append(-1)
            elif is_slice:
                start, stop, _ = slice(*bounds).indices(dim)
                begin.append(start)
                size.append(max(stop - start, 0))
            else:
                if not -dim <= bounds[0] < dim:
                    raise Error(f"index {bounds[0]} is out of range for axis {axis} of {x.type}",
                                self.loc(item))
                begin.append(bounds[0] % dim)
                size.append(1)
            if is_slice:
                kept.append(axis)
        whole = all(s == -1 or (b == 0 and s == d) for b, s, d in zip(begin, size, x.type.shape))
        if whole and len(kept) == x.type.rank:
            return x
        result = self.b.emit("slice", x, begin=begin, size=size, loc=loc)
        if len(kept) < x.type.rank:
            result = self.b.emit("reshape", result, shape=[result.type.shape[a] for a in kept],
                                 loc=loc)
        return result

    def index_bound(self, node: Tree) -> int:
        value = self.constant(node, "an index")
        if not _is_int(value):
            raise Error(f"an index must be an integer constant, got {value!r}", self.loc(node))
        return value

    # -- calls ------------------------------------------------------------------------------------

    def expr_call(self, node: Tree):
        token, *args = node.children
        name, loc = str(token), self.loc(token)
        if name in reserved_words():
            raise Error(f"'{name}' is a keyword, not a function", loc)
        positional, keywords = self.split_args(args)
        if name in BUILTINS:
            return self.call_builtin(BUILTINS[name], name, positional, keywords, loc)
        entry = self.find(name)
        if entry is None:
            if name in INITIALIZERS:
                raise Error(f"'{name}' is an initializer: it gives a param or state its first "
                            f"value, as in `param W: f32[2, 3] = {name}(...)`", loc)
            if name in OPTIMIZERS:
                raise Error(f"'{name}' is an optimizer: use it as `train step = {name}(loss, "
                            "...)`", loc)
            fns = [n for n, e in self.symbols.items() if e.kind == "fn"]
            raise Error(f"undefined function '{name}'", loc,
                        hint=did_you_mean(name, list(BUILTINS) + fns))
        if entry.kind != "fn":
            raise Error(f"'{name}' is {KIND_WORDS[entry.kind]}, not a function", loc)
        return self.call_fn(entry.fn, positional, keywords, loc)

    def split_args(self, args: list[Tree]) -> tuple[list[Tree], dict[str, Tree]]:
        """Positional argument expressions, and the `kwarg` nodes by keyword."""
        positional, keywords = [], {}
        for arg in args:
            if arg.data == "kwarg":
                key = str(arg.children[0])
                if key in keywords:
                    raise Error(f"the argument '{key}' is given twice", self.loc(arg))
                keywords[key] = arg
            elif keywords:
                raise Error("a positional argument cannot follow keyword arguments",
                            self.loc(arg))
            else:
                positional.append(arg)
        return positional, keywords

    def bind(self, what: str, params, positional: list[Tree], keywords: dict[str, Tree],
             loc: Loc | None) -> dict[str, Tree]:
        """Arguments matched to parameter names: positional first, then keywords."""
        params = tuple(params)
        takes = f"{what} takes " + (f"({', '.join(params)})" if params else "no arguments")
        if len(positional) > len(params):
            raise Error(f"{what} takes at most {len(params)} argument"
                        f"{'s' if len(params) != 1 else ''}, got {len(positional)}",
                        self.loc(positional[len(params)]), hint=takes)
        bound = dict(zip(params, positional))
        for key, kwarg in keywords.items():
            if key not in params:
                raise Error(f"{what} has no argument '{key}'", self.loc(kwarg),
                            hint=did_you_mean(key, params) or takes)
            if key in bound:
                raise Error(f"{what} got two values for '{key}'", self.loc(kwarg))
            bound[key] = kwarg.children[1]
        return bound

    @staticmethod
    def require(bound: dict, names, what: str, loc: Loc | None) -> None:
        for name in names:
            if name not in bound:
                raise Error(f"{what} needs the argument '{name}'", loc)

    def call_builtin(self, spec: Builtin, name: str, positional, keywords, loc: Loc | None):
        if spec.name == "grad":
            return self.call_grad(positional, keywords, loc)
        bound = self.bind(name, spec.params, positional, keywords, loc)
        self.require(bound, spec.operands + spec.required, name, loc)
        operands = []
        for operand in spec.operands:
            if operand == spec.variadic:
                operands += self.tensor_list(bound[operand], name)
            else:
                operands.append(self.expr(bound[operand]))
        attrs = {attr: self.attr(bound[attr], kind, f"{name}'s {attr}")
                 for attr, kind in spec.attrs if attr in bound}
        own = frozenset(i for i, o in enumerate(spec.operands) if o in spec.own_dtype)
        if spec.name == "dropout":
            operands.append(self.counter(loc))
            own |= {len(operands) - 1}
            attrs["stream"] = next(self.dropout_streams)
        return self.apply(spec.op, operands, loc, attrs, own)

    def counter(self, loc: Loc | None) -> Value:
        """The run counter that seeds dropout masks: one decl, added at the first dropout."""
        if self.run_counter is None:
            self.run_counter = self.add_decl(Decl("counter", "__run", TensorType("i64", ()),
                                                  None, loc))
        return self.run_counter

    def tensor_list(self, node: Tree, what: str) -> list:
        if node.data != "list":
            raise Error(f"{what} takes a list of tensors, as in {what}([a, b], axis=0)",
                        self.loc(node))
        return [self.expr(child) for child in node.children]

    def call_grad(self, positional, keywords, loc: Loc | None):
        bound = self.bind("grad", ("y", "x"), positional, keywords, loc)
        self.require(bound, ("y", "x"), "grad", loc)
        y, x = self.expr(bound["y"]), bound["x"]
        targets = x.children if x.data == "list" else [x]
        if not targets or any(t.data != "name" for t in targets):
            raise Error("grad differentiates with respect to a name or a list of names, as in "
                        "grad(loss, W) or grad(loss, [W, b])", self.loc(x))
        grads = []
        for target in targets:
            value = self.expr(target)
            if not isinstance(value, Value):
                raise Error(f"'{target.children[0]}' is a constant: it has no gradient",
                            self.loc(target))
            grads.append(self.apply("grad", [y, value], loc))
        return tuple(grads) if x.data == "list" else grads[0]

    def call_fn(self, fn: FnDef, positional, keywords, loc: Loc | None):
        """Inlines a call: the body is built anew with the arguments bound to the parameters."""
        if any(frame.fn is fn for frame in self.frames):
            raise Error(f"'{fn.name}' calls itself: functions are inlined, so they cannot "
                        "recurse", loc)
        names = [str(p) for p in fn.params]
        bound = self.bind(fn.name, names, positional, keywords, loc)
        self.require(bound, names, fn.name, loc)
        args = {name: self.expr(bound[name]) for name in names}
        frame = Frame(fn, {str(p): Entry("local", str(p), self.loc(p), args[str(p)])
                           for p in fn.params})
        self.frames.append(frame)
        try:
            return self.fn_result(fn)
        except Error as e:
            raise Error(e.message, e.loc, hint=e.hint,
                        notes=e.notes + ((f"in this call of '{fn.name}'", loc),)) from None
        finally:
            self.frames.pop()

    def fn_result(self, fn: FnDef):
        if fn.body.data != "fn_body":
            return self.expr(fn.body)
        *statements, ret = fn.body.children
        for stmt in statements:
            getattr(self, "stmt_" + stmt.data)(stmt)
        values = [self.expr(child) for child in ret.children]
        if len(values) == 1:
            return values[0]
        for child, value in zip(ret.children, values):
            if isinstance(value, tuple):
                raise self.tuple_error(value, self.loc(child))
        return tuple(values)

    # -- compile-time values ----------------------------------------------------------------------

    def constant(self, node: Tree, what: str, symbols: bool = False):
        """A compile-time value as Python data (lists for list literals); with `symbols`, a
        model's symbolic dim name stands for itself (`reshape(x, [N, 784])`)."""
        if node.data == "list":
            return [self.constant(child, what, symbols) for child in node.children]
        if symbols and node.data == "name":
            name = str(node.children[0])
            if name in self.dims and self.find(name) is None:
                return name
        return self.weak(node, what).python()

    def weak(self, node: Tree, what: str) -> Weak:
        value = self.expr(node)
        if not isinstance(value, Weak):
            raise Error(f"{what} must be a constant known when compiling", self.loc(node))
        return value

    def number(self, node: Tree, what: str) -> float:
        value = self.constant(node, what)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Error(f"{what} must be a number, got {value!r}", self.loc(node))
        return float(value)

    def attr(self, node: Tree, kind: str, what: str):
        if kind == "dtype":
            name = str(node.children[0]) if node.data == "name" else None
            if name not in DTYPES:
                raise Error(f"{what} must be {ATTR_KINDS[kind]}", self.loc(node))
            return name
        value = self.constant(node, what, symbols=kind == "shape")
        if not ATTR_CHECKS[kind](value):
            raise Error(f"{what} must be {ATTR_KINDS[kind]}, got {_show(value)}",
                        self.loc(node))
        return value


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
