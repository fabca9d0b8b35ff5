"""The layers of lpbook: grammar -> statistics -> learners -> sweeps and measurements -> the command line and the book.

No module imports one of a higher layer, at module level or inside a function; a new module must be given its layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

#: Each module's layer; within layer 3, sweeps are built up from points, storage and P* (see ORDER).
LAYERS = {
    0: {"lpbook._validate", "lpbook._files", "lpbook._progress", "lpbook.tree", "lpbook.grammar", "lpbook.draw",
        "lpbook.scale"},
    1: {"lpbook.exact", "lpbook.empirical", "lpbook.bp", "lpbook.contexts", "lpbook.metrics", "lpbook.root"},
    2: {"lpbook.learners", "lpbook.clustering", "lpbook.baselines", "lpbook.ilc", "lpbook", "lpbook.neural",
        "lpbook.neural.base", "lpbook.neural.cnn", "lpbook.neural.data2vec", "lpbook.neural.encoder",
        "lpbook.neural.masked", "lpbook.neural.masking", "lpbook.neural.options", "lpbook.neural.probe",
        "lpbook.neural.readout", "lpbook.neural.slc", "lpbook.neural.snapshots", "lpbook.neural.training"},
    3: {"lpbook.points", "lpbook.storage", "lpbook.pstar", "lpbook.sweep", "lpbook.remote", "lpbook.results",
        "lpbook.experiments", "lpbook.theory", "lpbook.oracle", "lpbook.perturb", "lpbook.modelcheck",
        "lpbook.neural.measure", "lpbook.plots"},
    4: {"lpbook.__main__", "lpbook.notebook"},
}
LAYER = {module: layer for layer, modules in LAYERS.items() for module in modules}

#: Inside layer 3, what each module of the sweeps may import (besides lower layers).
ALLOWED = {
    "lpbook.points": set(),
    "lpbook.pstar": {"lpbook.points"},
    "lpbook.storage": {"lpbook.points"},
    "lpbook.plots": {"lpbook.pstar"},
    "lpbook.sweep": {"lpbook.points", "lpbook.pstar", "lpbook.storage"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The lpbook modules that the file at ``path`` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
            found |= {n for n in names if n in LAYER} or {base}
    return {module for module in found if module.split(".")[0] == "lpbook"}


FILES = sorted(SOURCE.joinpath("lpbook").rglob("*.py"))


def test_every_module_has_a_layer():
    assert {module_name(path) for path in FILES} <= LAYER.keys()


@pytest.mark.parametrize("path", FILES, ids=module_name)
def test_no_import_goes_back_up(path):
    name = module_name(path)
    for module in imports(path) - {name}:
        assert module in LAYER, f"{name} imports {module}, which has no layer"
        if LAYER[module] == LAYER[name] == 3 and name in ALLOWED:
            assert module in ALLOWED[name], f"{name} imports {module}"
        else:
            assert LAYER[module] <= LAYER[name], f"{name} (layer {LAYER[name]}) imports {module} (layer {LAYER[module]})"
