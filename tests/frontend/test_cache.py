"""Parsed programs kept in the cache directory: read back the same as parsed, keyed by the text
and the file name, never kept when wrong, never read back when damaged."""

import pytest

from tflc.frontend import parse_source, parser, program
from tflc.ir import Error, diskcache, print_module

PROGRAM = """model cached
input x: f32[N, 3]
param W: f32[3, 2] = normal(stddev=0.1)
y = softmax(x @ W)
loss = mean(y)
train step = sgd(loss, lr=0.5)
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFLC_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def parses(monkeypatch):
    """The programs actually parsed (not read back)."""
    seen = []
    parse = parser.build_module
    monkeypatch.setattr(parser, "build_module",
                        lambda text, filename: seen.append(filename) or parse(text, filename))
    return seen


def locations(module):
    return [decl.loc for decl in module.decls] + \
        [op.loc for function in module.functions for op in function.ops]


def test_a_program_parsed_before_is_read_back_the_same(parses):
    first = parse_source(PROGRAM, "cached.tfl")
    second = parse_source(PROGRAM, "cached.tfl")
    assert parses == ["cached.tfl"]
    assert print_module(second) == print_module(first)
    assert locations(second) == locations(first) and locations(first)[0].text


def test_the_file_name_and_the_text_are_the_key(parses, cache_dir):
    parse_source(PROGRAM, "cached.tfl")
    other = parse_source(PROGRAM, "other.tfl")
    parse_source(PROGRAM.replace("0.5", "0.25"), "cached.tfl")
    assert parses == ["cached.tfl", "other.tfl", "cached.tfl"]
    assert locations(other)[0].file == "other.tfl"
    assert len(list(cache_dir.glob("module-*.bin"))) == 3


def test_a_program_with_a_mistake_is_not_kept(parses, cache_dir):
    wrong = PROGRAM.replace("x @ W", "x @ V")
    messages = []
    for _ in range(2):
        with pytest.raises(Error) as error:
            parse_source(wrong, "wrong.tfl")
        messages.append(str(error.value))
    assert parses == ["wrong.tfl", "wrong.tfl"] and messages[0] == messages[1]
    assert not list(cache_dir.glob("module-*.bin"))


@pytest.mark.parametrize("contents", [b"not a pickle", b"\x80\x05N."])  # junk; a pickled None
def test_what_is_not_a_module_is_parsed_again(parses, contents):
    name = diskcache.file_name("module", program.key(PROGRAM, "cached.tfl"))
    diskcache.write(name, contents)
    module = parse_source(PROGRAM, "cached.tfl")
    assert parses == ["cached.tfl"] and module.name == "cached"
    assert diskcache.read(name) != contents  # overwritten
