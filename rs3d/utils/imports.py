"""The user's own modules named by a config (``CUSTOM_IMPORTS``), imported before the config is checked or used, so
a model or decoding backend they register (``rs3d.models.register_model``, ``rs3d.data.decoders.register_backend``)
is known to every command, and to a checkpoint's config later, by config alone (mmengine's ``custom_imports``)."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from rs3d.utils.errors import UserInputError


class CustomImportError(UserInputError, ImportError):
    """A module named in ``CUSTOM_IMPORTS`` could not be imported; the message names it and why."""


#: (entry, folder) imported in this process, files as absolute paths, for worker processes to import them too.
_IMPORTED: list[tuple[str, str]] = []


def import_modules(names: Sequence[str], folder: str = "") -> list[ModuleType]:
    """Import each entry: a module name (``mypkg.models``, found as ``python -m`` would, ``folder`` (default: the
    current one) first when it is not on the path yet) or a ``.py`` file (relative to ``folder``), once per process."""
    folder = folder or os.getcwd()
    modules = []
    for name in names:
        entry = os.path.join(folder, name) if name.endswith(".py") else name
        try:
            modules.append(_import_file(entry) if name.endswith(".py") else _import_name(name, folder))
        except CustomImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - any error inside the user's module is reported with its name
            raise CustomImportError(f"CUSTOM_IMPORTS: cannot import {name!r}: {type(exc).__name__}: {exc}") from exc
        if (entry, folder) not in _IMPORTED:
            _IMPORTED.append((entry, folder))
    return modules


def imported_modules() -> list[tuple[str, str]]:
    """(entry, folder) of what :func:`import_modules` imported in this process, for a worker process to import them
    too (``import_modules([entry], folder)``): a spawned or forkserver worker inherits nothing they registered."""
    return list(_IMPORTED)


def _import_name(name: str, folder: str) -> ModuleType:
    if folder not in sys.path and not (folder == os.getcwd() and "" in sys.path):  # python -m puts it there
        sys.path.append(folder)
    return importlib.import_module(name)


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CustomImportError(f"CUSTOM_IMPORTS: {path}: file not found")
    name = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(name)
    if loaded is not None and os.path.abspath(getattr(loaded, "__file__", "") or "") == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as an import does (pickling, dataclasses, self-imports)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
