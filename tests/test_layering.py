"""The package's import layering: every import inside rs3d/ runs downhill (tools -> commands -> studies ->
engine/inference -> evaluation -> models/data -> config/checkpoint -> utils), function-level imports included."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rs3d")

# Lower numbers are lower layers; packages on one layer are independent of each other.
LAYERS = {
    "utils": 0,
    "config": 1, "checkpoint": 1,
    "models": 2, "data": 2,
    "evaluation": 3,
    "engine": 4, "inference": 4,
    "studies": 5,
    "commands": 6,
}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rs3d" else None


def rs3d_imports(path: str, module: str) -> list[str]:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("rs3d")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("rs3d"):
                found += [f"{name}.{a.name}" if name == "rs3d" else name for a in node.names]
    return found


def all_modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                yield path, rel.removesuffix(".__init__")


def test_every_package_has_a_layer():
    packages = {package_of(m) for _, m in all_modules()} - {None}
    assert packages <= set(LAYERS), f"give these packages a layer: {packages - set(LAYERS)}"


@pytest.mark.parametrize("path, module", sorted(all_modules()), ids=[m for _, m in sorted(all_modules())])
def test_imports_run_downhill(path, module):
    own = package_of(module)
    if own is None:  # rs3d/__init__.py sits on top
        return
    for target in rs3d_imports(path, module):
        other = package_of(target)
        if other is None or other == own:
            continue
        assert LAYERS[other] < LAYERS[own], f"{module} imports {target}: {own} (layer {LAYERS[own]}) must not " \
                                            f"import {other} (layer {LAYERS[other]})"


def test_utils_imports_nothing_else_of_rs3d():
    for path, module in all_modules():
        if package_of(module) == "utils":
            assert all(package_of(t) == "utils" for t in rs3d_imports(path, module)), module


def test_the_checker_sees_violations(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rs3d.engine import Trainer\n")
    assert rs3d_imports(str(bad), "rs3d.utils.bad") == ["rs3d.engine"]
