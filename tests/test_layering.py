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
PURE = {"policies": {"errors", "clock", "model", "policies", "providers.base"},
        "controller.core": {"errors", "clock", "model", "policies", "providers.base",
                            "controller.core"}}


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


def _pure_layer(path: Path) -> str | None:
    """The pure layer a module belongs to (`policies`, `controller.core`), if any."""
    rel = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return next((p for p in PURE if rel == p or rel.startswith(p + ".")), None)


def _within(module: str, allowed: set[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


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
            pure = _pure_layer(path)
            if pure is not None and not _within(module, PURE[pure]):
                wrong.append(f"{path.relative_to(PACKAGE)} (pure) imports {module}")
    assert not wrong, "\n".join(wrong)


IO_MODULES = {"asyncio", "asyncssh", "boto3", "fcntl", "os", "shutil", "socket", "sqlite3",
              "subprocess", "threading", "time", "urllib", "http", "requests", "pathlib"}


def _all_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_controller_core_does_no_io() -> None:
    """The planner's purity is a rule, not a docstring: controller/core imports no module
    that touches disk, network, processes or the clock."""
    core = PACKAGE / "controller" / "core"
    wrong = {f"{p.name} imports {m}"
             for p in core.rglob("*.py") for m in _all_imports(p) & IO_MODULES}
    assert not wrong, sorted(wrong)


def test_controller_sub_packages_import_down() -> None:
    """runtime -> core, state; neither core nor state imports runtime, nor each other."""
    may_not = {"core": ("controller.runtime", "controller.state"),
               "state": ("controller.runtime", "controller.core")}
    wrong = []
    for sub, banned in may_not.items():
        for path in (PACKAGE / "controller" / sub).rglob("*.py"):
            wrong += [f"{path.relative_to(PACKAGE)} imports {m}"
                      for m in _imports(path) if m.startswith(banned)]
    assert not wrong, wrong
