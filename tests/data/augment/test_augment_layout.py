"""rs3d/data/augment/ imports only downward, in the order its package docstring lists, and only public names."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = Path(REPO_ROOT) / "rs3d" / "data" / "augment"
# Lower first; modules on one level do not import each other (rs3d/data/augment/__init__.py's docstring).
LEVELS = [("tf_spec", "tv_spec"), ("frame_groups",), ("plans",), ("batch_kernels",), ("tv_kernels", "tf_kernels"),
          ("policies",)]
LEVEL = {name: i for i, names in enumerate(LEVELS) for name in names}


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(module inside rs3d.data.augment, imported names) of every import in ``module``'s source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rs3d.data.augment."):
            found.append((node.module.rsplit(".", 1)[1], [a.name for a in node.names]))
    return found


def test_every_module_has_a_level():
    assert {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"} == set(LEVEL)


def test_modules_import_only_lower_levels_and_public_names():
    for module in LEVEL:
        for imported, names in _imports(module):
            assert LEVEL[imported] < LEVEL[module], f"{module} imports {imported}, which is not below it"
            assert not [n for n in names if n.startswith("_")], f"{module} imports private {names} from {imported}"
