"""pyproject lists every package of the tree, so a non-editable install has every stage."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"tflc": "."}
    found = sorted(
        ".".join(("tflc",) + init.parent.relative_to(ROOT).parts)
        for init in ROOT.rglob("__init__.py")
        if not {"tests", "build", ".venv"} & set(init.relative_to(ROOT).parts))
    assert sorted(config["packages"]) == found


def test_the_version_is_kept_in_one_place():
    import tflc

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == \
        {"attr": "tflc.version.__version__"}
    assert tflc.__version__.count(".") == 2  # what the cache keys hold (codegen/llvm/cache.py)
