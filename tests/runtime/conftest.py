"""A small model, written in IR text so the runtime tests need no frontend."""

import pytest

from tflc import Model
from tflc.ir.parser import parse_module

# Backslash-newlines only wrap the long lines here; they are joined before parsing.
TOY = """\
model toy
input x: f32[N,3]
input y: f32[N,2]
input n: i32[]
input W0: f32[3,2]
param W: f32[3,2] = normal(mean=0.0, stddev=0.5)
param b: f32[2] = value(value=[1.0, 2.0])
state count: i32[] = value(value=0)
counter __run: i64[]

func @model<N>(%x: f32[N,3], %y: f32[N,2], %n: i32[], %W0: f32[3,2], %W: f32[3,2], %b: f32[2], \
%count: i32[], %__run: i64[]) -> (f32[N,2], f32[N,2], f32[], i32[], i64[], f32[2], f32[3,2], \
i32[], f32[3,2]) {
  %xw: f32[N,2] = matmul %x, %W
  %h: f32[N,2] = add %xw, %b
  %d: f32[N,2] = sub %h, %y
  %sq: f32[N,2] = mul %d, %d
  %loss: f32[] = sum %sq
  %more: i32[] = add %count, %n
  %bW: f32[3,2] = add %W, %b
  %bb: f32[2] = sum[axis=[0]] %W
  return %xw, %h, %loss, %more, run = %__run, swap: b <- %bb, swap: W <- %bW, \
add: count <- %more, set: W <- %W0
}
"""


@pytest.fixture
def toy():
    return parse_module(TOY.replace("\\\n", ""), "toy.ir")


@pytest.fixture
def model(toy):
    return Model(toy, seed=0)
