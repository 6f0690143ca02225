"""Runs the benchmarks and prints one markdown report: the machine, versions, thread settings,
and a table per workload with tflc side by side with NumPy, PyTorch and JAX.

    python benchmarks/run.py                         # everything, on all the cores
    python benchmarks/run.py --workloads train,matmul --impls tflc-llvm,numpy,torch
    python benchmarks/run.py --smoke                 # tiny sizes, one call each: do they run?

Each (workload, implementation, thread count) runs in a process of its own: runtimes that spin
between calls (OpenBLAS, libgomp, PyTorch's OpenMP) would otherwise steal each other's cores.
The thread count is set for every runtime alike: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS and TFLC_NUM_THREADS, and the process is bound to that many cores (which also
sizes XLA's thread pool). A peer that is not installed is skipped, with a note.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys

import benchlib

WORKLOADS = ["train", "inference", "elementwise", "matmul", "compile_time"]
PEER_PACKAGES = {"torch": "torch", "torch.compile": "torch", "jax.jit": "jax"}
THREAD_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TFLC_NUM_THREADS"]
CPUS = sorted(os.sched_getaffinity(0))


def thread_environment(threads: int) -> dict[str, str]:
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def bind(threads: int):
    """The child's pre-exec hook: bind it to the first `threads` of our cores."""
    return lambda: os.sched_setaffinity(0, CPUS[:threads])


def run_child(argv: list[str], threads: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], check=False, capture_output=True, text=True,
                          env=thread_environment(threads), preexec_fn=bind(threads),
                          cwd=benchlib.HERE)


def run_workload(name: str, workload, impls: list[str], args) -> tuple[list[dict], list[str]]:
    records, notes = [], []
    for impl in workload.IMPLS:
        if impl not in impls:
            continue
        package = PEER_PACKAGES.get(impl)
        if package and importlib.util.find_spec(package) is None:
            notes.append(f"{impl}: skipped, {package} is not installed (pip install "
                         "'tflc[bench]')")
            continue
        for threads in workload.THREADS or [args.threads]:
            argv = [f"{name}.py", "--impl", impl]
            argv += ["--smoke"] if args.smoke else []
            argv += ["--repeats", str(args.repeats)] if args.repeats is not None else []
            argv += ["--warmup", str(args.warmup)] if args.warmup is not None else []
            print(f"[{name}] {impl}, {threads} thread(s)", file=sys.stderr, flush=True)
            done = run_child(argv, threads)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                notes.append(f"{impl} ({threads} threads): failed: {last}")
                continue
            records += json.loads(done.stdout)
    return records, notes


# -- the report's header -----------------------------------------------------------------------

def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    def git(*argv):
        return subprocess.run(["git", *argv], check=False, capture_output=True, text=True,
                              cwd=benchlib.HERE).stdout.strip()
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "..") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


BLAS_PROBE = """
import json, numpy
try:
    from threadpoolctl import threadpool_info
except ImportError:
    print(json.dumps(None))
else:
    print(json.dumps([{k: p.get(k) for k in ("internal_api", "version", "architecture",
                       "num_threads", "threading_layer")} for p in threadpool_info()
                      if p.get("user_api") == "blas"]))
"""


def blas(threads: int) -> str:
    """What NumPy's BLAS runs with under the children's thread settings (threadpoolctl)."""
    done = run_child(["-c", BLAS_PROBE], threads)
    pools = json.loads(done.stdout) if done.returncode == 0 else None
    if not pools:
        return "unknown (pip install threadpoolctl to see it)"
    return "; ".join(f"{p['internal_api']} {p['version']}, kernels for {p['architecture']}, "
                     f"{p['num_threads']} thread(s) ({p['threading_layer']})" for p in pools)


def llvm_version() -> str:
    try:
        from llvmlite import binding
    except ImportError:
        return "not installed"
    return ".".join(map(str, binding.llvm_version_info))


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def header(args, thread_counts: list[int]) -> str:
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    lines = [
        f"- machine: {cpu_model()}, {len(CPUS)} cores usable ({os.cpu_count()} online)",
        (f"- Python {platform.python_version()}, NumPy {version('numpy')}, llvmlite "
         f"{version('llvmlite')} (LLVM {llvm_version()}), PyTorch {version('torch')}, "
         f"JAX {version('jax')} (jaxlib {version('jaxlib')}), tflc commit {git_commit()}"),
        (f"- threads: {args.threads} unless a table says otherwise; each child gets "
         f"{', '.join(THREAD_VARIABLES)} = its count and is bound to that many cores"),
        (f"- OPENBLAS_* in the environment: "
         f"{', '.join(f'{k}={v}' for k, v in sorted(openblas.items())) or 'none'}"),
        *(f"- NumPy's BLAS at {count} thread(s): {blas(count)}" for count in thread_counts),
        f"- load average (1, 5, 15 min) at the start: {load_average()}",
    ]
    if args.smoke:
        lines.append("- SMOKE RUN: tiny sizes, one call each; the times mean nothing")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    parser.add_argument("--impls", help="comma-separated implementations (default: all)")
    parser.add_argument("--threads", type=int, default=len(CPUS),
                        help="threads for every workload but matmul's own 1 and 2")
    parser.add_argument("--repeats", type=int, help="timed calls (default: each workload's)")
    parser.add_argument("--warmup", type=int, help="untimed calls first (default: each's)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one call each")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    names = args.workloads.split(",")
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]} (workloads: {', '.join(WORKLOADS)})")
    if not 1 <= args.threads <= len(CPUS):
        parser.error(f"--threads must be between 1 and {len(CPUS)}")
    workloads = {name: importlib.import_module(name) for name in names}
    impls = args.impls.split(",") if args.impls else [i for w in workloads.values()
                                                       for i in w.IMPLS]
    counts = sorted({c for w in workloads.values() for c in w.THREADS or [args.threads]})
    sections, everything = [header(args, counts)], []
    for name, workload in workloads.items():
        records, notes = run_workload(name, workload, impls, args)
        everything += records
        section = [f"## {name}"]
        if records:
            section.append(workload.table(records))
        section += [f"- {note}" for note in notes]
        sections.append("\n\n".join(section))
    sections.append(f"Load average at the end: {load_average()}")
    print("\n\n".join(sections))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
