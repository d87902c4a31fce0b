"""Imports go one way: cli -> controller -> policies/providers/remote/cost -> model.

A lower layer importing a higher one is how a pure planner grows I/O and how cycles
start; this test fails on the first such import."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "czarina_fleet"

LEVEL = {
    "errors": 0, "clock": 0, "model": 0, "config": 1,
    "policies": 2, "providers": 2, "remote": 2, "cost": 2, "hopper": 2,
    "controller": 3, "sim": 4, "cli": 5,
}
# Pure layers may import only the model (and each other within the layer), plus the
# provider contract's plain data classes (Instance, InterruptionNotice, PriceQuote).
PURE = {"policies": {"errors", "clock", "model", "policies", "providers.base"}}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [m.removeprefix("czarina_fleet.") for m in found if m.startswith("czarina_fleet.")]


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = {_layer(p) for p in PACKAGE.rglob("*.py")} - set(LEVEL) - {"__init__"}
    assert not unknown, f"add these to LEVEL in {__file__}: {unknown}"


def test_imports_only_go_down() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        layer = _layer(path)
        if layer == "__init__":
            continue
        for module in _imports(path):
            target = module.split(".")[0]
            if LEVEL[target] > LEVEL[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
            if layer in PURE and target not in PURE[layer] and module not in PURE[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} (pure) imports {target}")
    assert not wrong, "\n".join(wrong)
