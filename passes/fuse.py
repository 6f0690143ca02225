"""`fuse`: producer→consumer chains become `fused` ops, one kernel each, so that intermediates
never go through memory.

A kernel has a *space*, what its loops run over (docs/passes.md has the backend contract):

- `elementwise [S]`: elementwise ops (and `broadcast_to`) whose results all have shape S;
- `reduction [S] axes A`: rows. Reductions of S-shaped values over the axes A, with
  elementwise ops on S-shaped values before, between and after them (softmax's sub, exp, div),
  and on the reduced shapes (S with A kept as 1, or dropped): epilogues such as the scaling of
  a mean, or a bias update after its gradient's sum;
- `matmul [M]`: one matmul and elementwise epilogues on its M-shaped result (bias add, relu).

Ops join the kernel of a producer when the spaces agree and no other kernel lies between them
(that would be a cycle); everything else stays where it was, and `explain_fusion` says why.
A value used outside its kernel becomes one of the kernel's results: it is written once, never
recomputed elsewhere. The only copies are scalar constants, which each region takes as its own
(free to recompute). In the NumPy backend a fused op runs its region's ops, so fusion changes no
result at all there; native backends promise 1 ulp per op (docs/passes.md).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ..ir import Function, Op, Output, Value
from ..ir.ops.reduce import reduced_axes
from ..ir.ops.shape import permutation
from ..ir.printer import Namer
from ..ir.registry import get, normalize_axis

# Ops that launch no kernel: constants are data, `reshape` reinterprets a contiguous buffer and
# `shape` reads a size.
NOT_KERNELS = ("const", "reshape", "shape")


@dataclass(frozen=True)
class Space:
    """What a kernel loops over: see the module docstring."""

    kind: str  # "elementwise" | "reduction" | "matmul"
    shape: tuple
    axes: tuple[int, ...] = ()  # reductions only

    def holds(self, shape: tuple) -> bool:
        """Whether an elementwise value of this shape can be computed in this kernel."""
        if self.kind != "reduction":
            return shape == self.shape
        kept = tuple(1 if i in self.axes else d for i, d in enumerate(self.shape))
        dropped = tuple(d for i, d in enumerate(self.shape) if i not in self.axes)
        return shape in (self.shape, kept, dropped)

    def __str__(self) -> str:
        text = f"{self.kind} [{','.join(map(str, self.shape))}]"
        return text + (f" axes {list(self.axes)}" if self.kind == "reduction" else "")


def op_space(op: Op) -> Space | str:
    """The space of a kernel made of `op` alone, or why `op` is never fused."""
    kind = get(op.opcode).kind
    if op.region is not None:
        return "it is fused already"
    if kind == "elementwise" or op.opcode == "broadcast_to" or _moves_only_ones(op):
        return Space("elementwise", op.result.type.shape)
    if kind == "reduction":
        x = op.operands[0].type
        axis = op.attrs["axis"]
        axes = (normalize_axis(axis, x.rank, op.opcode),) if op.opcode in ("argmax", "argmin") \
            else reduced_axes(x, axis)
        return Space("reduction", x.shape, axes)
    if kind == "matmul":
        return Space("matmul", op.result.type.shape)
    if _swaps_last_two(op):
        return Space("transpose", op.result.type.shape)
    return UNFUSED.get(op.opcode, f"{op.opcode} is a {kind} op, which stays a kernel of its own")


UNFUSED = {
    "const": "constants are data (a scalar one is copied into each kernel using it)",
    "reshape": "this reshape regroups elements (only reshapes that add or drop 1s are fused)",
    "shape": "shape reads a size at run time: no kernel",
    "transpose": "only a transpose of the last two axes is fused, into the matmul reading it",
}


def _moves_only_ones(op: Op) -> bool:
    """A reshape that only inserts or removes dims of size 1: the same index, written longer or
    shorter (from [N] to [N,1], as a reduction's result moves between its two forms)."""
    if op.opcode != "reshape":
        return False
    x, r = op.operands[0].type.shape, op.result.type.shape
    return [d for d in x if d != 1] == [d for d in r if d != 1]


def _swaps_last_two(op: Op) -> bool:
    if op.opcode != "transpose" or op.result.type.rank < 2:
        return False
    rank = op.result.type.rank
    return permutation(op.operands[0].type, op.attrs["perm"]) == \
        list(range(rank - 2)) + [rank - 1, rank - 2]


# For each dim of a value computed in a kernel, the dim of the kernel's space S it follows
# (None: a dim of size 1). Backends evaluate region values at these.
Projection = tuple


def projection(space: Space, shape: tuple) -> Projection:
    """How a value of `shape` (S, or S with the reduced axes kept as 1 or dropped) follows the
    index of S, where the kernel computes it."""
    rank = len(space.shape)
    if len(shape) == rank:
        return tuple(None if size == 1 else d for d, size in enumerate(shape))
    if not shape:  # a scalar: the same everywhere
        return ()
    return tuple(d for d in range(rank) if d not in space.axes)


def operand_projection(op: Op, operand: Value, at: Projection) -> Projection:
    """Where an elementwise op (or a reshape moving 1s) reads `operand` when its result is
    computed at projection `at`: NumPy's broadcasting lines dims up from the last."""
    result_shape, shape = op.result.type.shape, operand.type.shape
    if op.opcode == "reshape":  # adds or drops dims of size 1 only
        follows = iter(d for size, d in zip(result_shape, at) if size != 1)
        return tuple(None if size == 1 else next(follows) for size in shape)
    lead = len(result_shape) - len(shape)
    return tuple(None if size == 1 else at[lead + i] for i, size in enumerate(shape))


def misread_value(space: Space, ops: list[Op]) -> str | None:
    """Why a value computed in a row kernel would be read where the kernel does not have it,
    or None. A kernel reducing rows computes a row's values (its sum, and values made from it)
    while it is on that row; an op reading one at another place, as NumPy's broadcasting may
    (`x + sum(x, axis=1)` adds row j's total to column j), would read a row not reached yet."""
    if space.kind != "reduction":
        return None
    computed = {r for op in ops for r in op.results}
    for op in ops:
        if get(op.opcode).kind != "elementwise" and op.opcode not in ("broadcast_to", "reshape"):
            continue
        at = projection(space, op.result.type.shape)
        for v in op.operands:
            if v in computed and operand_projection(op, v, at) != projection(space, v.type.shape):
                return (f"{op.opcode} reads a value computed for one row at another (NumPy's "
                        "broadcasting lines its dims up with other axes)")
    return None


def combine(a: Space, b: Space) -> Space | str:
    """The space of one kernel doing the work of kernels a and b, or why there is none."""
    if "transpose" in (a.kind, b.kind):
        other = b if a.kind == "transpose" else a
        if other.kind == "matmul":
            return other
        return f"a transpose is fused only into the matmul reading it, not into {other.kind}"
    if a.kind == "elementwise" and b.kind != "elementwise":
        a, b = b, a
    if b.kind == "elementwise":
        if a.holds(b.shape):
            return a
        return f"their spaces differ: {a} and {b}"
    if a == b and a.kind == "reduction":
        return a
    if "matmul" in (a.kind, b.kind):
        return "a matmul kernel takes only elementwise epilogues, not another " + \
            (b.kind if a.kind == "matmul" else a.kind)
    return f"reductions over different rows: {a} and {b}"


def can_fuse(producer: Op, consumer: Op) -> str | None:
    """None if `consumer` can compute in the kernel of `producer`, each alone in its kernel,
    else the reason it cannot."""
    reason = _edge_reason(producer, consumer)
    if reason is not None:
        return reason
    space = combine(op_space(producer), op_space(consumer))
    return space if isinstance(space, str) else None


def _edge_reason(producer: Op, consumer: Op) -> str | None:
    """Why the value `producer` makes for `consumer` could not stay inside any kernel."""
    for op in (producer, consumer):
        space = op_space(op)
        if isinstance(space, str):
            return f"{op.opcode}: {space}"
    if op_space(consumer).kind == "transpose":
        return "a transpose fused into a matmul reads its operand from memory"
    if get(consumer.opcode).kind == "matmul" and op_space(producer).kind != "transpose":
        return "a matmul reads each operand element many times, so a producer fused into it " \
               "would be recomputed for every read"
    if op_space(producer).kind == "transpose" and get(consumer.opcode).kind != "matmul":
        return "a transpose is fused only into the matmul reading it"
    return None


# The order `kernel_space` combines spaces in: a transpose joins only a matmul already there.
COMBINE_ORDER = ("matmul", "reduction", "elementwise", "transpose")


def kernel_space(op: Op) -> Space:
    """The space of a `fused` op, read from its region: the loops a backend emits for it.
    Raises ValueError where the region breaks the contract of its kind (docs/passes.md)."""
    region = op.region
    spaces = []
    for inner in region.ops:
        own = op_space(inner) if inner.opcode != "const" else None
        if isinstance(own, str):
            raise ValueError(f"fused[kind={op.attrs['kind']}]: {inner.opcode}: {own}")
        if own is not None:
            spaces.append(own)
    space: Space | str | None = None
    for own in sorted(spaces, key=lambda s: COMBINE_ORDER.index(s.kind)):
        space = own if space is None else combine(space, own)
        if isinstance(space, str):
            raise ValueError(f"fused[kind={op.attrs['kind']}]: {space}")
    producers = {r: inner for inner in region.ops for r in inner.results}
    for inner in region.ops:
        for v in inner.operands:
            reason = _edge_reason(producers[v], inner) if v in producers and \
                producers[v].opcode != "const" else None
            if reason is not None:
                raise ValueError(f"fused[kind={op.attrs['kind']}]: {inner.opcode}: {reason}")
    if space is None or space.kind != op.attrs["kind"]:
        raise ValueError(f"fused[kind={op.attrs['kind']}] holds a {space} kernel")
    misread = misread_value(space, region.ops)
    if misread is not None:
        raise ValueError(f"fused[kind={op.attrs['kind']}]: {misread}")
    yielded = {out.value for out in region.outputs}
    for inner in region.ops:
        if inner.opcode != "transpose":
            continue
        users = [u.opcode for u in region.ops if inner.result in u.operands]
        if inner.result in yielded or users != ["matmul"] or inner.operands[0] not in region.args:
            raise ValueError(f"fused[kind={op.attrs['kind']}]: a transpose must be the "
                             "matmul's operand, read from a region argument")
    return space


# -- grouping ----------------------------------------------------------------------------------

@dataclass
class _Group:
    space: Space
    members: list[int] = field(default_factory=list)  # op indices, in order


class _Grouping:
    """Ops (by index) gathered into kernels, greedily in op order: each op tries to join the
    kernels of its operands' producers. `refusals` records each producer→consumer edge that was
    not fused, with the reason."""

    def __init__(self, func: Function):
        self.ops = func.ops
        self.producer = {r: i for i, op in enumerate(self.ops) for r in op.results}
        self.outputs = {out.value for out in func.outputs}
        self.users: dict[Value, list[int]] = {}
        for i, op in enumerate(self.ops):
            for v in dict.fromkeys(op.operands):
                self.users.setdefault(v, []).append(i)
        self.parent = list(range(len(self.ops)))
        self.groups: dict[int, _Group] = {}
        self.refusals: dict[tuple[int, int], str] = {}
        for i, op in enumerate(self.ops):
            space = op_space(op)
            if isinstance(space, str):
                continue
            self.groups[i] = _Group(space, [i])
            for v in dict.fromkeys(op.operands):
                p = self.producer.get(v)
                if p is None or self.ops[p].opcode == "const":
                    continue
                reason = self.merge(p, i)
                if reason is not None:
                    self.refusals.setdefault((p, i), reason)
        self.join_siblings()

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def merge(self, p: int, c: int) -> str | None:
        """Joins the kernels of producer p and consumer c, or says why not. Spaces are compared
        kernel to kernel: a [N,1] value feeds a [N,10] one inside a row kernel, though
        `can_fuse` refuses the pair alone."""
        reason = _edge_reason(self.ops[p], self.ops[c])
        if reason is not None:
            return reason
        if op_space(self.ops[p]).kind == "transpose" and (self.users[self.ops[p].result] != [c]
                                                          or self.ops[p].result in self.outputs):
            return "the transposed value is used elsewhere too, so it is written out"
        return self.join(self.find(p), self.find(c))

    def join(self, a: int, b: int) -> str | None:
        """Makes kernels a and b one, or says why they cannot be."""
        if a == b:
            return None
        space = combine(self.groups[a].space, self.groups[b].space)
        if isinstance(space, str):
            return f"the kernels would not fit together: {space}"
        misread = misread_value(
            space, [self.ops[m] for m in self.groups[a].members + self.groups[b].members])
        if misread is not None:
            return misread
        for source, target in ((a, b), (b, a)):
            reason = self.edge_reason(source, target)
            if reason is not None:
                return reason
        if self.reaches_through_another(a, b) or self.reaches_through_another(b, a):
            return "another kernel uses the producer's kernel and feeds the consumer's " \
                   "(fusing them would make a cycle)"
        keep, gone = min(a, b), max(a, b)
        self.parent[gone] = keep
        self.groups[keep] = _Group(space, sorted(self.groups[keep].members
                                                 + self.groups.pop(gone).members))
        return None

    def join_siblings(self) -> None:
        """Kernels reading the same value over the same space become one, so the value is read
        once (softmax's row kernel and an argmax of the same logits), where no path runs from
        one to the other."""
        for users in self.users.values():
            kernels = [g for g in dict.fromkeys(self.find(u) for u in users)
                       if g in self.groups and self.groups[g].space.kind != "transpose"]
            for other in kernels[1:]:
                self.join(self.find(kernels[0]), self.find(other))

    def edge_reason(self, source: int, target: int) -> str | None:
        """Why some edge from kernel `source` into kernel `target` cannot be inside a kernel."""
        members = set(self.groups[source].members)
        for c in self.groups[target].members:
            for v in self.ops[c].operands:
                p = self.producer.get(v)
                if p in members:
                    reason = _edge_reason(self.ops[p], self.ops[c])
                    if reason is not None:
                        return reason
        return None

    def successors(self, g: int):
        for m in self.groups[g].members:
            for r in self.ops[m].results:
                for u in self.users.get(r, ()):
                    yield self.find(u)

    def reaches_through_another(self, source: int, target: int) -> bool:
        """Whether a path from kernel `source` to kernel `target` passes through a third op.
        Paths only run forward in op order, so a kernel that starts after `target` ends cannot
        lie on one."""
        limit = self.groups[target].members[-1]
        stack = [g for g in dict.fromkeys(self.successors(source)) if g not in (source, target)]
        seen = set(stack)
        while stack:
            g = stack.pop()
            if g not in self.groups:  # an op that is not fused: its users are its successors
                nexts = [self.find(u) for r in self.ops[g].results for u in self.users.get(r, ())]
            else:
                nexts = list(self.successors(g))
            for n in nexts:
                if n == target:
                    return True
                first = self.groups[n].members[0] if n in self.groups else n
                if n not in seen and n != source and first < limit:
                    seen.add(n)
                    stack.append(n)
        return False

    def kernels(self) -> list[list[int]]:
        """Every op's unit (a kernel's members, or the op alone), in op order of first member."""
        units: dict[int, list[int]] = {}
        for i in range(len(self.ops)):
            units.setdefault(self.find(i), []).append(i)
        return sorted(units.values())


# -- building fused ops ------------------------------------------------------------------------

def fuse(func: Function) -> Function:
    """A new function whose kernels of two or more ops are `fused` ops."""
    grouping = _Grouping(func)
    outside_uses = _outside_uses(func, grouping)
    units = []
    for members in grouping.kernels():
        if len(members) < 2:  # constants are never members: they are copied or passed in
            units.append((members, [func.ops[m] for m in members]))
            continue
        space = grouping.groups[grouping.find(members[0])].space
        units.append((members, [_fused_op(func, members, space, outside_uses)]))
    ops = _schedule(units)
    return func.replace(ops=_without_unused_constants(ops, func.outputs))


def _outside_uses(func: Function, grouping: _Grouping) -> dict[Value, bool]:
    """For every op result: whether something outside its kernel uses it (an op or an output)."""
    used_outside = {out.value: True for out in func.outputs}
    for i, op in enumerate(func.ops):
        for v in op.operands:
            p = grouping.producer.get(v)
            if p is not None and grouping.find(p) != grouping.find(i):
                used_outside[v] = True
    return used_outside


def _fused_op(func: Function, members: list[int], space: Space,
              outside_uses: dict[Value, bool]) -> Op:
    """The `fused` op of one kernel: its region clones the members; operands are the values it
    takes from outside (scalar constants are cloned instead), results the values used outside."""
    member_ops = [func.ops[m] for m in members]
    inner: dict[Value, Value] = {}  # outer value → the region's value
    operands, args, region_ops = [], [], []
    constants = {op.result: op for op in func.ops if op.opcode == "const"}
    for op in member_ops:
        for v in op.operands:
            if v in inner:
                continue
            inner[v] = Value(v.type)
            const = constants.get(v)
            if const is not None and v.type.shape == ():
                region_ops.append(Op("const", (), (inner[v],), dict(const.attrs), const.loc))
            else:
                operands.append(v)
                args.append(inner[v])
        results = tuple(Value(r.type) for r in op.results)
        inner.update(zip(op.results, results))
        region_ops.append(Op(op.opcode, tuple(inner[v] for v in op.operands), results,
                             dict(op.attrs), op.loc))
    yielded = [r for op in member_ops for r in op.results if outside_uses.get(r)]
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    region = Function("fused", dims, tuple(args), tuple(region_ops),
                      tuple(Output(str(i), inner[r]) for i, r in enumerate(yielded)))
    anchor = next((op for op in member_ops if get(op.opcode).kind == space.kind), member_ops[0])
    return Op("fused", tuple(operands), tuple(yielded), {"kind": space.kind}, anchor.loc, region)


def _schedule(units: list[tuple[list[int], list[Op]]]) -> tuple[Op, ...]:
    """The units' ops in a topological order, each unit as early as its operands allow, ties
    broken by original position, so unfused code keeps its order."""
    defined_by = {r: u for u, (_, ops) in enumerate(units) for op in ops for r in op.results}
    needs: list[set[int]] = []
    for u, (_, ops) in enumerate(units):
        needs.append({defined_by[v] for op in ops for v in op.operands
                      if v in defined_by and defined_by[v] != u})
    waiting = [len(n) for n in needs]
    dependents: list[list[int]] = [[] for _ in units]
    for u, n in enumerate(needs):
        for d in sorted(n):
            dependents[d].append(u)
    ready = [(units[u][0][0], u) for u in range(len(units)) if waiting[u] == 0]
    heapq.heapify(ready)
    ordered: list[Op] = []
    while ready:
        _, u = heapq.heappop(ready)
        ordered += units[u][1]
        for d in dependents[u]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (units[d][0][0], d))
    assert len(ordered) == sum(len(ops) for _, ops in units), "fuse made a cycle"
    return tuple(ordered)


