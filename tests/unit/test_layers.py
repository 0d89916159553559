"""Imports point one way (see ../shared/DESIGN.md): embedops.core <- evaluation <- registry, training,
indexing <- monitoring <- the CLI, pipelines and demo. Every import in every module is read with ast,
function-local and TYPE_CHECKING ones included, and checked against that graph."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("embedops", "evaluation", "indexing", "registry", "training", "monitoring")
CORE = "embedops.core"
CLI = "embedops"  # the CLI, pipelines, serve and demo: everything else of embedops/
# What each layer may import of the project besides itself. Training may use the registry (it
# registers what it trains); the registry and monitoring never import training (a retrain is a
# callable they are handed); indexing is handed a loaded model and never imports the registry.
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "evaluation": {CORE},
    "indexing": {CORE, "evaluation"},
    "registry": {CORE, "evaluation", "indexing"},
    "training": {CORE, "evaluation", "indexing", "registry"},
    "monitoring": {CORE, "evaluation", "indexing", "registry"},
    CLI: {CORE, "evaluation", "indexing", "registry", "training", "monitoring"},
}


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for anything outside the project."""
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if module == CORE or module.startswith(CORE + "."):
        return CORE
    return top


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in PACKAGES:  # `from embedops import core`: the names are the modules
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(root: Path) -> list[str]:
    """Every import under ``root``'s project packages that points against the layer graph."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            own = layer_of(".".join(relative.with_suffix("").parts))
            assert own is not None
            for line, module in imported_modules(path.read_text(encoding="utf-8")):
                target = layer_of(module)
                if target is None or target == own or target in ALLOWED[own]:
                    continue
                found.append(
                    f"{relative}:{line} imports {module} ({own} may import "
                    f"{', '.join(sorted(ALLOWED[own])) or 'nothing of the project'})"
                )
    return found


def test_the_tree_imports_only_down_the_layers() -> None:
    assert violations(REPO) == []


def test_the_checker_fails_on_upward_and_sideways_imports(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
    (tmp_path / "embedops" / "core").mkdir()
    (tmp_path / "embedops" / "core" / "settings.py").write_text("import os\nfrom embedops.core.errors import X\n")
    (tmp_path / "evaluation" / "metrics.py").write_text("from embedops.core.errors import X\n")
    (tmp_path / "registry" / "store.py").write_text(
        "def f():\n    from embedops.settings import actor\n    from evaluation import metrics\n"
    )
    (tmp_path / "monitoring" / "job.py").write_text("import training.job\n")
    (tmp_path / "embedops" / "core" / "names.py").write_text("from evaluation.errors import X\n")
    (tmp_path / "evaluation" / "uses_core.py").write_text("from embedops import core\nfrom embedops import cli\n")
    assert violations(tmp_path) == [
        "embedops/core/names.py:1 imports evaluation.errors (embedops.core may import nothing of the project)",
        "evaluation/uses_core.py:2 imports embedops.cli (evaluation may import embedops.core)",
        "registry/store.py:2 imports embedops.settings (registry may import embedops.core, evaluation, indexing)",
        "monitoring/job.py:1 imports training.job "
        "(monitoring may import embedops.core, evaluation, indexing, registry)",
    ]
