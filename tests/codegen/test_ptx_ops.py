"""The cuda backend on every primitive op and on multi-op functions with symbolic dims.

Everywhere the CUDA toolkit is installed: the PTX is generated and `ptxas` accepts it for sm_90
and sm_80. All cases are merged into one function per architecture (one LLVM build, one ptxas
run: each costs a fixed ~0.1-0.5 s), so this stays fast.

On a machine with a GPU and pycuda (`@pytest.mark.gpu`, skipped elsewhere with the reason):
every case runs on the GPU and is compared with the NumPy backend, the reference, at several
batch sizes (one compiled function serves them all), including sizes that need many blocks.
"""

import ctypes
import re
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path

import codegen_cases as cases
import llvmlite.binding as llvm
import numpy as np
import pytest
from codegen_cases import elementwise_ops, function, needs_toolkit, random_array
from tflc.codegen import numpy_backend, ptx
from tflc.codegen.llvm import target as llvm_target
from tflc.codegen.ptx import plan
from tflc.codegen.ptx.device import WARP
from tflc.codegen.ptx.kernels import BLOCK
from tflc.codegen.ptx.lower import lower
from tflc.frontend import parse_file
from tflc.ir import REGISTRY, Error, Function, Output
from tflc.ir.types import NUMPY_DTYPES, eval_dim
from tflc.passes.pipeline import DEFAULT_PIPELINE, run_pipeline, select_entry
from tflc.runtime import cuda

RNG = np.random.default_rng(0)
DTYPES = ("f32", "f64", "i32", "i64", "bool")
BATCHES = (1, 7, 100, 3000)
EMULATED_BATCHES = (1, 45)  # 45 x 3 x 4 elements: more than the 2 x 256 threads emulated
TIMEOUT = 20  # seconds a thread of the emulator waits at a barrier
TOLERANCE = {"f32": {"rtol": 2e-6, "atol": 1e-6}, "f64": {"rtol": 1e-13, "atol": 1e-13}}
EXACT = {"rtol": 0, "atol": 0}  # copies, single IEEE operations, random bits
SUMS = {"f32": {"rtol": 1e-5, "atol": 1e-5}, "f64": {"rtol": 1e-12, "atol": 1e-12}}


@dataclass
class Case:
    func: Function
    ranges: dict  # arg name → (low, high) of its random values
    fixed: dict  # arg name → the array to use at every size (then batches is (0,))
    tolerance: dict | None = None
    compact: bool = True  # in the default ptxas run (False: same code as another case)

    def args(self, sizes: dict) -> list:
        return [self.fixed[v.name] if v.name in self.fixed else
                random_array(RNG, v.type.dtype, tuple(eval_dim(d, sizes) for d in v.type.shape),
                             *self.ranges.get(v.name, (-3, 3)))
                for v in self.func.args]


CASES: dict[str, Case] = {}


def case(name: str, args: dict, build, ranges=None, fixed=None, tolerance=None,
         compact=True) -> None:
    CASES[name] = Case(function(args, build, name), ranges or {}, fixed or {}, tolerance,
                       compact and not fixed)


# -- elementwise -----------------------------------------------------------------------------------

POSITIVE_ONLY = {"log", "sqrt", "rsqrt"}
for _dtype in DTYPES:
    case(f"unary_{_dtype}", {"x": (_dtype, ("N", 5)), "p": (_dtype, ("N", 5))},
         lambda b, v, d=_dtype: {op: b.emit(op, v["p"] if op in POSITIVE_ONLY else v["x"])
                                 for op in elementwise_ops(1, d)},
         ranges={"p": (0.01, 20)})

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 88.0, -100.0, 1e10,
                    1e-40, 0.5])
for _dtype in ("f32", "f64"):
    case(f"unary_special_{_dtype}", {"x": (_dtype, (len(SPECIAL),))},
         lambda b, v, d=_dtype: {op: b.emit(op, v["x"]) for op in elementwise_ops(1, d)
                                 if op not in ("sin", "cos")},
         fixed={"x": SPECIAL.astype(NUMPY_DTYPES[_dtype])})

BROADCASTS = [(("N", 3), ("N", 3)), (("N", 3), (3,)), (("N", 1), (1, 3)), ((), ("N", 3)),
              ((2, "N", 3), ("N", 1)), (("N", 1, 4), (3, 1))]
for _i, (_a, _b) in enumerate(BROADCASTS):
    case(f"binary_broadcast_{_i}", {"a": ("f32", _a), "b": ("f32", _b)},
         lambda b, v: {op: b.emit(op, v["a"], v["b"]) for op in elementwise_ops(2, "f32")},
         compact=_i == len(BROADCASTS) - 1)
