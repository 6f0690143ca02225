"""Graph drawing: nodes with op and type, scopes as clusters, fused ops as boxes, arguments styled
by kind, step updates; .dot needs nothing, .svg/.png go through Graphviz (skipped where it is not
installed), and every failure is a located tflc.Error with a hint."""

import shutil
import sys
from pathlib import Path

import pytest

from tflc.codegen.dot import draw, render, to_dot
from tflc.frontend import parse_file, parse_source
from tflc.ir import Error
from tflc.passes.manager import run_pipeline
from tflc.passes.pipeline import select_entry

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.tfl"))
PIPELINE = ("inline", "autodiff", "simplify", "prune", "fuse", "plan_memory")
HAS_DOT = shutil.which("dot") is not None
try:
    import graphviz  # noqa: F401
except ImportError:
    HAS_DOT = False

SCOPED = """
model scoped
input x: f32[N, 4]
state seen: i32[] = 0
scope fc1 {
    param W: f32[4, 3] = zeros()
    param b: f32[3] = zeros()
    h = relu(x @ W + b)
}
loss = sum(fc1.h * 2.0)
step train {
    fc1.W <- fc1.W - 0.1 * grad(loss, fc1.W)
    seen <- seen + 1
}
"""


def compiled(module, step=None, passes=PIPELINE):
    model = module.function("model")
    entry = select_entry(module, () if step else model.fetchable, step)
    return run_pipeline(entry, passes).function


@pytest.fixture
def scoped():
    return parse_source(SCOPED, "scoped.tfl")


def node_line(dot: str, label_start: str) -> str:
    return next(line for line in dot.splitlines() if f'[label="{label_start}' in line)


def test_nodes_show_op_and_type_and_arguments_their_kind(scoped):
    dot = to_dot(compiled(scoped, passes=("inline", "prune")), scoped.decls)
    assert "invhouse" in node_line(dot, "x\\nf32[N,4]")  # an input
    assert '#fff2b3' in node_line(dot, "W\\nf32[4,3]")  # a param, named within its scope
    assert 'label="h = relu\\nf32[N,3]"' in dot
    assert 'label="2.0"' in dot  # a scalar constant shows its value


def test_scopes_are_clusters_that_take_their_unnamed_ops(scoped):
    dot = to_dot(compiled(scoped, passes=("inline", "prune")), scoped.decls)
    cluster = dot[dot.index('subgraph "cluster_fc1"'):]
    cluster = cluster[:cluster.index("\n  }")]
    assert 'label="fc1"' in cluster
    for label in ("W\\nf32[4,3]", "b\\nf32[3]", "matmul\\nf32[N,3]", "add\\nf32[N,3]",
                  "h = relu"):
        assert f'label="{label}' in cluster, label
    assert "loss = sum" not in cluster


def test_fused_ops_are_boxes_and_step_updates_are_drawn(scoped):
    dot = to_dot(compiled(scoped, step="train"), scoped.decls)
    assert 'label="fused matmul"' in dot
    assert 'label="train: fc1.W <-"' in dot and 'label="train: seen <-"' in dot
    assert '#ffd9b3' in node_line(dot, "seen\\ni32[]")  # state, apart from params


def test_the_drawing_is_deterministic(scoped):
    func = compiled(scoped, step="train")
    assert to_dot(func, scoped.decls) == to_dot(func, scoped.decls)


def test_dot_file_needs_nothing(tmp_path, scoped, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # as if not installed
    out = tmp_path / "g.dot"
    draw(compiled(scoped), out, scoped.decls)
    assert out.read_text().startswith('digraph "model" {')


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(Error, match=r"should end in \.dot, \.svg, \.png, \.pdf"):
        render("digraph {}", tmp_path / "g.jpeg")


def test_missing_graphviz_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(Error) as info:
        render("digraph {}", tmp_path / "g.svg")
    assert "graphviz Python package" in info.value.message
    assert "apt install graphviz" in info.value.hint


@pytest.mark.skipif(not HAS_DOT, reason="needs the graphviz package and the dot program")
def test_missing_dot_program_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Error) as info:
        render("digraph {}", tmp_path / "g.png")
    assert "dot program" in info.value.message and "brew install graphviz" in info.value.hint


def test_unwritable_path_is_an_error(tmp_path):
    with pytest.raises(Error, match="cannot write"):
        render("digraph {}", tmp_path / "missing" / "g.dot")


@pytest.mark.skipif(not HAS_DOT, reason="needs the graphviz package and the dot program")
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_draws(tmp_path, path):
    module = parse_file(path)
    for step in (None, *module.function("model").steps):
        out = tmp_path / f"{path.stem}-{step}.svg"
        draw(compiled(module, step), out, module.decls)
        assert "<svg" in out.read_text()
