"""The `tflc` command: check, run and dump `.tfl` models.

Exit status: 0 when it worked, 1 for a mistake in what was given (the source, a feed, a name;
printed as a located error on stderr), 2 for a malformed command line. Any other exception is a
bug in tflc and shows its traceback.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

import numpy as np

from . import codegen
from .ir.errors import Error
from .ir.printer import print_function, print_module
from .passes.manager import run_pipeline
from .passes.pipeline import default_pipeline, select_entry


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
    dump.add_argument("file", metavar="FILE")
    dump.add_argument("--fetch", action="append", default=[], metavar="NAME",
                      help="a name the entry fetches (repeatable); a step name selects the step")
    dump.add_argument("--step", metavar="STEP", help="the step the entry runs")
    shown = dump.add_mutually_exclusive_group()
    shown.add_argument("--after", metavar="PASS", help="print the IR after this pass only")
    shown.add_argument("--print-after-all", action="store_true",
                       help="print the IR before the passes and after each pass that changed it")
    dump.add_argument("--timings", action="store_true", help="time each pass (on stderr)")
    dump.add_argument("--verify", action="store_true", help="verify the IR after each pass")
    dump.add_argument("--emit", choices=EMITTERS, default="ir",
                      help="what to print for the entry: its IR (default), the numpy backend's "
                           "Python, or the llvm backend's IR (before/after O3) or assembly")
    dump.set_defaults(command=cmd_dump)
    return parser


def add_feed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", default=[], type=feed_argument,
                        metavar="NAME=VALUE",
                        help="a value for an input: a literal ([[1,2],[3,4]], 0.5) or @FILE.npy")
    parser.add_argument("--seed", type=int, default=0, help="the model seed (default 0)")
    parser.add_argument("--backend", choices=codegen.BACKENDS, default="numpy",
                        help="the code generator (default numpy)")


def feed_argument(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def feed_value(name: str, text: str):
    """A --feed value: a Python literal (parsed safely, never evaluated) or @FILE.npy."""
    if text.startswith("@"):
        path = text[1:]
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise Error(f"--feed {name}: cannot read {path} as a .npy array: "
                        f"{getattr(e, 'strerror', None) or e}") from None
        if not isinstance(value, np.ndarray):
            value.close()
            raise Error(f"--feed {name}: {path} holds several arrays; give one .npy array")
        return value
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        example = f"--feed '{name}=[[1, 2], [3, 4]]' or --feed {name}=@FILE.npy"
        raise Error(f"--feed {name}={text}: not a number or a list of numbers",
                    hint=f"write e.g. {example}") from None


def feeds_of(args) -> dict:
    feeds = {}
    for name, text in args.feed:
        if name in feeds:
            raise Error(f"--feed {name} is given twice")
        feeds[name] = feed_value(name, text)
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

    model = Model(parse(args.file), backend=args.backend, seed=args.seed)
    feeds = feeds_of(args)
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


def cmd_dump(args) -> int:
    module = parse(args.file)
    model = module.function("model")
    steps = [name for name in args.fetch if name in model.steps]
    if args.step:
        steps.insert(0, args.step)
    if len(steps) > 1:
        raise Error(f"an entry runs one step, got {', '.join(steps)}")
    fetches = [name for name in args.fetch if name not in steps]
    if not fetches and not steps:
        if args.after or args.print_after_all or args.timings or args.emit != "ir":
            raise Error("--after, --print-after-all, --timings and --emit work on an entry: "
                        "name it with --fetch NAME or --step STEP")
        print(print_module(module), end="")
        return 0
    print_after = "all" if args.print_after_all else args.after
    if print_after is not None and args.emit != "ir":
        raise Error("--emit prints the final entry; --after and --print-after-all print IR")
    entry = select_entry(module, fetches, steps[0] if steps else None)
    result = run_pipeline(entry, default_pipeline(), verify=args.verify, print_after=print_after)
    if print_after is not None:
        print(result.dumps(), end="")
    else:
        text = EMITTERS[args.emit](result.function)
        print(text, end="" if text.endswith("\n") else "\n")
    if args.timings:
        print(result.timing_table(), end="", file=sys.stderr)
    return 0


def _emitted_by(backend: str, *form: str):
    return lambda func: codegen.backend(backend).emit(func, *form)


# --emit NAME → what prints a compiled entry; a backend adds its own forms here.
EMITTERS = {"ir": print_function, "python": _emitted_by("numpy"),
            "llvm": _emitted_by("llvm", "llvm"), "llvm-opt": _emitted_by("llvm", "llvm-opt"),
            "asm": _emitted_by("llvm", "asm")}
