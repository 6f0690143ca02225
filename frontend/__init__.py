"""The `.tfl` frontend: source text → `ir.Module` (grammar in tfl.lark, docs/language.md)."""

from .program import parse_file, parse_source

__all__ = ["parse_file", "parse_source"]
