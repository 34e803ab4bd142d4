"""Name → object registries (timm style) with plugin loading.

Built-in entries register themselves on import. Third-party packages add entries through the entry-point groups
``artbench.methods`` and ``artbench.datasets`` (each entry point names a module to import, whose import
registers the objects); a local module is loaded with ``--plugin MODULE``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from artbench.core.errors import ArtbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects of one kind (methods, datasets, backbones)."""

    def __init__(self, kind: str, entry_point_group: str | None = None, builtins: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.builtins = builtins
        """Module whose import registers the built-in entries, imported on first lookup."""
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T:
        if name in self._items and not overwrite:
            raise ArtbenchError(f"{self.kind} {name!r} is already registered; pick another name")
        self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object under ``name``."""

        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        if self.builtins is not None:
            importlib.import_module(self.builtins)
        for ep in entry_points(group=self.entry_point_group) if self.entry_point_group else ():
            ep.load()

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._items:
            raise ArtbenchError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_plugin(module: str) -> None:
    """Import a plugin given as a module name (``my_pkg.methods``) or a path to a ``.py`` file.

    A file is imported as module ``artbench_plugin_<stem>`` (a plugin called ``random.py`` must not shadow the
    standard library). An error inside the plugin becomes one line naming the plugin and the failing line.
    """
    path = Path(module)
    try:
        if path.suffix == ".py":
            _import_file(path)
        else:
            importlib.import_module(module)
    except ArtbenchError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise ArtbenchError(f"plugin {module!r} {_failure(exc)}; install that module") from None
        raise ArtbenchError(
            f"cannot import plugin {module!r} ({exc}); give an importable module name or a path to a .py file"
        ) from None
    except (Exception, SystemExit) as exc:
        raise ArtbenchError(f"plugin {module!r} {_failure(exc)}; fix the plugin") from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise ArtbenchError(f"plugin file {str(path)!r} does not exist")
    name = "artbench_plugin_" + re.sub(r"\W", "_", path.stem)
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path.resolve():
        return  # the same file given twice
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise


def _failure(exc: BaseException) -> str:
    """``failed at FILE:LINE: Type: message`` for an exception raised while importing a plugin."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}"
        message = exc.msg
    else:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{frame.filename}:{frame.lineno}"
        message = str(exc)
    return f"failed at {where}: {type(exc).__name__}: {message}"