for _dtype in ("f64", "i32", "i64", "bool"):
    # small non-negative exponents: NumPy refuses negative integer powers
    case(f"binary_{_dtype}", {"a": (_dtype, ("N", 1, 4)), "b": (_dtype, (3, 1))},
         lambda b, v, d=_dtype: {op: b.emit(op, v["a"], v["b"]) for op in elementwise_ops(2, d)},
         ranges={"a": (-50, 50), "b": (0, 4)})

case("nan_comparisons", {"a": ("f32", (5,)), "b": ("f32", (5,))},
     lambda b, v: {op: b.emit(op, v["a"], v["b"]) for op in
                   ("eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum")},
     fixed={"a": np.array([np.nan, 1.0, -0.0, np.inf, np.nan], np.float32),
            "b": np.array([1.0, np.nan, 0.0, np.inf, np.nan], np.float32)})
_LOW = np.iinfo(np.int32).min
case("integer_edges", {"a": ("i32", (6,)), "b": ("i32", (6,))},
     lambda bld, v: {"neg": bld.emit("neg", v["a"]), "abs": bld.emit("abs", v["a"]),
                     "sign": bld.emit("sign", v["a"]), "square": bld.emit("square", v["a"]),
                     "add": bld.emit("add", v["a"], v["b"]), "mul": bld.emit("mul", v["a"], v["b"]),
                     "sub": bld.emit("sub", v["a"], v["b"]),
                     "maximum": bld.emit("maximum", v["a"], v["b"])},
     fixed={"a": np.array([_LOW, _LOW, -1, 7, 2, 46341], np.int32),
            "b": np.array([-1, 1, 3, 0, 31, 2], np.int32)})
case("where", {"c": ("bool", ("N", 1)), "a": ("f32", (3,)), "b": ("f32", ("N", 3))},
     lambda b, v: {"w": b.emit("where", v["c"], v["a"], v["b"])})
for _dtype in DTYPES:
    case(f"cast_{_dtype}", {"x": (_dtype, ("N", 4))},
         lambda b, v: {t: b.emit("cast", v["x"], dtype=t) for t in DTYPES},
         ranges={"x": (-1e4, 1e4)})
case("cast_special", {"x": ("f32", (9,))},
     lambda b, v: {t: b.emit("cast", v["x"], dtype=t) for t in ("i32", "i64", "bool", "f64")},
     fixed={"x": np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.9, -2.9, -0.0, 1e19],
                          np.float32)})

# -- reductions ------------------------------------------------------------------------------------

# None and [1, 2] reduce rows of symbolic or static length along the last axis (a block or a
# warp per output); 0, 1 and [0, 2] keep the last axis (a thread per output)
AXES = [None, 0, 1, -1, [0, 2], [1, 2]]
for _dtype in ("f32", "f64", "i32", "i64"):
    case(f"reduce_{_dtype}", {"x": (_dtype, ("N", 3, 4))},
         lambda b, v: {**{f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                          for op in ("sum", "prod", "max", "min") for axis in AXES},
                       **{f"sum{axis}keep": b.emit("sum", v["x"], axis=axis, keepdims=True)
                          for axis in (None, [0, 2])}},
         # values near 1 keep products over 1000s of elements finite
         ranges={"x": (0.9, 1.1) if _dtype in ("f32", "f64") else (-3, 3)},
         tolerance=SUMS.get(_dtype), compact=False)
    # the three kernels of a reduction: a block per row (symbolic length), a warp per row,
    # a thread per output
    case(f"reduce_kernels_{_dtype}", {"x": (_dtype, ("N", 3, 4))},
         lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                       for op in ("sum", "prod", "max", "min") for axis in (None, -1, 0)},
         ranges={"x": (0.9, 1.1) if _dtype in ("f32", "f64") else (-3, 3)},
         tolerance=SUMS.get(_dtype))
case("reduce_long_rows", {"x": ("f32", (3, 2000)), "y": ("f64", ("N", 700))},
     lambda b, v: {"sum": b.emit("sum", v["x"], axis=1), "max": b.emit("max", v["x"], axis=1),
                   "rows": b.emit("sum", v["y"], axis=1), "all": b.emit("sum", v["y"])},
     tolerance={"rtol": 1e-5, "atol": 1e-4})
case("reduce_nan", {"x": ("f32", (2, 3))},
     lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                   for op in ("sum", "prod", "max", "min") for axis in (0, 1)},
     fixed={"x": np.array([[1.0, np.nan, 2.0], [3.0, -np.inf, 0.5]], np.float32)})
for _dtype in ("f32", "f64", "i32", "i64"):
    case(f"argreduce_{_dtype}", {"x": (_dtype, ("N", 3, 4))},
         lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                       for op in ("argmax", "argmin") for axis in (0, 1, -1)},
         ranges={"x": (-2, 2)},  # many ties
         compact=_dtype == "f32")
