"""The package's import layering: every import inside rs3d/ runs downhill (tools -> commands -> studies ->
engine/inference -> evaluation -> models/data -> config/checkpoint -> utils), function-level imports included; no
module imports another's private (`_x`) names; hooks never import the trainer at run time; loader-worker-side data
modules never import the device side (issue 21)."""
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


# --- Private names stay inside their module -------------------------------------------------------------------
# A leading underscore means "not part of this module's contract"; another module that imports it couples itself to
# an implementation detail (issue 21 found the RandAugment twins reaching into each other this way).

def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (imports there never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports(path: str, module: str) -> list[str]:
    """`from rs3d.x import _y` (relative too) and `m._y` on a module bound by `import rs3d.x as m`."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = path.endswith("__init__.py")
    found, module_aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            if source.startswith("rs3d"):
                found += [f"{source}.{a.name}" for a in node.names if _is_private(a.name)]
                module_aliases |= {a.asname or a.name for a in node.names
                                   if os.path.exists(os.path.join(os.path.dirname(ROOT), *source.split("."),
                                                                  a.name + ".py"))}
        elif isinstance(node, ast.Import):
            module_aliases |= {a.asname for a in node.names if a.name.startswith("rs3d") and a.asname}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases \
                and _is_private(node.attr):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def tool_modules():
    tools = os.path.join(os.path.dirname(ROOT), "tools")
    for name in sorted(os.listdir(tools)):
        if name.endswith(".py"):
            yield os.path.join(tools, name), f"tools.{name[:-3]}"


@pytest.mark.parametrize("path, module", sorted(all_modules()) + list(tool_modules()),
                         ids=[m for _, m in sorted(all_modules())] + [m for _, m in tool_modules()])
def test_no_private_name_is_imported_from_another_module(path, module):
    assert private_imports(path, module) == [], f"{module} uses private names of other modules; make them public " \
                                                f"(no underscore) or move the code: {private_imports(path, module)}"


# --- Hooks see the trainer only through its documented attributes ------------------------------------------------

HOOKS = os.path.join(ROOT, "engine", "hooks")


def runtime_imports(path: str, module: str) -> list[str]:
    """The rs3d modules (or `package.Name`) a file imports when it runs (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = path.endswith("__init__.py")
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("rs3d")]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            if source.startswith("rs3d"):
                found += [source] + [f"{source}.{a.name}" for a in node.names]
    return found


def test_hooks_are_a_package():
    assert os.path.isdir(HOOKS), "hooks live in rs3d/engine/hooks/, one module per hook family"


@pytest.mark.parametrize("path, module", [(p, m) for p, m in sorted(all_modules()) if p.startswith(HOOKS)],
                         ids=[m for p, m in sorted(all_modules()) if p.startswith(HOOKS)])
def test_no_hook_imports_the_trainer_at_run_time(path, module):
    bad = [t for t in runtime_imports(path, module)
           if t.startswith("rs3d.engine.trainer") or t in ("rs3d.engine.Trainer", "rs3d.engine.DefaultTrainer")]
    assert bad == [], f"{module} imports the trainer at run time ({bad}); hooks get it as an argument and may name " \
                      f"its type under `if TYPE_CHECKING:` only"


def test_the_checkers_see_private_names_and_runtime_trainer_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import TYPE_CHECKING\nfrom rs3d.data.decoders import _first_line, open_video\n"
                   "from . import _helper\nimport rs3d.utils.atomic as atomic\natomic._tmp_name\n"
                   "if TYPE_CHECKING:\n    from rs3d.engine.trainer import Trainer\n"
                   "def f():\n    from rs3d.engine import Trainer\n")
    assert sorted(private_imports(str(bad), "rs3d.data.prep.bad")) == \
        ["atomic._tmp_name", "rs3d.data.decoders._first_line", "rs3d.data.prep._helper"]
    assert "rs3d.engine.Trainer" in runtime_imports(str(bad), "rs3d.engine.hooks.bad")
    assert not any(t.startswith("rs3d.engine.trainer") for t in runtime_imports(str(bad), "rs3d.engine.hooks.bad"))


# --- A clip's path runs one way: worker-side data modules never import the device side ---------------------------
# rs3d/data/__init__.py's docstring names the sides. The device side (rs3d.data.device_inputs) and the assembly of
# both sides (rs3d.data.build) sit on top: every other data module runs in loader workers or is neutral.
DEVICE_SIDE = ("rs3d.data.device_inputs", "rs3d.data.build")
ASSEMBLY = ("rs3d.data", "rs3d.data.build", "rs3d.data.device_inputs")


def imports_device_side(path: str, module: str) -> list[str]:
    """The device-side modules and names a data module imports, TYPE_CHECKING blocks included."""
    found = set(rs3d_imports(path, module)) | set(runtime_imports(path, module))
    return sorted(t for t in found if any(t == d or t.startswith(d + ".") for d in DEVICE_SIDE)
                  or t in ("rs3d.data.BatchAugment", "rs3d.data.ClipNormalizer", "rs3d.data.TrainInputs"))


DATA_MODULES = [(p, m) for p, m in sorted(all_modules()) if m.startswith("rs3d.data.") and m not in ASSEMBLY]


@pytest.mark.parametrize("path, module", DATA_MODULES, ids=[m for _, m in DATA_MODULES])
def test_worker_side_data_modules_never_import_the_device_side(path, module):
    assert imports_device_side(path, module) == [], f"{module} runs in loader workers (or is neutral) but imports " \
                                                    f"the device side: {sorted(set(imports_device_side(path, module)))}"


def test_the_checker_sees_a_worker_importing_the_device_side(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from .device_inputs import BatchAugment\n")
    assert imports_device_side(str(bad), "rs3d.data.transforms") == ["rs3d.data.device_inputs",
                                                                     "rs3d.data.device_inputs.BatchAugment"]
    bad.write_text("from rs3d.data import TrainInputs, build_loader\n")
    assert imports_device_side(str(bad), "rs3d.data.transforms") == ["rs3d.data.TrainInputs"]
