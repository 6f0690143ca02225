"""The graph as a drawing, like TensorBoard's graph view: Graphviz DOT text, and rendering it.

- each op is a node labelled with its op and result type (and the user's name where there is
  one); constants are small plain nodes;
- arguments are styled by what they are: inputs (fed), params (trained), state, the run counter;
- dotted names are scopes (`fc1.W`, `fc1.h`) and become nested clusters; an unnamed op joins the
  scope of its users when they all share one (the ops inside `dense(...)` join `fc1`);
- a fused op is a box around the ops of its region, with edges straight to them;
- each step update is a node after the value that becomes the param's new value.

`to_dot` needs nothing installed; `render` writes `.dot` itself and `.svg`, `.png` or `.pdf`
through the `graphviz` Python package and its `dot` program.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..ir import Decl, Error, Function, Op, Value
from ..ir.printer import format_array

INSTALL_HINT = ("pip install graphviz, and install Graphviz's dot program: apt install graphviz, "
                "brew install graphviz, or https://graphviz.org/download/ (a .dot file needs "
                "neither)")
FORMATS = ("svg", "png", "pdf")

ARG_STYLES = {  # decl kind → node attributes
    "input": 'shape=invhouse, style=filled, fillcolor="#d7ebff"',
    "param": 'shape=box, style=filled, fillcolor="#fff2b3"',
    "state": 'shape=box, style=filled, fillcolor="#ffd9b3"',
    "counter": 'shape=box, style="filled,dashed", fillcolor="#eeeeee"',
    None: 'shape=invhouse, style=filled, fillcolor="#eeeeee"',
}
OP_STYLE = 'shape=box, style="rounded,filled", fillcolor=white'
CONST_STYLE = 'shape=plaintext, fontsize=10, fontcolor="#555555"'
UPDATE_STYLE = 'shape=cds, style=filled, fillcolor="#fff2b3"'
FUSED_STYLE = 'style="rounded,filled"; color="#4a7fbf"; fillcolor="#eef4fb"'


def to_dot(func: Function, decls: Sequence[Decl] = ()) -> str:
    """DOT text drawing `func`; `decls` (the module's) say which arguments are inputs, params,
    state or the counter."""
    return _Drawing(func, {d.name: d.kind for d in decls}).text()


def render(dot: str, path: str | Path) -> None:
    """Writes `dot` to `path`: as text for `.dot`, else drawn by Graphviz in the suffix's
    format (.svg, .png, .pdf)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "dot":
        data = dot.encode("utf-8")
    elif suffix in FORMATS:
        data = _draw(dot, suffix, path)
    else:
        raise Error(f"cannot draw a graph into '{path.name}': the file name should end in .dot, "
                    + ", ".join("." + f for f in FORMATS))
    try:
        path.write_bytes(data)
    except OSError as e:
        raise Error(f"cannot write {path}: {e.strerror}") from None


def draw(func: Function, path: str | Path, decls: Sequence[Decl] = ()) -> None:
    """`to_dot` and `render` in one call (what `tflc graph` does)."""
    render(to_dot(func, decls), path)


def _draw(dot: str, fmt: str, path: Path) -> bytes:
    try:
        import graphviz
    except ImportError:
        raise Error(f"drawing {path.name} needs the graphviz Python package",
                    hint=INSTALL_HINT) from None
    try:
        return graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise Error(f"drawing {path.name} needs Graphviz's dot program, which is not on the "
                    "PATH", hint=INSTALL_HINT) from None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _short(name: str) -> str:
    """A name as its scope's cluster shows it: `fc1.W` → `W`."""
    return name.rpartition(".")[2]


def _scope(name: str | None) -> str:
    """The scope of a dotted name: `fc1.W` → `fc1`, `a.b.c` → `a.b`, `x` → `` (the top)."""
    return name.rpartition(".")[0] if name else ""


class _Drawing:
    def __init__(self, func: Function, kinds: dict[str, str]):
        self.func = func
        self.kinds = kinds
        self.node_of: dict[Value, str] = {}  # a value → the node that makes it
        self.scopes: dict[str, list[str]] = {"": []}  # a scope → its lines (nodes, clusters)
        self.edges: list[str] = []
        self.count = 0

    def node(self, label: str, style: str, lines: list[str]) -> str:
        """A new node, declared in `lines` (a scope's, or a fused box's)."""
        node = f"n{self.count}"
        self.count += 1
        lines.append(f"{node} [label={_quote(label)}, {style}];")
        return node

    def _lines(self, scope: str) -> list[str]:
        while scope not in self.scopes:  # every enclosing scope exists before its child
            parent = _scope(scope)
            self._lines(parent)
            self.scopes[scope] = []
        return self.scopes[scope]

    def text(self) -> str:
        func = self.func
        scopes = _op_scopes(func)
        for arg in func.args:
            kind = self.kinds.get(arg.name)
            self.node_of[arg] = self.node(f"{_short(arg.name)}\n{arg.type}", ARG_STYLES[kind],
                                          self._lines(_scope(arg.name)))
        fused = 0
        for op, scope in zip(func.ops, scopes):
            if op.region is None:
                self.draw_op(op, self._lines(scope))
                continue
            fused += 1
            self.draw_fused(op, scope, fused)
        for out in func.outputs:
            if out.step is not None:
                update = self.node(f"{out.step}: {out.label} <-", UPDATE_STYLE,
                                   self._lines(_scope(out.label)))
                self.edges.append(f"{self.node_of[out.value]} -> {update} [style=dashed];")
        lines = [f"digraph {_quote(func.name)} {{",
                 "  rankdir=TB; compound=true; newrank=true;",
                 '  node [fontname="Helvetica", fontsize=11];',
                 '  edge [color="#666666", arrowsize=0.7];']
        lines += self.cluster("", "  ")
        lines += ["  " + e for e in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def cluster(self, scope: str, indent: str) -> list[str]:
        lines = [indent + line for line in self.scopes[scope]]
        children = sorted(s for s in self.scopes if s and _scope(s) == scope)
        for child in children:
            lines.append(f"{indent}subgraph {_quote('cluster_' + child)} {{")
            lines.append(f'{indent}  label={_quote(_short(child))}; '
                         'style="rounded,dashed"; color="#999999";')
            lines += self.cluster(child, indent + "  ")
            lines.append(f"{indent}}}")
        return lines

    def draw_op(self, op: Op, lines: list[str], names: dict | None = None) -> None:
        """One node for `op`, in `lines` (a scope's or a fused box's); `names` gives region
        values the user's names of the results they become."""
        result = op.results[0]
        name = (names or {}).get(result, result.name)
        if op.opcode == "const":
            value = op.attrs["value"]
            label = format_array(value) if value.size == 1 else f"const {result.type}"
            style = CONST_STYLE
        else:
            label = (f"{_short(name)} = " if name else "") + f"{op.opcode}\n{result.type}"
            style = OP_STYLE
        node = self.node(label, style, lines)
        for r in op.results:
            self.node_of[r] = node
        for v in dict.fromkeys(op.operands):
            self.edges.append(f"{self.node_of[v]} -> {node};")

    def draw_fused(self, op: Op, scope: str, number: int) -> None:
        region = op.region
        for arg, operand in zip(region.args, op.operands):
            self.node_of[arg] = self.node_of[operand]
        names = {out.value: r.name for out, r in zip(region.outputs, op.results) if r.name}
        lines = [f"subgraph {_quote(f'cluster_fused{number}')} {{",
                 f"  label={_quote('fused ' + op.attrs['kind'])}; {FUSED_STYLE};"]
        body: list[str] = []
        for inner in region.ops:
            self.draw_op(inner, body, names)
        lines += ["  " + line for line in body]
        lines.append("}")
        self._lines(scope).extend(lines)
        for out, r in zip(region.outputs, op.results):
            self.node_of[r] = self.node_of[out.value]


def _op_scopes(func: Function) -> list[str]:
    """Each op's scope: that of its first named result, else the one all its users (and the
    outputs returning it) share, else the top."""
    user_scopes: dict[Value, set[str]] = {}
    for out in func.outputs:
        user_scopes.setdefault(out.value, set()).add(_scope(out.label) if out.step is None
                                                     else "")
    scopes: list[str] = [""] * len(func.ops)
    for i in reversed(range(len(func.ops))):
        op = func.ops[i]
        named = [r.name for r in op.results if r.name]
        if named:
            scopes[i] = _scope(named[0])
        else:
            users = set().union(*(user_scopes.get(r, set()) for r in op.results))
            scopes[i] = users.pop() if len(users) == 1 else ""
        for v in op.operands:
            user_scopes.setdefault(v, set()).add(scopes[i])
    return scopes