case("argreduce_kernels", {t: (t, ("N", 3)) for t in ("f64", "i32", "i64")},
     lambda b, v: {f"{op}_{t}": b.emit(op, v[t], axis=-1)
                   for op in ("argmax", "argmin") for t in v})
case("argreduce_nan", {"x": ("f64", (4, 4))},
     lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                   for op in ("argmax", "argmin") for axis in (0, 1)},
     fixed={"x": np.array([[1, 3, 3, 0], [np.nan, 2, np.nan, 5], [4, np.nan, 4, 9],
                           [2, 2, 2, 2]], np.float64)})

# -- matmul ----------------------------------------------------------------------------------------

MATMULS = [(("N", 5), (5, 3)), ((5,), (5, 3)), (("N", 5), (5,)), ((5,), (5,)),
           ((2, "N", 5), (5, 3)), (("N", 4, 5), ("N", 5, 3)), ((2, 1, 3, 5), ("N", 5, 4)),
           ((37, 45), (45, "N"))]  # several tiles, none full
for _dtype in ("f32", "f64", "i32", "i64"):
    _args = {}
    for _i, (_a, _b) in enumerate(MATMULS):
        _args[f"a{_i}"], _args[f"b{_i}"] = (_dtype, _a), (_dtype, _b)
    case(f"matmul_{_dtype}", _args,
         lambda b, v: {f"m{i}": b.emit("matmul", v[f"a{i}"], v[f"b{i}"])
                       for i in range(len(MATMULS))},
         tolerance=SUMS.get(_dtype), compact=False)
case("matmul_kernels", {f"{x}_{t}": (t, shape) for t in ("f32", "f64", "i32", "i64")
                        for x, shape in (("a", (2, 1, 3, 5)), ("b", ("N", 5, 4)))},
     lambda b, v: {t: b.emit("matmul", v[f"a_{t}"], v[f"b_{t}"])
                   for t in ("f32", "f64", "i32", "i64")},
     tolerance=SUMS["f32"])
case("matmul_transposed", {"a": ("f32", (6, "N")), "w": ("f32", (6, 4)), "c": ("f32", (4, 6))},
     lambda b, v: {"atw": b.emit("matmul", b.emit("transpose", v["a"]), v["w"]),
                   "atct": b.emit("matmul", b.emit("transpose", v["a"]),
                                  b.emit("transpose", v["c"]))},
     tolerance=SUMS["f32"])


# -- shape ops, sources ------------------------------------------------------------------------------

case("views", cases.VIEWS_ARGS, cases.views, tolerance=EXACT)
case("bool_data", cases.BOOL_DATA_ARGS, cases.bool_data)
for _dtype in ("i32", "i64"):
    case(f"one_hot_{_dtype}", cases.one_hot_args(_dtype), cases.one_hot,
         ranges=cases.ONE_HOT_RANGES, tolerance=EXACT)
for _dtype in ("f32", "f64"):
    case(f"rng_{_dtype}", cases.rng_args(_dtype), cases.rng, ranges={"counter": (-5, 12345)},
         tolerance=EXACT)
case("constants", cases.CONSTANTS_ARGS, cases.constants, tolerance=EXACT)


# -- multi-op functions ---------------------------------------------------------------------------

def dense_relu(b, v):
    hidden = b.emit("relu", b.emit("add", b.emit("matmul", v["x"], v["W"]), v["b"]))
    return {"hidden": hidden, "total": b.emit("sum", hidden, axis=1)}


case("dense_relu", {"x": ("f32", ("N", 20)), "W": ("f32", (20, 30)), "b": ("f32", (30,))},
     dense_relu, tolerance=SUMS["f32"])


def classifier(b, v):
    """The MNIST tutorial's forward pass, softmax written out as its composite expands."""
    logits = b.emit("add", b.emit("matmul", v["x"], v["W"]), v["b"])
    shifted = b.emit("sub", logits, b.emit("max", logits, axis=-1, keepdims=True))
    e = b.emit("exp", shifted)
    y = b.emit("div", e, b.emit("sum", e, axis=-1, keepdims=True))
    hits = b.emit("eq", b.emit("argmax", y, axis=1), v["labels"])
    accuracy = b.emit("div", b.emit("sum", b.cast(hits, "f32")),
                      b.cast(b.emit("shape", v["x"], axis=0), "f32"))
    return {"y": y, "accuracy": accuracy, "W": v["W"]}