def _without_unused_constants(ops: tuple[Op, ...], outputs) -> tuple[Op, ...]:
    """Drops the constants that only regions used (each region has its own copy now)."""
    used = {out.value for out in outputs} | {v for op in ops for v in op.operands}
    return tuple(op for op in ops if op.opcode != "const" or op.result in used)


# -- reporting ---------------------------------------------------------------------------------

def kernel_count(func: Function) -> int:
    """How many kernels running `func` launches: every op but constants, reshapes and shapes."""
    return sum(op.opcode not in NOT_KERNELS for op in func.ops)


def explain_fusion(func: Function) -> str:
    """What `fuse` does to `func` and why: each kernel with its ops, then every producer→consumer
    edge left between kernels, with the reason (values named as `tflc dump` names them)."""
    grouping = _Grouping(func)
    names = _printed_names(func)
    fused = fuse(func)
    lines = [f"fuse @{func.name}: {kernel_count(func)} kernels before, "
             f"{kernel_count(fused)} after"]
    number = 0
    for members in grouping.kernels():
        if len(members) == 1 and func.ops[members[0]].opcode in NOT_KERNELS:
            continue
        number += 1
        kind = f" ({grouping.groups[members[0]].space})" if len(members) > 1 else ""
        ops = ", ".join(f"{func.ops[m].opcode} {_results(func.ops[m], names)}" for m in members)
        lines.append(f"  kernel {number}{kind}: {ops}")
    if grouping.refusals:
        lines.append("not fused:")
    for (p, c), reason in sorted(grouping.refusals.items()):
        lines.append(f"  {_results(func.ops[p], names)} ({func.ops[p].opcode}) -> "
                     f"{_results(func.ops[c], names)} ({func.ops[c].opcode}): {reason}")
    return "\n".join(lines) + "\n"


def _printed_names(func: Function) -> Namer:
    """The names `print_function` gives the values, in the order it defines them."""
    namer = Namer()

    def define(function: Function) -> None:
        for arg in function.args:
            namer.define(arg)
        for op in function.ops:
            for r in op.results:
                namer.define(r)
            if op.region is not None:
                define(op.region)

    define(func)
    return namer


def _results(op: Op, names: Namer) -> str:
    return ", ".join("%" + names[r] for r in op.results)
