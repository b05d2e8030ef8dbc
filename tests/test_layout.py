"""The layering of the top-level modules, which import-linter cannot take as roots.

import-linter (contracts in pyproject.toml) checks the packages digits/ and pages/; these tests
hold the same rules for the modules at the top: the network, model_loader, canvas and the
entry points. Each module's imports are read from its source, the way import-linter reads them.
"""

import ast
import sys

import pytest

from digits import PROJECT_ROOT

NETWORK = ("layers", "network", "optimizers", "schedules")
ENTRY_POINTS = ("app", "train", "predict_single")
# Each top-level module with the project modules it may import (packages by their first name).
ALLOWED = {
    "layers": set(),
    "network": {"layers"},
    "optimizers": set(),
    "schedules": set(),
    "model_loader": {"digits", "layers", "network"},
    "canvas": {"digits"},
    "app": {"pages", "digits", "canvas", "model_loader", *NETWORK},
    "train": {"digits", "model_loader", *NETWORK},
    "predict_single": {"digits", "model_loader", *NETWORK},
}
PROJECT = {*ALLOWED, "digits", "pages"}


def imported_names(module: str) -> set[str]:
    """The first component of every module `module`'s source imports, at any depth."""
    tree = ast.parse((PROJECT_ROOT / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_top_level_module_is_covered_by_a_rule():
    assert {p.stem for p in PROJECT_ROOT.glob("*.py")} == set(ALLOWED)


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_a_top_level_module_imports_only_the_layers_below_it(module):
    assert (imported_names(module) & PROJECT) - ALLOWED[module] == set()


@pytest.mark.parametrize("module", NETWORK)
def test_the_network_imports_nothing_but_numpy_and_the_standard_library(module):
    outside = imported_names(module) - set(sys.stdlib_module_names) - {"numpy", "__future__"}
    assert outside - set(ALLOWED[module]) == set()


def test_model_loader_imports_neither_training_nor_the_app():
    source = (PROJECT_ROOT / "model_loader.py").read_text()
    assert "digits.training" not in source
    assert "digits.app" not in source
    assert "streamlit" not in imported_names("model_loader")


def test_the_rule_reader_sees_a_wrong_way_import(tmp_path, monkeypatch):
    (tmp_path / "layers.py").write_text("import numpy as np\nfrom train import main\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    assert (imported_names("layers") & PROJECT) - ALLOWED["layers"] == {"train"}