case("classifier", {"x": ("f32", ("N", 784)), "W": ("f32", (784, 10)), "b": ("f32", (10,)),
                    "labels": ("i64", ("N",))},
     classifier, ranges={"x": (0, 1), "W": (-0.05, 0.05), "labels": (0, 9)},
     tolerance={"rtol": 1e-5, "atol": 1e-7})


# -- ptxas -----------------------------------------------------------------------------------------

def merged(cases) -> Function:
    """Every case in one function (labels prefixed by the case), so one module holds them all."""
    funcs = [c.func for c in cases]
    return Function("all", tuple(dict.fromkeys(d for f in funcs for d in f.dims)),
                    tuple(v for f in funcs for v in f.args), tuple(op for f in funcs for op in f.ops),
                    tuple(Output(f"{f.name}.{out.label}", out.value)
                          for f in funcs for out in f.outputs))


def assemble_all(cases, tmp_path) -> None:
    """The cases as one module per architecture, each accepted by ptxas (run side by side)."""
    func = merged(cases)
    runs = []
    for arch in ("sm_90", "sm_80"):
        program = ptx.build(func, arch)
        assert f".target {arch}" in program.ptx and ".extern" not in program.ptx
        kernels = [launch.kernel for launch in program.plan.launches]
        assert len(set(kernels)) == len(kernels)
        assert all(f".entry {name}(" in program.ptx for name in kernels)
        path = tmp_path / f"{arch}.ptx"
        path.write_text(program.ptx)
        runs.append((arch, subprocess.Popen(
            ["ptxas", f"-arch={arch}", "-o", str(tmp_path / f"{arch}.cubin"), str(path)],
            stderr=subprocess.PIPE, text=True)))
    for arch, run in runs:
        assert run.wait() == 0, f"ptxas -arch={arch}: {run.stderr.read()}"


@needs_toolkit
def test_ptxas_accepts_every_op_and_dtype(tmp_path):
    """Every op in every dtype, every kernel template: the cases marked compact."""
    assemble_all([c for c in CASES.values() if c.compact], tmp_path)


@pytest.mark.slow
@needs_toolkit
def test_ptxas_accepts_every_case(tmp_path):
    assemble_all(CASES.values(), tmp_path)


def test_every_primitive_is_covered():
    """Each primitive op of the registry, in every dtype it takes, is in a compact case."""
    ops = [op for c in CASES.values() if c.compact for op in c.func.ops]
    primitives = {name for name, opdef in REGISTRY.items()
                  if opdef.kind not in ("composite", "special")}
    assert primitives <= {op.opcode for op in ops}, sorted(primitives - {op.opcode for op in ops})
    typed = {(op.opcode, op.operands[0].type.dtype) for op in ops if op.operands}
    wanted = {(name, dtype) for dtype in DTYPES for arity in (1, 2)
              for name in elementwise_ops(arity, dtype)}
    wanted |= {(name, dtype) for name in ("sum", "prod", "max", "min", "argmax", "argmin",
                                          "matmul", "cast") for dtype in ("f32", "f64", "i32", "i64")}
    assert wanted <= typed, sorted(wanted - typed)


# -- on the CPU: the kernels emulated --------------------------------------------------------------

