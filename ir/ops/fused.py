"""`fused`: one kernel's worth of ops, made by the `fuse` pass and held in the op's region.

```
%h: f32[N,300] = fused[kind=matmul] %x, %W1, %b1 {
  ^(%0: f32[N,784], %1: f32[784,300], %2: f32[300]):
  %3: f32[N,300] = matmul %0, %1
  %4: f32[N,300] = add %3, %2
  %5: f32[N,300] = relu %4
  yield %5
}
```

The region's arguments take the operands, its yields are the results (one op may have several:
every value used outside the kernel is written once). Its type is its region's, so the verifier
and the parser check the region instead of calling a type rule. `kind` says how a backend emits
the kernel (docs/passes.md): `elementwise` (one loop over the yields' shape), `reduction` (rows:
reductions over the same axes of one shape, with elementwise ops before, between and after),
`matmul` (one matmul and elementwise epilogues on its result).
"""

from __future__ import annotations

from ..registry import OpDef, ShapeError, register

FUSED_KINDS = ("elementwise", "reduction", "matmul")


def infer_fused(types, attrs):
    raise ShapeError("a fused op has no type rule: its results are its region's yields")


register(OpDef("fused", "special", "a kernel: its region's ops, run as one (made by `fuse`)",
               infer_fused, arity=None, attrs={"kind": "elementwise"}, differentiable=False))
