"""Where a tensor's elements sit in memory, symbolically: shape, strides and offset as dims.

Everything here is a compile-time description in terms of `Dim`s (integers or products of
symbolic names, see ir/types.py), so views — transpose, broadcast, slice, reshape of a
contiguous buffer, concat's parts — cost no code: a kernel evaluates the dims from the run-time
sizes it is given and indexes its operands with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.types import Dim, dim_product


@dataclass(frozen=True)
class Layout:
    """Element (i0, ..., in) of the tensor is at `sum(offset) + sum(i_d * strides[d])` elements
    from its buffer's base. `offset` is a sum of dims (a concat's part starts after the others)."""

    shape: tuple[Dim, ...]
    strides: tuple[Dim, ...]
    offset: tuple[Dim, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_dense(self) -> bool:
        """Row-major without gaps (dims of size 1 may have any stride), from any offset."""
        expected = contiguous(self.shape).strides
        return all(size == 1 or stride == want
                   for size, stride, want in zip(self.shape, self.strides, expected))

    def at(self, offset: tuple[Dim, ...]) -> Layout:
        return Layout(self.shape, self.strides, offset)

    def transpose(self, perm) -> Layout:
        return Layout(tuple(self.shape[p] for p in perm), tuple(self.strides[p] for p in perm),
                      self.offset)

    def broadcast_to(self, shape: tuple[Dim, ...]) -> Layout:
        """NumPy broadcasting, right-aligned: new and stretched dims read with stride 0."""
        lead = len(shape) - self.rank
        strides = []
        for i, size in enumerate(shape):
            mine = self.shape[i - lead] if i >= lead else None
            stretched = mine is None or (mine == 1 and size != 1)
            strides.append(0 if stretched else self.strides[i - lead])
        return Layout(tuple(shape), tuple(strides), self.offset)

    def shifted(self, starts: tuple[Dim, ...]) -> Layout:
        """The same strides, starting at element `starts` (a slice's begin, a concat's part)."""
        extra = tuple(dim_product((start, stride))
                      for start, stride in zip(starts, self.strides))
        return Layout(self.shape, self.strides, self.offset + tuple(d for d in extra if d != 0))

    def with_shape(self, shape: tuple[Dim, ...]) -> Layout:
        return Layout(tuple(shape), self.strides, self.offset)


def contiguous(shape: tuple[Dim, ...]) -> Layout:
    strides: list[Dim] = []
    step: Dim = 1
    for size in reversed(shape):
        strides.append(step)
        step = dim_product((step, size))
    return Layout(tuple(shape), tuple(reversed(strides)))


def collapse(shape: tuple[Dim, ...], layouts: list[Layout]) -> tuple[tuple[Dim, ...], list[Layout]]:
    """Fewer, longer loops over the same elements: drops dims of size 1 and merges neighbours
    that are laid out back to back in every operand (all operands have the same `shape`).
    Row-major order is kept, so the flat index of an element does not change."""
    keep = [d for d, size in enumerate(shape) if size != 1]
    sizes = [shape[d] for d in keep]
    strides = [[layout.strides[d] for d in keep] for layout in layouts]
    d = len(sizes) - 1
    while d > 0:
        if all(s[d - 1] == dim_product((s[d], sizes[d])) for s in strides):
            sizes[d - 1] = dim_product((sizes[d - 1], sizes[d]))
            for s in strides:
                s[d - 1] = s[d]
                del s[d]
            del sizes[d]
        d -= 1
    return tuple(sizes), [Layout(tuple(sizes), tuple(s), layout.offset)
                          for s, layout in zip(strides, layouts)]