# The emulator's runtime, in LLVM IR for the host: BLOCK worker threads (native, so they never
# wait for Python's GIL) run a launch's blocks one after another; a thread's registers come
# from its index and the job; barriers and shuffles are pthread barriers. A shuffle writes its
# value to the warp's slots and waits for the warp; shuffles alternate between two sets of
# slots, so a lane writes a set again only after the next shuffle's barrier, which every lane
# reaches after reading it.
WARPS = BLOCK // WARP
JOB_FIELDS = {"ntid.x": 2, "ntid.y": 3, "ctaid.x": 4, "nctaid.x": 5}  # registers the job holds
JOB_REGISTERS = "\n".join(f"""define i32 @emu.sreg.{register}() {{
  %v = call i64 @emu.field(i32 {field})
  %r = trunc i64 %v to i32
  ret i32 %r
}}
""" for register, field in JOB_FIELDS.items())
SHUFFLE_MODES = {"down": "true", "idx": "false"}  # lane + operand, or lane operand
SHUFFLES = "\n".join(f"""define i32 @emu.shfl.{mode}.i32(i32 %mask, i32 %value, i32 %operand, i32 %clamp) {{
  %result = call i32 @emu.shuffle(i32 %value, i32 %operand, i32 %clamp, i1 {down})
  ret i32 %result
}}

define float @emu.shfl.{mode}.f32(i32 %mask, float %value, i32 %operand, i32 %clamp) {{
  %bits = bitcast float %value to i32
  %moved = call i32 @emu.shuffle(i32 %bits, i32 %operand, i32 %clamp, i1 {down})
  %result = bitcast i32 %moved to float
  ret float %result
}}
""" for mode, down in SHUFFLE_MODES.items())
EMULATOR_IR = f"""
%job = type {{ ptr, ptr, i64, i64, i64, i64 }}  ; run(args), args, ntid.x, ntid.y, ctaid.x, nctaid.x
%me = type {{ i64, i64 }}  ; this thread's index in the block, its next set of shuffle slots
@emu.job = global %job zeroinitializer
@emu.done = global i64 0
@emu.key = global i32 0
@emu.start = global [64 x i8] zeroinitializer, align 16
@emu.block = global [64 x i8] zeroinitializer, align 16
@emu.warps = global [{WARPS} x [64 x i8]] zeroinitializer, align 16
@emu.slots = global [{WARPS} x [2 x [{WARP} x i32]]] zeroinitializer

declare i32 @pthread_key_create(ptr, ptr)
declare ptr @pthread_getspecific(i32)
declare i32 @pthread_setspecific(i32, ptr)
declare i32 @pthread_barrier_init(ptr, ptr, i32)
declare i32 @pthread_barrier_wait(ptr)

define void @emu.init() {{
  call i32 @pthread_key_create(ptr @emu.key, ptr null)
  call i32 @pthread_barrier_init(ptr @emu.start, ptr null, i32 {BLOCK + 1})
  call i32 @pthread_barrier_init(ptr @emu.block, ptr null, i32 {BLOCK})
  br label %warp
warp:
  %w = phi i64 [0, %0], [%next, %warp]
  %bar = getelementptr [{WARPS} x [64 x i8]], ptr @emu.warps, i64 0, i64 %w, i64 0
  call i32 @pthread_barrier_init(ptr %bar, ptr null, i32 {WARP})
  %next = add i64 %w, 1
  %more = icmp ult i64 %next, {WARPS}
  br i1 %more, label %warp, label %done
done:
  ret void
}}

define void @emu.worker(i64 %linear) {{
  %me = alloca %me
  store %me {{ i64 0, i64 0 }}, ptr %me
  store i64 %linear, ptr %me
  %key = load i32, ptr @emu.key
  call i32 @pthread_setspecific(i32 %key, ptr %me)
  br label %wait
wait:
  call i32 @pthread_barrier_wait(ptr @emu.start)
  %run = load ptr, ptr @emu.job
  %stop = icmp eq ptr %run, null
  br i1 %stop, label %exit, label %go
go:
  %argsp = getelementptr %job, ptr @emu.job, i32 0, i32 1
  %args = load ptr, ptr %argsp
  call void %run(ptr %args)
  atomicrmw add ptr @emu.done, i64 1 seq_cst
  br label %wait
exit:
  ret void
}}

define internal ptr @emu.me() {{
  %key = load i32, ptr @emu.key
  %me = call ptr @pthread_getspecific(i32 %key)
  ret ptr %me
}}

define internal i64 @emu.field(i32 %field) {{  ; every field of %job is 8 bytes
  %p = getelementptr i64, ptr @emu.job, i32 %field
  %v = load i64, ptr %p
  ret i64 %v
}}

define internal i64 @emu.linear() {{
  %me = call ptr @emu.me()
  %linear = load i64, ptr %me
  ret i64 %linear
}}

define i32 @emu.sreg.tid.x() {{
  %l = call i64 @emu.linear()
  %w = call i64 @emu.field(i32 2)
  %x = urem i64 %l, %w
  %r = trunc i64 %x to i32
  ret i32 %r
}}

define i32 @emu.sreg.tid.y() {{
  %l = call i64 @emu.linear()
  %w = call i64 @emu.field(i32 2)
  %y = udiv i64 %l, %w
  %r = trunc i64 %y to i32
  ret i32 %r
}}

{JOB_REGISTERS}

define void @emu.barrier(i32 %id) {{
  call i32 @pthread_barrier_wait(ptr @emu.block)
  ret void
}}

define internal i32 @emu.shuffle(i32 %value, i32 %operand, i32 %clamp, i1 %down) {{
  %me = call ptr @emu.me()
  %linear = load i64, ptr %me
  %lane = urem i64 %linear, {WARP}
  %warp = udiv i64 %linear, {WARP}
  %setp = getelementptr %me, ptr %me, i32 0, i32 1
  %set = load i64, ptr %setp
  %other = xor i64 %set, 1
  store i64 %other, ptr %setp
  %mine = getelementptr [{WARPS} x [2 x [{WARP} x i32]]], ptr @emu.slots, i64 0, i64 %warp, i64 %set, i64 %lane
  store i32 %value, ptr %mine
  %bar = getelementptr [{WARPS} x [64 x i8]], ptr @emu.warps, i64 0, i64 %warp, i64 0
  call i32 @pthread_barrier_wait(ptr %bar)
  %lane32 = trunc i64 %lane to i32
  %below = add i32 %lane32, %operand
  %inside = icmp ule i32 %below, %clamp
  %down_index = select i1 %inside, i32 %below, i32 %lane32
  %idx_index = and i32 %operand, %clamp
  %index = select i1 %down, i32 %down_index, i32 %idx_index
  %index64 = zext i32 %index to i64
  %theirs = getelementptr [{WARPS} x [2 x [{WARP} x i32]]], ptr @emu.slots, i64 0, i64 %warp, i64 %set, i64 %index64
  %result = load i32, ptr %theirs
  ret i32 %result
}}
{SHUFFLES}"""
EMULATOR_EXPORTS = ["emu.barrier"] + [f"emu.shfl.{mode}.{t}" for mode in SHUFFLE_MODES
                                        for t in ("i32", "f32")] + [
    f"emu.sreg.{register}" for register in ("tid.x", "tid.y", *JOB_FIELDS)]


