"""Hyper-parameters as dataclass fields (scikit-learn's "constructor = hyper-parameters").

A method family declares each parameter with :func:`param`: a default, a one-line doc and, where it has one, a
validity check. Values from TOML files and ``--set`` are coerced to the field's type and checked here, so every
family gets the same one-line errors for free.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from artbench.core.errors import ArtbenchError


def param(default: Any, doc: str, check: Callable[[Any], bool] | None = None, valid: str = "") -> Any:
    """A dataclass field with its one-line ``doc`` and an optional ``check`` (``valid`` says what passes)."""
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple for a sequence default")
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check, "valid": valid})


def param_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def param_docs(cls: type) -> list[tuple[str, Any, str]]:
    """``(name, default, doc)`` for every parameter of ``cls``."""
    return [(name, f.default, f.metadata.get("doc", "")) for name, f in param_fields(cls).items()]


def check_params(obj: Any) -> None:
    """Raise a one-line error for the first non-finite or invalid parameter value of a params dataclass."""
    for name, f in param_fields(type(obj)).items():
        value = getattr(obj, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ArtbenchError(f"invalid value {name}={value!r}: must be a finite number")
        check = f.metadata.get("check")
        if check is not None and not check(value):
            raise ArtbenchError(f"invalid value {name}={value!r}: must be {f.metadata.get('valid') or 'valid'}")


def _coerce(hint: Any, key: str, value: Any, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, int | str) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ArtbenchError(f"{source}: {key} must be a list of {item.__name__}, got {value!r}")
        return tuple(_coerce(item, key, v, source) for v in value)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(map(repr, typing.get_args(hint)))
            raise ArtbenchError(f"{source}: {key} must be one of {choices}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or len(options) != 1:
            return value
        return _coerce(options[0], key, value, source)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ArtbenchError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


def coerce_params(cls: type, values: Mapping[str, Any], source: str, *, owner: str) -> dict[str, Any]:
    """Check the keys and types of one layer of parameters of ``cls``; ``source`` names the layer in errors."""
    hints = typing.get_type_hints(cls)
    known = param_fields(cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ArtbenchError(f"{source}: {owner} has no parameter {key!r}; its parameters: {', '.join(known)}")
        out[key] = _coerce(hints[key], key, value, source)
    return out


def to_plain(obj: Any) -> dict[str, Any]:
    """A params dataclass as JSON-ready values (tuples become lists)."""
    return {name: list(v) if isinstance(v := getattr(obj, name), tuple) else v for name in param_fields(type(obj))}


def parse_set_option(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as a TOML literal, else taken as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ArtbenchError(f"--set {item!r}: expected key=value, e.g. --set lr=3e-4")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse a UTF-8 TOML file; a file that is not UTF-8 or not TOML is a user error naming ``what``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtbenchError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArtbenchError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The ``[config]`` table of a recipe file (e.g. ``baselines/silknet.toml``), not yet checked against a method."""
    path = Path(path)
    if not path.is_file():
        raise ArtbenchError(f"config file {str(path)!r} does not exist")
    data = read_toml(path, "config file")
    section = data.get("config", data)
    if not isinstance(section, dict):
        raise ArtbenchError(f"config file {str(path)!r}: [config] must be a table")
    return section
