"""The `tflc` command: check, run, dump and train `.tfl` models.

Exit status: 0 when it worked, 1 for a mistake in what was given (the source, a feed, a name, a
dataset; printed as a located error on stderr), 2 for a malformed command line, 130 when
interrupted (Ctrl-C; `train` saves a checkpoint first). Any other exception is a bug in tflc and
shows its traceback.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

import numpy as np

from .ir.errors import Error
from .ir.printer import print_function, print_module
from .passes.manager import run_pipeline
from .passes.pipeline import DEFAULT_PIPELINE, select_entry
from .runtime.backends import BACKENDS, DEFAULT_BACKEND, backend


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's own exit: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 0
    try:
        return args.command(args)
    except Error as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`tflc dump ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tflc", description="A compiler for tensor graphs.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    check = commands.add_parser("check", help="parse and type-check a .tfl file",
                                description="Parse and type-check FILE; prints ok.")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(command=cmd_check)

    run = commands.add_parser(
        "run", help="run a model once and print what it fetches",
        description="Load FILE, run the --fetch names in order and print them. Consecutive "
                    "value names are fetched together; a step name runs that step, so the "
                    "names after it see the updated params and state.")
    run.add_argument("file", metavar="FILE")
    run.add_argument("--fetch", action="append", required=True, metavar="NAME",
                     help="a defined name, a decl or a step (repeatable)")
    add_feed_options(run)
    run.set_defaults(command=cmd_run)

    dump = commands.add_parser(
        "dump", help="print the IR (or generated code) of a model or of one entry",
        description="Print FILE's module as parsed, or, with --fetch/--step, the entry "
                    "compiled for those names.")
    add_entry_options(dump)
    shown = dump.add_mutually_exclusive_group()
    shown.add_argument("--after", metavar="PASS", help="print the IR after this pass only")
    shown.add_argument("--print-after-all", action="store_true",
                       help="print the IR before the passes and after each pass that changed it")
    dump.add_argument("--timings", action="store_true", help="time each pass (on stderr)")
    dump.add_argument("--memory", type=sizes_argument, metavar="N=100[,M=8]",
                      help="print the entry's buffer plan and peak bytes for these dim sizes "
                           "(on stderr)")
    dump.add_argument("--verify", action="store_true", help="verify the IR after each pass")
    dump.add_argument("--emit", choices=EMITTERS, default="ir",
                      help="what to print for the entry: its IR (default), the numpy backend's "
                           "Python, the llvm backend's IR (before/after O3) or assembly, or the "
                           "cuda backend's NVPTX IR or PTX (no GPU needed)")
    dump.add_argument("--opt", action="store_true",
                      help="with --emit llvm or nvvm: that IR after LLVM's O3 (--emit llvm-opt)")
    dump.add_argument("--arch", default="sm_90", metavar="sm_XY",
                      help="the GPU architecture for --emit ptx/nvvm (default sm_90)")
    dump.set_defaults(command=cmd_dump)

    graph = commands.add_parser(
        "graph", help="draw a model's graph (or one entry's) with Graphviz",
        description="Draw FILE's graph as parsed, or, with --fetch/--step, the entry compiled "
                    "for those names (after the whole pipeline, or after --after PASS): ops "
                    "labelled with their types, scopes as clusters, fused kernels as boxes. "
                    ".dot needs nothing; .svg/.png/.pdf need Graphviz's `dot` program and the "
                    "`graphviz` package (pip install 'tflc[graph]').")
    add_entry_options(graph)
    graph.add_argument("--after", metavar="PASS", help="draw the entry after this pass")
    graph.add_argument("-o", "--output", required=True, metavar="OUT.svg|png|pdf|dot")
    graph.set_defaults(command=cmd_graph)

    cache = commands.add_parser(
        "cache", help="show or clear the compile cache",
        description="tflc keeps parsed models and the llvm backend's compiled code on disk "
                    "(TFLC_CACHE_DIR, else ~/.cache/tflc): `info` shows where and how much, "
                    "`clear` empties it.")
    cache.add_argument("action", choices=("info", "clear"))
    cache.set_defaults(command=cmd_cache)

    train = commands.add_parser(
        "train", help="train a model on MNIST or an .npz dataset",
        description="Run STEP over shuffled batches of the data, bound to the model's inputs by "
                    "type (see docs/training.md), with a progress bar; print the validation "
                    "metric after each epoch and the test metric at the end. Every step's loss "
                    "and every evaluation go to a JSON-lines log. Ctrl-C saves a checkpoint.")
    train.add_argument("file", metavar="FILE")
    train.add_argument("--step", metavar="STEP", help="the step to run (default: the model's "
                                                      "only step)")
    train.add_argument("--data", required=True, metavar="mnist|FILE.npz",
                       help="mnist (shipped with tflc) or an .npz file with train/images, "
                            "train/labels and optionally validation/... and test/...")
    length = train.add_mutually_exclusive_group(required=True)
    length.add_argument("--epochs", type=positive_int, metavar="E",
                        help="passes over the training data")
    length.add_argument("--steps", type=positive_int, metavar="S", help="steps (batches)")
    train.add_argument("--batch", type=positive_int, default=100, metavar="B",
                       help="examples per step (default 100)")
    train.add_argument("--loss", metavar="NAME",
                       help="the value shown and logged as the loss (default: the one the "
                            "step minimises)")
    train.add_argument("--eval", metavar="METRIC",
                       help="a scalar averaged over the validation and test data (default: "
                            "accuracy, if the model defines it)")
    train.add_argument("--eval-feed", action="append", default=[], type=feed_argument,
                       metavar="NAME=VALUE", help="a --feed for evaluation only "
                                                  "(e.g. keep_prob=1.0)")
    train.add_argument("--save", metavar="CKPT.npz", help="write a checkpoint at the end")
    train.add_argument("--restore", metavar="CKPT.npz", help="start from a checkpoint")
    train.add_argument("--log", metavar="FILE.jsonl",
                       help="the metrics log (default runs/MODEL-DATE-TIME.jsonl)")
    train.add_argument("--plot", metavar="FILE.png",
                       help="draw the loss and metric curves (needs matplotlib)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_feed_options(train)
    train.set_defaults(command=cmd_train)
    return parser


def add_entry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--fetch", action="append", default=[], metavar="NAME",
                        help="a name the entry fetches (repeatable); a step name selects the step")
    parser.add_argument("--step", metavar="STEP", help="the step the entry runs")


def add_feed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", default=[], type=feed_argument,
                        metavar="NAME=VALUE",
                        help="a value for an input: a literal ([[1,2],[3,4]], 0.5) or @FILE.npy")
    parser.add_argument("--seed", type=int, default=0, help="the model seed (default 0)")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="the code generator (default numpy)")
    parser.add_argument("--debug-nans", action="store_true", default=None,
                        help="stop at the first op that makes a NaN or an infinity (runs on "
                             "the numpy backend; also TFLC_DEBUG_NANS=1)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def sizes_argument(text: str) -> dict[str, int]:
    sizes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if not name.strip() or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected NAME=SIZE[,NAME=SIZE], got '{text}'")
        sizes[name.strip()] = int(value)
    return sizes


def feed_argument(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def feed_value(name: str, text: str, option: str = "--feed"):
    """A --feed value: a Python literal (parsed safely, never evaluated) or @FILE.npy."""
    if text.startswith("@"):
        path = text[1:]
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise Error(f"{option} {name}: cannot read {path} as a .npy array: "
                        f"{getattr(e, 'strerror', None) or e}") from None
        if not isinstance(value, np.ndarray):
            value.close()
            raise Error(f"{option} {name}: {path} holds several arrays; give one .npy array")
        return value
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        example = f"{option} '{name}=[[1, 2], [3, 4]]' or {option} {name}=@FILE.npy"
        raise Error(f"{option} {name}={text}: not a number or a list of numbers",
                    hint=f"write e.g. {example}") from None


def feeds_of(pairs: list[tuple[str, str]], option: str = "--feed") -> dict:
    feeds = {}
    for name, text in pairs:
        if name in feeds:
            raise Error(f"{option} {name} is given twice")
        feeds[name] = feed_value(name, text, option)
    return feeds


def parse(path: str):
    from .frontend import parse_file

    return parse_file(path)


# -- commands --------------------------------------------------------------------------------

def cmd_check(args) -> int:
    parse(args.file)
    print("ok")
    return 0


def cmd_run(args) -> int:
    from .runtime import Model

    model = Model(parse(args.file), backend=args.backend, seed=args.seed,
                  debug_nans=args.debug_nans)
    feeds = feeds_of(args.feed)
    for group in _runs(args.fetch, model.steps):
        if group[0] in model.steps:
            model.run(group[0], feeds)
            updated = [out.label for out in model.module.function("model").outputs
                       if out.step == group[0]]
            print(f"ran {group[0]}: updated {', '.join(updated)}")
        else:
            for name, value in zip(group, model.run(group, feeds)):
                print(format_value(name, value))
    return 0


def _runs(names: list[str], steps) -> list[list[str]]:
    """Consecutive value names together; each step on its own."""
    groups: list[list[str]] = []
    for name in names:
        if name in steps or not groups or groups[-1][0] in steps:
            groups.append([name])
        else:
            groups[-1].append(name)
    return groups


def format_value(name: str, value: np.ndarray) -> str:
    prefix = f"{name} = "
    if value.ndim == 0:
        return prefix + str(value[()])
    return prefix + np.array2string(value, prefix=prefix)


def entry_of(args, module):
    """The entry that --fetch/--step name, or None when they name nothing."""
    model = module.function("model")
    steps = [name for name in args.fetch if name in model.steps]
    if args.step:
        steps.insert(0, args.step)
    if len(steps) > 1:
        raise Error(f"an entry runs one step, got {', '.join(steps)}")
    fetches = [name for name in args.fetch if name not in steps]
    if not fetches and not steps:
        return None
    return select_entry(module, fetches, steps[0] if steps else None)


def cmd_dump(args) -> int:
    if args.opt:
        if args.emit not in ("llvm", "nvvm"):
            raise Error("--opt goes with --emit llvm or --emit nvvm (the IR before and after O3)")
        args.emit += "-opt"
    module = parse(args.file)
    entry = entry_of(args, module)
    if entry is None:
        if args.after or args.print_after_all or args.timings or args.memory or args.emit != "ir":
            raise Error("--after, --print-after-all, --timings, --memory and --emit work on an "
                        "entry: name it with --fetch NAME or --step STEP")
        print(print_module(module), end="")
        return 0
    print_after = "all" if args.print_after_all else args.after
    if print_after is not None and args.emit != "ir":
        raise Error("--emit prints the final entry; --after and --print-after-all print IR")
    result = run_pipeline(entry, DEFAULT_PIPELINE, verify=args.verify, print_after=print_after)
    if print_after is not None:
        print(result.dumps(), end="")
    else:
        emitter = EMITTERS[args.emit]
        text = emitter(result.function, args.arch) if args.emit in GPU_EMITS \
            else emitter(result.function)
        print(text, end="" if text.endswith("\n") else "\n")
    if args.timings:
        print(result.timing_table(), end="", file=sys.stderr)
    if args.memory:
        print(memory_report_for(result.function, args.memory), end="", file=sys.stderr)
    return 0


def memory_report_for(func, sizes: dict[str, int]) -> str:
    from .passes.plan_memory import memory_report

    missing = [dim for dim in func.dims if dim not in sizes]
    if missing:
        raise Error(f"--memory needs a size for {', '.join(missing)} "
                    f"(e.g. --memory {','.join(f'{d}=100' for d in func.dims)})")
    return memory_report(func, sizes)


def cmd_graph(args) -> int:
    from .codegen.dot import draw

    module = parse(args.file)
    entry = entry_of(args, module)
    if entry is None:
        if args.after:
            raise Error("--after works on an entry: name it with --fetch NAME or --step STEP")
        func = module.function("model")
    else:
        passes = list(DEFAULT_PIPELINE)
        if args.after is not None and args.after in passes:
            passes = passes[:passes.index(args.after) + 1]
        func = run_pipeline(entry, passes, print_after=args.after).function
    draw(func, args.output, module.decls)
    print(f"wrote {args.output}")
    return 0


def cmd_cache(args) -> int:
    from .ir import diskcache

    if args.action == "clear":
        print(f"removed {diskcache.clear()} entries from {diskcache.directory()}")
    else:
        info = diskcache.info()
        kinds = ", ".join(f"{count} {kind}" for kind, count in info["kinds"].items())
        print(f"{info['directory']}: {info['entries']} entries{f' ({kinds})' if kinds else ''}, "
              f"{info['bytes']:,} bytes")
    return 0


def cmd_train(args) -> int:
    from .runtime import Model
    from .runtime.datasets import load_dataset
    from .runtime.training import TrainConfig, train

    model = Model(parse(args.file), backend=args.backend, seed=args.seed,
                  debug_nans=args.debug_nans)
    config = TrainConfig(
        step=args.step or only_step(model), loss=args.loss, epochs=args.epochs or 1,
        steps=args.steps, batch=args.batch, feeds=feeds_of(args.feed),
        eval_feeds=feeds_of(args.eval_feed, "--eval-feed"),
        metric=args.eval or default_metric(model),
        save=args.save, log=args.log, plot=args.plot, seed=args.seed,
        progress=not args.no_progress)
    if args.restore:
        model.restore(args.restore)
    train(model, load_dataset(args.data), config)
    return 0


def only_step(model) -> str:
    """The model's step, when it has exactly one."""
    steps, name = model.steps, model.module.name
    if len(steps) == 1:
        return steps[0]
    if not steps:
        raise Error(f"model {name} has no step to train",
                    hint="declare one, e.g. `train step = sgd(loss, lr=0.1)`")
    raise Error(f"model {name} has {len(steps)} steps ({', '.join(steps)}): name the one to "
                "train with --step")


def default_metric(model) -> str | None:
    """`accuracy` when the model defines it."""
    return "accuracy" if model.module.function("model").output("accuracy") else None


def _emitted_by(name: str, *form: str):
    return lambda func, *target: backend(name).emit(func, *form, *target)


# --emit NAME → what prints a compiled entry; a backend adds its own forms here.
EMITTERS = {"ir": print_function, "python": _emitted_by("numpy"),
            "llvm": _emitted_by("llvm", "llvm"), "llvm-opt": _emitted_by("llvm", "llvm-opt"),
            "asm": _emitted_by("llvm", "asm"),
            "nvvm": _emitted_by("cuda", "nvvm"), "nvvm-opt": _emitted_by("cuda", "nvvm-opt"),
            "ptx": _emitted_by("cuda", "ptx")}
GPU_EMITS = ("nvvm", "nvvm-opt", "ptx")  # these take --arch
