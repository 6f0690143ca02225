"""The host side of a compiled function: which kernels to launch, in order, on which buffers, with
how many threads, all as functions of the run-time sizes of the symbolic dims.

Pure data (no GPU, no pycuda): `runtime/cuda.py` carries it out, and `describe()` prints it for
`tflc dump --emit ptx`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.types import Dim, eval_dim

ALIGN = 256  # bytes between buffers in device memory: the widest loads, and what cudaMalloc gives
MAX_BLOCKS = 8192  # more blocks than an H100 keeps resident; grid-stride loops cover the rest


@dataclass(frozen=True, eq=False)
class Ref:
    """A buffer a kernel is handed: argument `index`, output `index`, or scratch slot `index`.
    Compared by identity, like the LLVM values they stand for (views share their Ref)."""

    kind: str  # "arg" | "out" | "slot"
    index: int
    name: str


@dataclass(frozen=True)
class Grid:
    """A launch's size: `work` items, counted as the product of `ceil(dim / per)` over its
    entries, `per_block` items to a block of `block` threads."""

    work: tuple[tuple[Dim, int], ...]
    per_block: int
    block: tuple[int, int, int]

    def items(self, sizes: dict[str, int]) -> int:
        count = 1
        for dim, per in self.work:
            count *= -(-eval_dim(dim, sizes) // per)
        return count

    def blocks(self, sizes: dict[str, int]) -> int:
        """0 when there is nothing to do (the launch is skipped)."""
        return min(-(-self.items(sizes) // self.per_block), MAX_BLOCKS)

    def describe(self) -> str:
        work = " * ".join(str(dim) if per == 1 else f"ceil({dim}/{per})" for dim, per in self.work)
        per_block = "" if self.per_block == 1 else f"/{self.per_block}"
        return f"grid=({work or 1}){per_block} block={self.block}"


@dataclass(frozen=True)
class Launch:
    kernel: str
    buffers: tuple[Ref, ...]  # the kernel's pointer parameters, in order; then every dim
    grid: Grid


@dataclass(frozen=True)
class Plan:
    dims: tuple[str, ...]
    args: tuple[tuple[tuple[Dim, ...], str], ...]  # (shape, dtype) of each argument
    outputs: tuple[tuple[tuple[Dim, ...], str], ...]
    slots: tuple[Dim, ...]  # bytes of each scratch slot
    launches: tuple[Launch, ...]

    def describe(self) -> str:
        lines = []
        for launch in self.launches:
            buffers = ", ".join(f"{ref.name} ({ref.kind} {ref.index})" for ref in launch.buffers)
            lines.append(f"{launch.kernel}: {launch.grid.describe()} buffers: {buffers}")
        return "\n".join(lines)


def align(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN
