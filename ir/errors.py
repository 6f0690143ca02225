"""Source locations and the one exception class every user error derives from."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loc:
    """A place in a source file. `text` is the whole line, kept so errors can show it."""

    file: str
    line: int
    col: int
    text: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        if self.text is not None:
            return self.text
        try:  # a location parsed back from IR text: read the line from disk if it is there
            with open(self.file, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if number == self.line:
                        return line.rstrip("\n")
        except (OSError, UnicodeDecodeError):
            return None
        return None


class Error(Exception):
    """A mistake the user can make: bad source, shapes, feeds or files.

    Printed as `FILE:LINE:COL: error: MESSAGE`, then the source line and a caret, then any notes
    (other places involved, such as the first definition of a redefined name) and a hint.
    """

    def __init__(self, message: str, loc: Loc | None = None, *, hint: str | None = None,
                 notes: tuple[tuple[str, Loc | None], ...] = ()):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint
        self.notes = tuple(notes)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        lines = _located("error", self.message, self.loc)
        for note, loc in self.notes:
            lines += _located("note", note, loc)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


def _located(kind: str, message: str, loc: Loc | None) -> list[str]:
    if loc is None:
        return [f"{kind}: {message}"]
    lines = [f"{loc}: {kind}: {message}"]
    text = loc.source_line()
    if text is not None:
        lines.append("  " + text.expandtabs(1))
        lines.append("  " + " " * max(loc.col - 1, 0) + "^")
    return lines


def did_you_mean(name: str, candidates) -> str | None:
    """A hint naming the candidate closest to a misspelt `name`, if one is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else None