class Job(ctypes.Structure):
    _fields_ = [("run", ctypes.c_void_p), ("args", ctypes.c_void_p), ("ntid_x", ctypes.c_int64),
                ("ntid_y", ctypes.c_int64), ("ctaid_x", ctypes.c_int64),
                ("nctaid_x", ctypes.c_int64)]


class Emulator:
    """Runs the lowered kernels on the CPU, to test what they compute on machines without a GPU.

    The NVPTX module's IR (as lowering made it, before LLVM's NVPTX passes) is retargeted to the
    host (`EmulatedModule`); a launch runs its blocks one after another, the BLOCK threads of a
    block at once (`EMULATOR_IR`), so barriers and warp shuffles work as on a GPU. A block that
    does not finish in TIMEOUT seconds (some thread left waiting at a barrier) fails the test."""

    def __init__(self):
        module = llvm.parse_assembly(EMULATOR_IR)
        module.triple = llvm_target.host().triple
        module.verify()
        self.engine = llvm.create_mcjit_compiler(module, llvm_target.host().machine())
        self.engine.finalize_object()
        for name in EMULATOR_EXPORTS:
            llvm.add_symbol(name, self.engine.get_function_address(name))
        ctypes.CFUNCTYPE(None)(self.engine.get_function_address("emu.init"))()
        self.job = Job.from_address(self.engine.get_global_value_address("emu.job"))
        self.done = ctypes.c_int64.from_address(self.engine.get_global_value_address("emu.done"))
        self.start = self.engine.get_global_value_address("emu.start")
        self.barrier_wait = ctypes.CDLL(None).pthread_barrier_wait
        self.barrier_wait.argtypes = [ctypes.c_void_p]
        worker = ctypes.CFUNCTYPE(None, ctypes.c_int64)(
            self.engine.get_function_address("emu.worker"))
        self.workers = [threading.Thread(target=worker, args=(linear,), daemon=True)
                        for linear in range(BLOCK)]
        for thread in self.workers:
            thread.start()

    def launch(self, run: int, args, blocks: int, shape: tuple) -> None:
        assert shape[0] * shape[1] * shape[2] == BLOCK
        self.job.run, self.job.args = run, ctypes.addressof(args)
        self.job.ntid_x, self.job.ntid_y, self.job.nctaid_x = shape[0], shape[1], blocks
        for block in range(blocks):
            self.job.ctaid_x = block
            self.done.value = 0
            self.barrier_wait(self.start)
            deadline = time.monotonic() + TIMEOUT
            while self.done.value < BLOCK:
                assert time.monotonic() < deadline, \
                    "a block did not finish: some of its threads wait at a barrier or shuffle"
                time.sleep(1e-4)

    def close(self) -> None:
        self.job.run = None
        self.barrier_wait(self.start)
        for thread in self.workers:
            thread.join()


NVPTX_TO_HOST = [
    (re.compile(r" addrspace\(\d\)"), ""),  # the host has one address space
    (re.compile(r"ptx_kernel "), ""),
    (re.compile(r'"llvm\.nvvm\.read\.ptx\.sreg\.'), '"emu.sreg.'),
    (re.compile(r'"llvm\.nvvm\.shfl\.sync\.(down|idx)\.'), r'"emu.shfl.\1.'),
    (re.compile(r'"llvm\.nvvm\.barrier\.cta\.sync\.aligned\.all"'), '"emu.barrier"'),
    (re.compile(r'"__nv_(\w+)"'), r'"\1"'),  # libdevice's __nv_expf → libm's expf
    (re.compile(r'target triple = ".*"'), f'target triple = "{llvm_target.host().triple}"'),
    (re.compile(r'target datalayout = ".*"'),
     f'target datalayout = "{llvm_target.host().data_layout}"'),
]


