"""The cuda backend's target and runtime, without a GPU: architectures and PTX versions, the
vetted intrinsics and libdevice, what `emit` prints, the launch plan, and the pycuda runtime's
errors and bookkeeping (against a fake pycuda that records what it is asked to do)."""

import subprocess
import sys
import types

import numpy as np
import pytest
from codegen_cases import dense, needs_toolkit
from tflc.codegen import ptx
from tflc.codegen.ptx import target
from tflc.codegen.ptx.plan import MAX_BLOCKS, Grid
from tflc.ir import Builder, Error, Function, Output, TensorType, Value
from tflc.runtime import cuda


def ptxas(text: str, arch: str, tmp_path) -> None:
    path = tmp_path / f"module.{arch}.ptx"
    path.write_text(text)
    result = subprocess.run(["ptxas", f"-arch={arch}", "-o", str(tmp_path / "module.cubin"),
                             str(path)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- architectures and PTX versions --------------------------------------------------------------

def test_ptx_version_offline_is_the_arch_minimum():
    assert target.ptx_version("sm_80") == (7, 0)
    assert target.ptx_version("sm_90") == (7, 8)


def test_ptx_version_from_the_driver():
    assert target.ptx_version("sm_90", 13000) == (9, 0)  # driver 580: CUDA 13.0
    assert target.ptx_version("sm_80", 12020) == (8, 2)
    assert target.ptx_version("sm_90", 99000) == target.LLVM_MAX_PTX  # newer than LLVM knows


def test_driver_too_old_for_the_arch():
    with pytest.raises(Error) as info:
        target.ptx_version("sm_90", 11040)
    assert "driver 11.4 supports PTX ≤ 7.4" in info.value.message
    assert "sm_90 needs PTX 7.8" in info.value.message


def test_arch_of_the_gpu():
    assert target.arch_of_capability(9, 0) == "sm_90"
    assert target.arch_of_capability(8, 6) == "sm_86"
    assert target.arch_of_capability(8, 8) == "sm_87"  # unknown: the newest known below
    assert target.arch_of_capability(12, 1) == "sm_120"
    with pytest.raises(Error, match="8.0"):
        target.arch_of_capability(7, 5)


def test_unknown_arch_and_emit_kind():
    with pytest.raises(Error, match="unknown GPU architecture 'sm_75'"):
        ptx.emit(dense(), "ptx", arch="sm_75")
    with pytest.raises(Error, match="unknown emit kind 'asm'"):
        ptx.emit(dense(), "asm")


def row_sums() -> Function:
    """A reduction and an elementwise op: no math function, so no libdevice to link."""
    x = Value(TensorType("f64", ("N", 7)), "x")
    b = Builder()
    total = b.emit("sum", b.emit("mul", x, x), axis=1)
    return Function("row_sums", ("N",), (x,), tuple(b.ops), (Output("total", total),))


@needs_toolkit
@pytest.mark.parametrize("arch", list(target.ARCHES))
def test_every_arch_assembles(arch, tmp_path):
    program = ptx.build(row_sums(), arch)
    major, minor = program.ptx_version
    assert f".version {major}.{minor}" in program.ptx and f".target {arch}" in program.ptx
    ptxas(program.ptx, arch, tmp_path)


@needs_toolkit
def test_the_newest_ptx_version_assembles(tmp_path):
    """At run time the version is the driver's newest: driver 580 (CUDA 13.0) means 9.0."""
    program = ptx.build(dense(), "sm_90", target.ptx_version("sm_90", 13000))
    assert ".version 9.0" in program.ptx
    ptxas(program.ptx, "sm_90", tmp_path)


# -- vetted intrinsics and libdevice --------------------------------------------------------------

def test_unvetted_intrinsic_is_an_error_not_an_abort():
    with pytest.raises(Error, match="'llvm.exp.f32' is not a vetted NVPTX intrinsic"):
        target.check_declarations(["llvm.sqrt.f32", "__nv_expf", "llvm.exp.f32"])


VETTED_MODULE = """
import sys
from llvmlite import ir
from tflc.codegen.ptx import target

module = ir.Module("vetted")
module.triple = target.TRIPLE
module.data_layout = target.data_layout(sys.argv[1])
i32, i64 = ir.IntType(32), ir.IntType(64)
types = {"f32": ir.FloatType(), "f64": ir.DoubleType(), "i32": i32, "i64": i64}
names = sorted(target.VETTED | target.LIBDEVICE_NAMES)
kernel = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(addrspace=1)]), "k")
kernel.calling_convention = "ptx_kernel"
b = ir.IRBuilder(kernel.append_basic_block())
for index, name in enumerate(names):
    if name.startswith("__nv_"):  # __nv_expf (f32), __nv_exp (f64), ...
        t = types["f32"] if name.endswith("f") else types["f64"]
        arity = 2 if name.startswith("__nv_pow") else 1
        params, args, ret = [t] * arity, [ir.Constant(t, 0.5)] * arity, t
    elif ".sreg." in name:
        params, args, ret = [], [], i32
    elif "barrier" in name:
        params, args, ret = [i32], [ir.Constant(i32, 0)], ir.VoidType()
    else:
        t = types[name.rsplit(".", 1)[-1]]
        if "shfl" in name:
            params = [i32, t, i32, i32]
            args = [ir.Constant(i32, -1), ir.Constant(t, 1), ir.Constant(i32, 1),
                    ir.Constant(i32, 31)]
        elif name.startswith("llvm.abs"):
            params, args = [t, ir.IntType(1)], [ir.Constant(t, -3), ir.Constant(ir.IntType(1), 0)]
        else:
            arity = {"fma": 3, "maximum": 2, "minimum": 2, "copysign": 2}.get(name.split(".")[1], 1)
            params, args = [t] * arity, [ir.Constant(t, 1.5)] * arity
        ret = t
    fn = ir.Function(module, ir.FunctionType(ret, params), name)
    value = b.call(fn, args)
    if ret != ir.VoidType():
        b.store(value, b.gep(kernel.args[0], [ir.Constant(i64, index)], source_etype=ret))
b.ret_void()
version = target.ARCHES[sys.argv[1]]
print(target.emit_ptx(target.finish(str(module), sys.argv[1], version), sys.argv[1], version))
"""


@needs_toolkit
@pytest.mark.parametrize("arch", ["sm_90", "sm_80"])
def test_every_vetted_function_lowers_and_assembles(arch, tmp_path):
    """In a child process: were one of them not lowerable, LLVM would abort the process."""
    result = subprocess.run([sys.executable, "-c", VETTED_MODULE, arch], check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ".extern" not in result.stdout  # libdevice linked, nothing left to resolve
    ptxas(result.stdout, arch, tmp_path)


def test_libdevice_needed_only_for_math(monkeypatch):
    """Without libdevice, functions without math still build; with math, a clear error."""
    monkeypatch.setenv("TFLC_LIBDEVICE", "/nonexistent/libdevice.10.bc")
    ptx.build(row_sums())
    with pytest.raises(Error, match="TFLC_LIBDEVICE names '/nonexistent/libdevice.10.bc'"):
        ptx.build(dense())


# -- what emit prints ---------------------------------------------------------------------------

def test_emit_nvvm_is_the_generated_module():
    text = ptx.emit(dense(), "nvvm")
    assert 'target triple = "nvptx64-nvidia-cuda"' in text
    assert 'define ptx_kernel void @"dense_hidden"(ptr addrspace(1) noalias %"hidden"' in text
    assert "llvm.nvvm.read.ptx.sreg.tid.x" in text
    assert "llvm.nvvm.shfl.sync.down.f32" in text  # the row sum
    assert 'declare float @"__nv_tanhf"(float' in text
    assert '!{ i32 4, !"nvvm-reflect-ftz", i32 0 }' in text


@needs_toolkit
def test_emit_nvvm_opt_has_libdevice_linked_and_inlined():
    text = ptx.emit(dense(), "nvvm-opt")
    assert "__nv_tanhf" not in text  # internalised, inlined, removed
    assert "addrspace(3)" in text  # matmul tiles and reduction partials in shared memory


@needs_toolkit
def test_emit_ptx_starts_with_the_launch_plan():
    text = ptx.emit(dense(), "ptx")
    lines = text.splitlines()
    assert lines[0] == "// launches, in order:"
    assert lines[1].startswith("// dense_0: grid=(1 * ceil(N/16) * ceil(30/16)) "
                               "block=(16, 16, 1) buffers: 0 (slot 0), x (arg 0), W (arg 1)")
    assert any(line.startswith("// dense_total: grid=(N)/8 block=(256, 1, 1)") for line in lines)
    assert ".entry dense_hidden(" in text and "ld.global.nc" in text and "bar.sync" in text


def test_unexpanded_op_is_a_located_error():
    from tflc.ir import Loc
    x = Value(TensorType("f32", ("N",)), "x")
    b = Builder(loc=Loc("m.tfl", 4, 9))
    g = b.emit("grad", b.emit("sum", x), x)
    func = Function("f", ("N",), (x,), tuple(b.ops), (Output("g", g),))
    with pytest.raises(Error) as info:
        ptx.emit(func, "nvvm")
    assert info.value.loc == Loc("m.tfl", 4, 9) and "grad" in info.value.message


# -- the plan -----------------------------------------------------------------------------------

def test_grid_sizes():
    elementwise = Grid((("30*N", 1),), 256, (256, 1, 1))
    assert elementwise.blocks({"N": 1}) == 1
    assert elementwise.blocks({"N": 100}) == 12  # 3000 elements
    assert elementwise.blocks({"N": 0}) == 0  # nothing to do: the launch is skipped
    assert elementwise.blocks({"N": 10 ** 9}) == MAX_BLOCKS
    tiles = Grid(((2, 1), ("M", 16), (33, 16)), 1, (16, 16, 1))
    assert tiles.blocks({"M": 17}) == 2 * 2 * 3


@needs_toolkit
def test_plan_of_a_function():
    plan = ptx.build(dense()).plan
    refs = {launch.kernel: [(r.kind, r.index) for r in launch.buffers] for launch in plan.launches}
    assert refs["dense_hidden"] == [("out", 0), ("slot", 1)]  # written straight to its output
    assert refs["dense_total"] == [("out", 1), ("out", 0)]  # reads the output it follows
    assert plan.slots == ("120*N", "120*N")  # x @ W and + b: 30*N floats each


# -- the runtime, against a fake pycuda --------------------------------------------------------

def test_no_pycuda(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)  # `import pycuda` raises ImportError
    cuda.device.cache_clear()
    with pytest.raises(Error) as info:
        cuda.device()
    assert "needs pycuda" in info.value.message
    assert info.value.hint == "pip install 'tflc[cuda]'"


def test_no_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", types.ModuleType("pycuda"))
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)  # libcuda.so.1 cannot be loaded
    cuda.device.cache_clear()
    with pytest.raises(Error, match="pycuda could not load the NVIDIA driver"):
        cuda.device()


class FakeDriver(types.ModuleType):
    """pycuda.driver as far as runtime/cuda.py uses it, recording every call."""

    class Error(Exception):
        pass

    def __init__(self, gpus=1, init_error=None, driver_version=13000, capability=(9, 0)):
        super().__init__("pycuda.driver")
        self.calls = []
        self.gpus, self.init_error = gpus, init_error
        self.version, self.capability = driver_version, capability
        driver = self

        class Device:
            @staticmethod
            def count():
                return driver.gpus

            def __init__(self, ordinal):
                pass

            def retain_primary_context(self):
                return types.SimpleNamespace(push=lambda: None, pop=lambda: None)

            def compute_capability(self):
                return driver.capability

            def name(self):
                return "Fake GPU"

        self.Device = Device

    def init(self):
        if self.init_error:
            raise self.Error(self.init_error)

    def get_driver_version(self):
        return self.version

    def module_from_buffer(self, data):
        self.calls.append(("load", len(data)))
        driver = self

        class Kernel:
            def __init__(self, name):
                self.name = name

            def prepare(self, formats):
                self.formats = formats

            def prepared_call(self, grid, block, *args):
                assert len(args) == len(self.formats)
                driver.calls.append(("launch", self.name, grid, block, args))

        return types.SimpleNamespace(get_function=Kernel)

    def mem_alloc(self, nbytes):
        self.calls.append(("alloc", nbytes))
        return 1 << 32

    def memcpy_htod(self, address, array):
        self.calls.append(("htod", address, array.nbytes))

    def memcpy_dtoh(self, array, address):
        self.calls.append(("dtoh", address, array.nbytes))


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        driver = FakeDriver(**kwargs)
        package = types.ModuleType("pycuda")
        package.driver = driver
        monkeypatch.setitem(sys.modules, "pycuda", package)
        monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
        monkeypatch.setattr(cuda, "_modules", {})
        cuda.device.cache_clear()
        return driver
    yield install
    cuda.device.cache_clear()


def test_driver_does_not_start(fake):
    fake(init_error="cuInit failed: no CUDA-capable device is detected")
    with pytest.raises(Error, match="the CUDA driver did not start: cuInit failed"):
        cuda.device()


def test_no_gpu(fake):
    fake(gpus=0)
    with pytest.raises(Error, match="found no GPU"):
        cuda.device()


def test_the_gpu_and_its_driver(fake):
    fake(capability=(8, 6), driver_version=12040)
    gpu = cuda.device()
    assert (gpu.arch, gpu.driver_version) == ("sm_86", 12040)
    assert str(gpu) == "Fake GPU (compute capability 8.6, driver CUDA 12.4)"


def test_compile_for_an_old_driver(fake):
    fake(capability=(9, 0), driver_version=11040)
    with pytest.raises(Error, match="driver 11.4 supports PTX ≤ 7.4"):
        cuda.compile(dense())


@needs_toolkit
def test_a_run_copies_in_launches_in_order_and_copies_out(fake):
    driver = fake()
    compiled = cuda.compile(dense())
    assert compiled.program.ptx_version == (9, 0) and compiled.program.arch == "sm_90"
    n = 5
    args = [np.ones((n, 20), np.float32), np.ones((20, 30), np.float32), np.zeros(30, np.float32)]
    driver.calls.clear()
    hidden, total, best = compiled({"N": n}, args)
    assert (hidden.shape, total.shape, best.shape) == ((5, 30), (5,), (5,))
    assert best.dtype == np.int64
    # arena: x (400 → 512 bytes), W (2400 → 2560), b (120 → 256), outputs 600 → 768, 20 → 256,
    # 40 → 256, two slots of 600 → 768 each
    assert driver.calls[0] == ("alloc", 512 + 2560 + 256 + 768 + 256 + 256 + 768 + 768)
    base = 1 << 32
    assert driver.calls[1:4] == [("htod", base, 400), ("htod", base + 512, 2400),
                                 ("htod", base + 3072, 120)]
    launches = [call for call in driver.calls if call[0] == "launch"]
    assert [call[1] for call in launches] == [launch.kernel for launch in
                                              compiled.program.plan.launches]
    matmul = launches[0]  # 5 x 30 is two tiles of 16 x 16; the result goes to slot 0
    assert matmul[2:] == ((2, 1, 1), (16, 16, 1), (base + 4608, base, base + 512, n))
    assert driver.calls[-3:] == [("dtoh", base + 3328, 600), ("dtoh", base + 4096, 20),
                                 ("dtoh", base + 4352, 40)]
    # a second run of the same size reuses the arena; the module was loaded once
    compiled({"N": n}, args)
    assert [call[0] for call in driver.calls].count("alloc") == 1
    cuda.compile(dense())
    assert [call[0] for call in driver.calls].count("load") == 0  # cached per arch and driver


def test_module_cache_is_per_driver(fake):
    driver = fake()
    gpu = cuda.device()
    cuda.load("// ptx", gpu)
    cuda.load("// ptx", gpu)
    newer = cuda.Device(gpu.name, gpu.arch, gpu.capability, gpu.driver_version + 10)
    cuda.load("// ptx", newer)
    assert [call[0] for call in driver.calls] == ["load", "load"]


def test_cuda_errors_while_running_are_tflc_errors(fake):
    driver = fake()
    gpu = cuda.device()

    def failing(*args):
        raise driver.Error("cuMemcpyHtoD failed: an illegal memory access was encountered")

    driver.memcpy_htod = failing
    program = types.SimpleNamespace(name="f", ptx="// ptx", plan=ptx.plan.Plan(
        dims=(), args=(((2,), "f32"),), outputs=(), slots=(), launches=()))
    compiled = cuda.Compiled(program, gpu)
    with pytest.raises(Error, match="CUDA error while running 'f' on Fake GPU .*illegal"):
        compiled({}, [np.zeros(2, np.float32)])

