"""A loaded model: its params and state, and `run` for fetches and steps.

    m = tflc.load("examples/mnist_mlp.tfl", seed=0)
    loss, acc = m.run(["cross_entropy", "accuracy"], x=xb, y=yb)
    m.run("step", x=xb, y=yb)                           # updates params; returns None
    loss = m.run("step", fetch="cross_entropy", x=xb, y=yb)
    loss, = m.run(["step", "cross_entropy"], x=xb, y=yb)

Each distinct entry (the fetched names, and the step) is compiled the first time it runs and
cached. Every feed is checked before anything runs (see feeds.py). A step's updates are computed
from the values before the step and applied together.

With `debug_nans=True` (or the environment variable `TFLC_DEBUG_NANS=1` when `debug_nans` is not
given) every op's result, forward and gradient, is checked as it is made, and the first NaN or
infinity stops the run with a `tflc.Error` at the op's line. Only the numpy backend's code checks:
under debug_nans every backend falls back to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..ir.core import Function, Module
from ..ir.errors import Error
from ..ir.printer import print_function, print_module
from ..ir.types import TensorType, dtype_of_numpy
from ..passes.manager import run_pipeline
from ..passes.pipeline import DEFAULT_PIPELINE, compile_entry, select_entry
from . import checkpoint
from .backends import DEFAULT_BACKEND, compiler_for, debug_nans_from_environment
from .feeds import check_feeds, check_names
from .init import COUNTER, check_seed, counter_value, initial_value
from .lean import DECLINED, lean_run, quick_check


@dataclass(frozen=True)
class Entry:
    """One compiled entry point: the function, its code, and how to fill its arguments."""

    fetches: tuple[str, ...]
    step: str | None
    function: Function
    compiled: object  # the backend's Compiled: compiled(sizes, args) -> list of arrays
    arguments: tuple[str, ...]  # the decl each argument of `function` takes, in order
    inputs: tuple[str, ...]  # those of them that are fed (`input` decls), known at compile time
    # the usual feeds' dims' sizes, or None (lean.py); no quick check where the backend's
    # code is called inline: its runs' lean paths check the same feeds
    quick: Callable[[dict], dict | None] | None
    updates: tuple[str, ...]  # what a step's outputs update, after the fetches
    counter: bool  # whether the run counter is an argument (the run then counts)

    def purpose(self) -> str:
        parts = [f"step '{self.step}'"] if self.step else []
        parts += [f"'{name}'" for name in self.fetches]
        return ("running " if self.step else "fetching ") + " and ".join(parts)


class Model:
    """A module with its params and state, compiled entry by entry for one backend."""

    def __init__(self, module: Module, *, backend: str = DEFAULT_BACKEND, seed: int = 0,
                 debug_nans: bool | None = None):
        self.module = module
        self.seed = check_seed(seed)
        self.backend = backend
        self.debug_nans = debug_nans_from_environment() if debug_nans is None else debug_nans
        self._backend, self._options = compiler_for(backend, self.debug_nans)
        self._values = {d.name: initial_value(d, self.seed) for d in module.decls
                        if d.kind in ("param", "state")}
        self._counter = 0
        self._entries: dict[tuple, Entry] = {}
        # run's (what, fetch) → the entry, what run returns, and its lean path (lean.py)
        self._runs: dict[tuple, tuple[Entry, str, Callable | None]] = {}
        self._steps = module.function("model").steps

    def __repr__(self) -> str:
        debug = ", debug_nans" if self.debug_nans else ""
        return f"<tflc.Model {self.module.name} ({self.backend}, seed {self.seed}{debug})>"

    # -- what the model holds ------------------------------------------------------------------

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The params, by name, as read-only views (copy one to change it)."""
        return self._views("param")

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The state (including optimizers' slots), by name, as read-only views."""
        return self._views("state")

    @property
    def input_types(self) -> dict[str, TensorType]:
        return {d.name: d.type for d in self.module.decls if d.kind == "input"}

    @property
    def steps(self) -> tuple[str, ...]:
        return self._steps

    @property
    def run_count(self) -> int:
        """How many runs have used the run counter (runs with dropout, say)."""
        return self._counter

    def _views(self, kind: str) -> dict[str, np.ndarray]:
        views = {}
        for decl in self.module.decls:
            if decl.kind == kind:
                views[decl.name] = view = self._values[decl.name].view()
                view.flags.writeable = False
        return views

    # -- running -------------------------------------------------------------------------------

    def run(self, what, feed_dict: Mapping | None = None, /, *, fetch=None, **feeds):
        """Fetches values, runs a step, or both.

        - `run("loss", ...)` returns one array; `run(["loss", "acc"], ...)` a list of them.
        - `run("step", ...)` runs the step and returns None; with `fetch="loss"` (or a list) it
          returns those values too, computed before the update. `run(["step", "loss"], ...)`
          returns the list of the fetched values, without the step.

        Feeds are keywords (`x=batch`) or, for names that cannot be keywords (`fc1.x`, `fetch`),
        a dict passed second: `run("loss", {"fc1.x": batch})`.
        """
        key = (_names_key(what), fetch is None or _names_key(fetch))
        planned = self._runs.get(key)
        if planned is None:
            planned = self._plan_run(what, fetch)
            if None not in key:
                self._runs[key] = planned
        entry, returns, lean = planned
        if feed_dict:
            twice = sorted(set(feed_dict) & set(feeds))
            if twice:
                raise Error(f"'{twice[0]}' is fed twice (in the feed dict and as a keyword)")
            feeds = {**feed_dict, **feeds}
        if lean is not None:
            results = lean(feeds)
            if results is not DECLINED:
                return results
        results = self._execute(entry, feeds)
        return None if returns == "none" else results[0] if returns == "one" else results

    def _plan_run(self, what, fetch) -> tuple[Entry, str, Callable | None]:
        """The entry that `run(what, fetch=fetch)` runs, what it returns ("none", "one" array
        or a "list"), and the lean path for the usual feeds, where the backend has one."""
        names = [what] if isinstance(what, str) else list(what)
        if not all(isinstance(name, str) for name in names):
            raise Error(f"run() takes a name or a list of names, got {what!r}")
        step = self._step_of(names)
        fetches = [name for name in names if name != step]
        returns = "one" if isinstance(what, str) else "list"
        if fetch is not None:
            if not (isinstance(what, str) and step is not None):
                raise Error("fetch= goes with a step: run('STEP', fetch=[...]); to fetch several "
                            "values, pass a list of names")
            fetches = [fetch] if isinstance(fetch, str) else list(fetch)
            returns = "one" if isinstance(fetch, str) else "list"
        elif isinstance(what, str) and step is not None:  # a step alone
            returns = "none"
        entry = self._entry(tuple(fetches), step)
        return entry, returns, lean_run(self, entry, returns)

    def _step_of(self, names: list[str]) -> str | None:
        steps = [name for name in names if name in self._steps]
        if len(steps) > 1:
            raise Error(f"one step per run, got {len(steps)}: {', '.join(steps)}")
        return steps[0] if steps else None

    def dump(self, fetch=(), *, step: str | None = None, after: str | None = None) -> str:
        """IR text: the module as parsed when nothing is named; else the entry for `fetch` (a
        name or a list) and `step`, after the whole pipeline, after the pass `after`, or, with
        `after="all"`, before the passes and after each pass that changed it."""
        fetches = [fetch] if isinstance(fetch, str) else list(fetch)
        if not fetches and step is None:
            if after is not None:
                raise Error("after= works on an entry: name it with fetch= or step=")
            return print_module(self.module)
        entry = select_entry(self.module, fetches, step)
        result = run_pipeline(entry, DEFAULT_PIPELINE, print_after=after)
        return result.dumps() if after is not None else print_function(result.function) + "\n"

    def entry(self, fetches: tuple[str, ...], step: str | None = None) -> Entry:
        """The compiled entry for `fetches` (and `step`), compiled on first use."""
        return self._entry(tuple(fetches), step)

    def _entry(self, fetches: tuple[str, ...], step: str | None) -> Entry:
        key = (fetches, step)
        if key not in self._entries:
            function = compile_entry(self.module, fetches, step)
            compiled = self._backend.compile(function, **self._options)
            arguments = tuple(arg.name for arg in function.args)
            inputs = tuple(n for n in arguments if self.module.decl(n).kind == "input")
            self._entries[key] = Entry(fetches, step, function, compiled, arguments, inputs,
                                       None if hasattr(compiled, "inline")
                                       else quick_check(self.module, inputs),
                                       tuple(out.label for out in function.outputs[len(fetches):]),
                                       COUNTER in arguments)
        return self._entries[key]

    def _execute(self, entry: Entry, feeds: dict) -> list[np.ndarray]:
        sizes = entry.quick(feeds) if entry.quick else None
        if sizes is None or len(sizes) < len(entry.function.dims):
            feeds, sizes = self._checked(entry, feeds)
        fed = feeds if not entry.counter else \
            {**feeds, COUNTER: counter_value(self._counter, self.seed)}
        values = self._values
        args = [fed[name] if name in fed else values[name] for name in entry.arguments]
        results = entry.compiled(sizes, args)
        count = len(entry.fetches)
        if len(results) > count:
            inputs = [feeds[name] for name in entry.inputs]
            # all of a step's updates together, after it ran
            values.update([(label, unaliased(result, inputs, stored=True))
                           for label, result in zip(entry.updates, results[count:])])
        self._counter += entry.counter
        return [unaliased(result, args) for result in results[:count]]

    def _checked(self, entry: Entry, feeds: dict) -> tuple[dict, dict]:
        """The feeds converted and checked, and the dims' sizes (feeds.py); or the error."""
        check_names(self.module, feeds, entry.inputs, entry.purpose())
        arrays, sizes = check_feeds(self.module, feeds)
        unbound = [dim for dim in entry.function.dims if dim not in sizes]
        if unbound:
            raise Error(f"the size of {unbound[0]} is unknown when {entry.purpose()}: "
                        "no fed input has that dim")
        return arrays, sizes

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Writes params, state and the run counter to an `.npz` file, atomically."""
        checkpoint.save(path, self._checkpoint_values())

    def restore(self, path: str | os.PathLike) -> None:
        """Reads back what `save` wrote; the names, dtypes and shapes must match the model's."""
        expected = {name: _type_of(value) for name, value in self._checkpoint_values().items()}
        arrays = checkpoint.load(path, expected)
        if COUNTER in arrays:
            self._counter = int(arrays.pop(COUNTER))
        self._values.update(arrays)

    def _checkpoint_values(self) -> dict[str, np.ndarray]:
        values = dict(self._values)
        if self.module.decl(COUNTER) is not None:
            values[COUNTER] = np.array(self._counter, np.int64)
        return values


def _names_key(names) -> str | tuple | None:
    """What run() was given as names, to remember the run by: the name or a tuple of names;
    None for anything else (such a run is planned every time)."""
    if isinstance(names, str):
        return names
    if isinstance(names, (list, tuple)) and all(isinstance(name, str) for name in names):
        return tuple(names)
    return None


def _type_of(array: np.ndarray) -> TensorType:
    return TensorType(dtype_of_numpy(array.dtype), tuple(array.shape))


def unaliased(result: np.ndarray, arrays, stored: bool = False) -> np.ndarray:
    """`result`, copied where it shares memory with `arrays` (or, when handed to the user, is
    read-only), so neither the model nor the user can change the other's arrays."""
    if not stored and not result.flags.writeable:
        return result.copy()
    # an array that owns its memory shares it only with itself and its views (whose base it
    # is): the quick answer for the fresh arrays a native backend returns
    if result.base is None:
        for array in arrays:
            if array is result or array.base is result:
                return result.copy()
        return result
    if any(np.may_share_memory(result, array) for array in arrays):
        return result.copy()
    return result