class EmulatedModule:
    """A lowered module on the host, standing in for the loaded PTX module (pycuda's API). Each
    kernel gets a trampoline `emu.run.K(ptr args)` that reads its arguments from an array."""

    def __init__(self, emulator: Emulator, module_text: str, launches):
        for pattern, replacement in NVPTX_TO_HOST:
            module_text = pattern.sub(replacement, module_text)
        for launch in {launch.kernel: launch for launch in launches}.values():
            module_text += trampoline(launch.kernel, len(launch.buffers), module_text)
        module = llvm.parse_assembly(module_text)
        module.verify()
        self.engine = llvm.create_mcjit_compiler(module, llvm_target.host().machine())
        self.engine.finalize_object()
        self.emulator = emulator

    def get_function(self, name: str):
        module = self

        class Kernel:
            def prepare(self, formats: str):
                self.count = len(formats)

            def prepared_call(self, grid, block, *args):
                values = (ctypes.c_int64 * self.count)(*args)
                run = module.engine.get_function_address(f"emu.run.{name}")
                module.emulator.launch(run, values, grid[0], block)

        return Kernel()


def trampoline(kernel: str, pointers: int, module_text: str) -> str:
    dims = int(re.search(rf'define void @"{kernel}"\((.*)\)', module_text).group(1)
               .count("i64 %"))
    lines = [f'define void @"emu.run.{kernel}"(ptr %args) {{']
    params = []
    for index in range(pointers + dims):
        kind = "ptr" if index < pointers else "i64"
        lines += [f"  %p{index} = getelementptr i64, ptr %args, i64 {index}",
                  f"  %a{index} = load {kind}, ptr %p{index}"]
        params.append(f"{kind} %a{index}")
    lines += [f'  call void @"{kernel}"({", ".join(params)})', "  ret void", "}", ""]
    return "\n" + "\n".join(lines)


class HostMemory(types.ModuleType):
    """pycuda.driver as far as runtime/cuda.Compiled uses it, with device memory on the host."""

    Error = RuntimeError

    def __init__(self):
        super().__init__("pycuda.driver")

    def init(self):
        pass

    @staticmethod
    def mem_alloc(nbytes):
        return Allocation(np.empty(nbytes, np.uint8))

    @staticmethod
    def memcpy_htod(address, array):
        ctypes.memmove(address, array.ctypes.data, array.nbytes)

    @staticmethod
    def memcpy_dtoh(array, address):
        ctypes.memmove(array.ctypes.data, address, array.nbytes)


class Allocation:
    def __init__(self, memory: np.ndarray):
        self.memory = memory

    def __int__(self):
        return self.memory.ctypes.data


@pytest.fixture(scope="module")
def emulator():
    emulator = Emulator()
    yield emulator
    emulator.close()


@pytest.fixture
def emulated(emulator, monkeypatch):
    """compile(func) → runtime/cuda.Compiled running on the emulator, with at most 2 blocks per
    launch so that every grid-stride loop takes several turns."""
    package = types.ModuleType("pycuda")
    package.driver = HostMemory()
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", package.driver)
    monkeypatch.setattr(plan, "MAX_BLOCKS", 2)

    def compile_emulated(func: Function):
        lowered = lower(func, "sm_90")
        module = EmulatedModule(emulator, str(lowered.module), lowered.plan.launches)
        monkeypatch.setattr(cuda, "load", lambda text, gpu: module)
        program = ptx.Program(func.name, "sm_90", (7, 8), "", lowered.plan)
        return cuda.Compiled(program, cuda.Device("emulator", "sm_90", (9, 0), 13000))

    return compile_emulated


def check(c: Case, compiled, batches) -> None:
    """Every output of the case against the NumPy backend's, at each batch size."""
    reference = numpy_backend.compile(c.func)
    for n in (0,) if c.fixed else batches:
        sizes = {d: n for d in c.func.dims}
        args = c.args(sizes)
        for out, got, want in zip(c.func.outputs, compiled(sizes, args), reference(sizes, args)):
            assert got.dtype == want.dtype and got.shape == want.shape, (out.label, got.shape)
            dtype = out.value.type.dtype
            if dtype in TOLERANCE:
                np.testing.assert_allclose(got, want, **(c.tolerance or TOLERANCE[dtype]),
                                           equal_nan=True, err_msg=f"{out.label}, N={n}")
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{out.label}, N={n}")


@pytest.mark.parametrize("name", [pytest.param(name, marks=() if case.compact or case.fixed
                                               else pytest.mark.slow)
                                  for name, case in CASES.items()])
