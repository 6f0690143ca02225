"""`.tfl` lines as LLVM debug locations: every kernel is a subprogram at the line of the op it
computes, and its instructions carry that op's line and column (in a fused kernel, the line of
each region op), so `--emit llvm` and the assembly point back at the user's source."""

from __future__ import annotations

import os

from llvmlite import ir

from ...ir.errors import Loc

NO_FILE = "<tflc>"  # ops built without a source location


class DebugInfo:
    def __init__(self, module: ir.Module, first: Loc | None):
        self.module = module
        self.files: dict[str, ir.DIValue] = {}
        self.unit = module.add_debug_info("DICompileUnit", {
            "language": ir.DIToken("DW_LANG_C"), "file": self.file(first),
            "producer": "tflc", "runtimeVersion": 0, "isOptimized": True,
            "emissionKind": ir.DIToken("LineTablesOnly")}, is_distinct=True)
        module.add_named_metadata("llvm.dbg.cu", self.unit)
        module.add_named_metadata("llvm.module.flags", [
            ir.Constant(ir.IntType(32), 2), "Debug Info Version", ir.Constant(ir.IntType(32), 3)])
        self.signature = module.add_debug_info("DISubroutineType",
                                               {"types": module.add_metadata([])})

    def file(self, loc: Loc | None) -> ir.DIValue:
        path = loc.file if loc is not None else NO_FILE
        if path not in self.files:
            self.files[path] = self.module.add_debug_info("DIFile", {
                "filename": os.path.basename(path), "directory": os.path.dirname(path)})
        return self.files[path]

    def subprogram(self, function: ir.Function, loc: Loc | None) -> ir.DIValue:
        """Marks `function` as defined at `loc`; returns its scope for locations."""
        line = loc.line if loc is not None else 0
        scope = self.module.add_debug_info("DISubprogram", {
            "name": function.name, "file": self.file(loc), "line": line, "scopeLine": line,
            "type": self.signature, "isLocal": True, "isDefinition": True, "unit": self.unit},
            is_distinct=True)
        function.set_metadata("dbg", scope)
        return scope

    def location(self, scope: ir.DIValue, loc: Loc | None) -> ir.DIValue:
        line, column = (loc.line, loc.col) if loc is not None else (0, 0)
        return self.module.add_debug_info("DILocation",
                                          {"line": line, "column": column, "scope": scope})

    def place(self, builders: list[ir.IRBuilder], function: ir.Function,
              loc: Loc | None) -> ir.DIValue:
        """Gives `function` a subprogram at `loc`, and the builders emitting into it that
        location for every instruction they insert; returns the scope."""
        scope = self.subprogram(function, loc)
        for builder in builders:
            builder.debug_metadata = self.location(scope, loc)
        return scope
