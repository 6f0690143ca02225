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
import resource
import statistics
import subprocess
import sys
import time

import benchlib

WORKLOADS = ["train", "inference", "elementwise", "matmul", "compile_time"]
PEER_PACKAGES = {"torch": "torch", "torch.compile": "torch", "jax.jit": "jax"}
THREAD_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TFLC_NUM_THREADS"]
CPUS = sorted(os.sched_getaffinity(0))
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
QUIET_CORES = 0.25  # other processes' CPU use below which the machine counts as quiet
RERUNS = 2


def thread_environment(threads: int) -> dict[str, str]:
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def bind(threads: int):
    """The child's pre-exec hook: bind it to the first `threads` of our cores."""
    return lambda: os.sched_setaffinity(0, CPUS[:threads])


def run_child(argv: list[str], threads: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], check=False, capture_output=True, text=True,
                          env=thread_environment(threads), preexec_fn=bind(threads),
                          cwd=benchlib.HERE)


# -- other processes ---------------------------------------------------------------------------

def busy_seconds() -> float:
    """CPU seconds the machine has been busy since boot, all processes (/proc/stat); steal
    time too: another virtual machine on our cores slows us as much."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]  # user nice system idle ... steal
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS_PER_SECOND  # less idle and iowait


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_others_load(action):
    """(action(), how many cores other processes kept busy meanwhile, on average): the
    machine's busy time less our children's CPU time (this process only waits)."""
    busy, ours, start = busy_seconds(), children_seconds(), time.monotonic()
    result = action()
    others = (busy_seconds() - busy) - (children_seconds() - ours)
    return result, max(0.0, others / (time.monotonic() - start))


def wait_quiet(limit: float) -> None:
    """Waits until other processes use less than QUIET_CORES for a second, at most `limit` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if with_others_load(lambda: time.sleep(1))[1] < QUIET_CORES:
            return


def run_quietly(argv: list[str], threads: int, args) -> tuple[subprocess.CompletedProcess, float]:
    """Runs a child, with --quiet: after waiting for quiet, and again (at most RERUNS times)
    while other processes used more than QUIET_CORES during it; keeps the quietest run."""
    runs = []
    for _ in range(1 + (RERUNS if args.quiet else 0)):
        if args.quiet:
            wait_quiet(args.quiet)
        runs.append(with_others_load(lambda: run_child(argv, threads)))
        if runs[-1][0].returncode != 0 or runs[-1][1] < QUIET_CORES:
            break
    return min(runs, key=lambda run: run[1])


def run_workload(name: str, workload, impls: list[str], args) -> tuple[list[dict], list[str]]:
    """Runs each (implementation, thread count) of a workload in a child, round after round
    (--rounds: interleaved, so that a slow spell of the machine does not fall on one of them),
    and merges each measurement's rounds."""
    notes, runs = [], []
    for impl in workload.IMPLS:
        package = PEER_PACKAGES.get(impl)
        if impl not in impls:
            continue
        if package and importlib.util.find_spec(package) is None:
            notes.append(f"{impl}: skipped, {package} is not installed (pip install "
                         "'tflc[bench]')")
            continue
        runs += [(impl, threads) for threads in workload.THREADS or [args.threads]]
    results: dict[tuple, list[list[dict]]] = {run: [] for run in runs}
    for number in range(1, args.rounds + 1):
        for impl, threads in runs:
            print(f"[{name}] {impl}, {threads} thread(s), round {number} of {args.rounds}",
                  file=sys.stderr, flush=True)
            done, load = run_quietly(child_argv(name, impl, args), threads, args)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                notes.append(f"{impl} ({threads} threads), round {number}: failed: {last}")
                continue
            results[impl, threads].append(
                [{**record, "others_load": load} for record in json.loads(done.stdout)])
    records = [merge(list(same)) for rounds in results.values() if rounds
               for same in zip(*rounds)]
    others = [f"{impl}{'' if workload.THREADS is None else f' ({threads} thr)'} "
              f"{max(r[0]['others_load'] for r in rounds):.2f}"
              for (impl, threads), rounds in results.items() if rounds]
    if others:
        notes.append("other processes' CPU use while each ran (cores, on average; the most of "
                     "its rounds): " + ", ".join(others))
    return records, notes


def child_argv(name: str, impl: str, args) -> list[str]:
    argv = [f"{name}.py", "--impl", impl]
    argv += ["--smoke"] if args.smoke else []
    argv += ["--repeats", str(args.repeats)] if args.repeats is not None else []
    argv += ["--warmup", str(args.warmup)] if args.warmup is not None else []
    return argv


def merge(rounds: list[dict]) -> dict:
    """One measurement from its rounds: times are the median of the rounds' (medians), the
    minimum the least, a check passes if it passed every time, the disturbance the worst."""
    merged = dict(rounds[0])
    for key, value in rounds[0].items():
        values = [r[key] for r in rounds]
        if key == "min_seconds":
            merged[key] = min(values)
        elif key in ("others_load", "deviation"):
            merged[key] = max(values)
        elif isinstance(value, bool):
            merged[key] = all(values)
        elif isinstance(value, float):
            merged[key] = statistics.median(values)
    merged["rounds"] = len(rounds)
    return merged


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
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "..")
    dirty = " (with uncommitted changes)" if changed else ""
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
        f"- rounds: {args.rounds} (a time is the median of the rounds' medians)",
        (f"- threads: {args.threads} unless a table says otherwise; each child gets "
         f"{', '.join(THREAD_VARIABLES)} = its count and is bound to that many cores"),
        (f"- OPENBLAS_* in the environment: "
         f"{', '.join(f'{k}={v}' for k, v in sorted(openblas.items())) or 'none'}"),
        *(f"- NumPy's BLAS at {count} thread(s): {blas(count)}" for count in thread_counts),
        f"- load average (1, 5, 15 min) at the start: {load_average()}",
        (f"- waited up to {args.quiet:g} s before each run for other processes to use less "
         f"than {QUIET_CORES} cores; reran a run they disturbed (at most {RERUNS} times), "
         "kept the quietest" if args.quiet else
         "- did not wait for other processes (no --quiet)"),
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
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every measurement this many times, interleaved, and report "
                        "the median")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one call each")
    parser.add_argument("--quiet", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for other processes to go "
                        f"(below {QUIET_CORES} cores), and rerun a run they disturbed "
                        f"(at most {RERUNS} times), keeping the quietest")
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