def test_emulated_against_numpy(emulated, name):
    """The compact cases and those with special values by default, all with -m slow."""
    check(CASES[name], emulated(CASES[name].func), EMULATED_BATCHES)


# -- the example models, through the whole pipeline -----------------------------------------------

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tfl"))
QUICK_EXAMPLES = ("linear_regression", "logistic_regression")  # the others with -m slow


def example_entries():
    """Each example's fetches, and each of its steps, as the compiled entry function."""
    for path in EXAMPLES:
        module = parse_file(path)
        model = module.function("model")
        for fetches, step in [(model.fetchable, None)] + [((), step) for step in model.steps]:
            entry = run_pipeline(select_entry(module, list(fetches), step), DEFAULT_PIPELINE)
            func = entry.function.replace(name=f"{path.stem}_{step or 'fetches'}")
            marks = () if path.stem in QUICK_EXAMPLES else pytest.mark.slow
            yield pytest.param(func, id=func.name, marks=marks)


def example_args(func: Function, sizes: dict) -> list:
    """Feeds, params and state: floats around 0, small non-negative integers (labels, counts)."""
    args = []
    for a in func.args:
        shape = tuple(eval_dim(d, sizes) for d in a.type.shape)
        if a.type.is_float:
            args.append((0.5 * RNG.standard_normal(shape)).astype(NUMPY_DTYPES[a.type.dtype]))
        else:
            args.append(RNG.integers(0, 10, shape).astype(NUMPY_DTYPES[a.type.dtype]))
    return args


def check_example(func: Function, compiled) -> None:
    """Against the NumPy backend. Gradients sum terms that cancel, so the tolerance is relative
    to each output's largest finite element rather than to each element."""
    sizes = {d: 5 for d in func.dims}
    args = example_args(func, sizes)
    got = compiled(sizes, args)
    for out, g, w in zip(func.outputs, got, numpy_backend.compile(func)(sizes, args)):
        assert g.dtype == w.dtype and g.shape == w.shape, out.label
        scale = float(np.max(np.abs(w[np.isfinite(w)]), initial=1.0)) if w.dtype.kind == "f" \
            else 0
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * scale, equal_nan=True,
                                   err_msg=out.label)


@pytest.mark.parametrize("func", list(example_entries()))
def test_examples_emulated_against_numpy(emulated, func):
    check_example(func, emulated(func))


@pytest.mark.slow
@needs_toolkit
def test_ptxas_accepts_every_example(tmp_path):
    funcs = [param.values[0] for param in example_entries()]
    assemble_all([Case(func, {}, {}) for func in funcs], tmp_path)


# -- on the GPU -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpu():
    from tflc.runtime import cuda
    try:
        return cuda.device()
    except Error as e:
        pytest.skip(f"no GPU to run on: {e.message}")


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(CASES))
def test_on_gpu_against_numpy(gpu, name):
    check(CASES[name], cuda.compile(CASES[name].func), BATCHES)


@pytest.mark.gpu
@pytest.mark.parametrize("func", [param.values[0] for param in example_entries()],
                         ids=lambda func: func.name)
def test_examples_on_gpu_against_numpy(gpu, func):
    check_example(func, cuda.compile(func))


@pytest.mark.gpu
def test_on_gpu_grid_stride_past_the_largest_grid(gpu):
    """More elements than MAX_BLOCKS x BLOCK threads: every thread loops."""
    func = function({"x": ("f32", ("N",)), "y": ("f32", ("N",))},
                    lambda b, v: {"z": b.emit("add", v["x"], v["y"]),
                                  "s": b.emit("sum", v["x"])}, "big")
    n = 2 ** 21 * 3 + 5
    x, y = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    z, s = cuda.compile(func)({"N": n}, [x, y])
    np.testing.assert_array_equal(z, x + y)
    np.testing.assert_allclose(s, x.sum(dtype=np.float64), rtol=1e-5)


def test_emulated_matmul_and_column_sums_are_the_cpu_backends_bits(emulated):
    """The same order and rounding as the LLVM CPU backend: matmul in k order with fused
    multiply-adds, reductions over leading axes in memory order, argmax."""
    from tflc.codegen import llvm as cpu

    func = function({"a": ("f32", ("N", 37)), "b": ("f32", (37, 45))},
                    lambda b, v: {"m": b.emit("matmul", v["a"], v["b"]),
                                  "s": b.emit("sum", v["b"], axis=0),
                                  "i": b.emit("argmax", v["a"], axis=0)}, "same")
    sizes = {"N": 45}
    args = [random_array(RNG, "f32", (45, 37)), random_array(RNG, "f32", (37, 45))]
    for got, want in zip(emulated(func)(sizes, args), cpu.compile(func)(sizes, args)):
        np.testing.assert_array_equal(got, want)
