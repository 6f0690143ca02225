"""`.tfl` text → lark parse tree, with syntax errors turned into located `tflc.Error`s.

The grammar is `tfl.lark` (LALR, strict). A small post-lexer drops the newlines inside ( ) and
[ ], so expressions and argument lists can span lines while a newline still ends a statement.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from ..ir.errors import Error, Loc

PAIRS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}  # closing → opening
COMPARISONS = ("EQ", "NE", "LT", "LE", "GT", "GE")
# Where the terminals that start an expression (or the arithmetic operators) are expected, the
# message says "an expression" (or "an operator") instead of listing them all.
EXPRESSION_START = {"NAME", "INT", "FLOAT", "MINUS", "LPAR", "LSQB"}
LITERAL_WORDS = {"TRUE", "FALSE", "NOT"}
ARITHMETIC = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "POW"}
BINARY_OPERATORS = ARITHMETIC | {"EQ", "NE", "LT", "LE", "GT", "GE", "AND", "OR"}
TERMINAL_NAMES = {"NAME": "a name", "INT": "a number", "FLOAT": "a number", "_NL": "a newline",
                  "$END": "the end of the file"}


class Source:
    """A file's text split into lines, to make `Loc`s that carry their source line."""

    def __init__(self, text: str, filename: str):
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.filename = filename
        self.lines = self.text.split("\n")

    def loc(self, line: int, col: int) -> Loc:
        line = min(max(line, 1), len(self.lines))
        return Loc(self.filename, line, max(col, 1), text=self.lines[line - 1])

    def end(self) -> Loc:
        """Just after the last non-blank line: where a missing `}` or `)` belongs."""
        line = max((i for i, text in enumerate(self.lines, 1) if text.strip()), default=1)
        return self.loc(line, len(self.lines[line - 1]) + 1)

    def loc_of(self, node: Tree | Token) -> Loc | None:
        """Where a token or a tree starts (None for an empty tree, which has no position)."""
        if isinstance(node, Token):
            return self.loc(node.line, node.column)
        if node.meta.empty:
            return None
        return self.loc(node.meta.line, node.meta.column)


class BracketError(Exception):
    """A bracket left open at the end of the file, or closed by the wrong bracket."""

    def __init__(self, message: str, token: Token, opened: Token | None = None):
        super().__init__(message)
        self.message, self.token, self.opened = message, token, opened


class BracketNewlines(PostLex):
    """Drops newline tokens inside ( ) and [ ] (not inside { }, where they end statements),
    merges runs of them, and checks that brackets pair up."""

    always_accept = ("_NL",)

    def process(self, stream):
        open_brackets: list[Token] = []
        last = None
        for token in stream:
            if token.type in PAIRS.values():
                open_brackets.append(token)
            elif token.type in PAIRS:
                if not open_brackets:
                    raise BracketError(f"'{token}' has no matching opening bracket", token)
                opened = open_brackets.pop()
                if PAIRS[token.type] != opened.type:
                    raise BracketError(f"'{token}' does not close '{opened}'", token, opened)
            elif token.type == "_NL" and (last == "_NL" or open_brackets
                                          and open_brackets[-1].type != "LBRACE"):
                continue
            last = token.type
            yield token
        if open_brackets:
            raise BracketError(f"'{open_brackets[-1]}' is never closed", open_brackets[-1])


GRAMMAR = Path(__file__).with_name("tfl.lark")


def load_parser(cache: bool = True) -> Lark:
    """The LALR parser. Lark's cache (a temporary file keyed by the grammar's text) skips the
    grammar analysis on later loads: 0.03 s instead of 1 s at every start of the compiler."""
    return Lark.open(str(GRAMMAR), parser="lalr", strict=True, propagate_positions=True,
                     postlex=BracketNewlines(), cache=cache)


@functools.cache
def _parser() -> Lark:
    return load_parser()


def parse_tree(source: Source) -> Tree:
    """The parse tree of a whole file, or a located Error for the first syntax error."""
    try:
        return _parser().parse(source.text + "\n")
    except UnexpectedInput as e:
        raise syntax_error(e, source) from None
    except BracketError as e:
        notes = [("opened here", source.loc_of(e.opened))] if e.opened else []
        raise Error(e.message, source.loc_of(e.token), notes=notes) from None


@functools.cache
def reserved_words() -> frozenset[str]:
    """The words the grammar reserves (`model`, `input`, ..., `not`)."""
    parser = _parser()
    name = parser.get_terminal("NAME").pattern.to_regexp()
    return frozenset(t.pattern.value for t in parser.terminals
                     if t.pattern.type == "str" and re.fullmatch(name, t.pattern.value))


def syntax_error(e: UnexpectedInput, source: Source) -> Error:
    if isinstance(e, UnexpectedCharacters):
        char = source.text[e.pos_in_stream]
        shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
        return Error(f"unexpected character {shown}", source.loc(e.line, e.column))
    if isinstance(e, UnexpectedToken):
        # The parser's own view of what may come next: exact, where the lexer's is a superset
        parser = e.interactive_parser
        return _unexpected_token(e.token, parser.accepts() if parser else e.expected, source)
    return Error("syntax error", source.loc(e.line, e.column))  # lark's LALR raises no other


def _unexpected_token(token: Token, expected: set[str], source: Source) -> Error:
    if token.type == "$END":
        loc = source.end()
    else:
        loc = source.loc(token.line, token.column)
    if "NAME" in expected and token.value in reserved_words():
        return Error(f"'{token.value}' is a keyword and cannot be used as a name", loc)
    before = source.lines[loc.line - 1][:loc.col - 1].strip()
    if token.value in ("=", ",") and before in reserved_words():  # `input = 3`, `step, b = ...`
        return Error(f"'{before}' is a keyword and cannot be used as a name",
                     source.loc(loc.line, loc.text.index(before) + 1))
    hint = None
    if token.type in COMPARISONS and not expected & set(COMPARISONS):
        hint = "comparisons do not chain: write (a < b) and (b < c)"
    message = f"unexpected {_describe_token(token)}"
    if expected:
        message += f", expected {_describe_expected(expected)}"
    return Error(message, loc, hint=hint)


def _describe_token(token: Token) -> str:
    if token.type == "_NL":
        return "newline"
    if token.type == "$END":
        return "end of file"
    if token.type == "NAME":
        return f"name '{token.value}'"
    if token.type in ("INT", "FLOAT"):
        return f"number {token.value}"
    return f"'{token.value}'"


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    words = []
    if EXPRESSION_START <= expected:
        expected -= EXPRESSION_START | LITERAL_WORDS
        words.append("an expression")
    if ARITHMETIC <= expected:
        expected -= BINARY_OPERATORS
        words.append("an operator")
    words += sorted({_describe_terminal(t) for t in expected})
    if len(words) == 1:
        return words[0]
    return "one of " + ", ".join(words)


def _describe_terminal(name: str) -> str:
    if name in TERMINAL_NAMES:
        return TERMINAL_NAMES[name]
    pattern = _parser().get_terminal(name).pattern
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()
