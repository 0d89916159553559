"""YAML config files validated by pydantic models, with one readable error listing every problem.

Shared by every package's configs (training, promotion policy, drift), so it lives in the bottom layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from embedops.core.errors import ConfigError
from embedops.core.text import unicode_problem

C = TypeVar("C", bound=BaseModel)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    _check_strings(values, path)
    return values


def resolve_relative_paths(values: dict[str, Any], keys: Iterable[str], config_file: str | Path) -> None:
    """Rewrite, in place, each of ``keys`` in ``values`` that holds a relative path as an absolute one read
    from the folder of ``config_file``, so a config means the same whatever folder it is run from. URIs
    (anything with ``:/``, e.g. ``models:/name/1``, ``s3://...``), absolute and ``~`` paths, missing keys
    and values that are not strings are left as written (validation reports those)."""
    folder = Path(config_file).resolve().parent
    for key in keys:
        value = values.get(key)
        if isinstance(value, str) and ":/" not in value and not Path(value).expanduser().is_absolute():
            values[key] = str((folder / value).resolve())


def _check_strings(values: dict[str, Any], path: Path) -> None:
    """Refuse YAML's "\\ud800" escapes anywhere in the file: they reach paths and names, where they crash
    with a UnicodeEncodeError (resolving a path) instead of a ConfigError naming the setting."""
    todo: list[tuple[str, Any]] = [("", values)]
    seen: set[int] = set()  # YAML anchors can make a list that contains itself
    while todo:
        where, value = todo.pop()
        if isinstance(value, str):
            if problem := unicode_problem(value):
                raise ConfigError(f"{path}: {where}: {problem}")
            continue
        if not isinstance(value, dict | list) or id(value) in seen:
            continue
        seen.add(id(value))
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(key, str) and (problem := unicode_problem(key)):
                raise ConfigError(f"{path}: a key under {where or 'the top level'}: {problem}")
            todo.append((f"{where}.{key}" if where else str(key), item))


def build_config(cls: type[C], values: dict[str, Any], *, source: str, what: str = "config") -> C:
    """Validate, turning pydantic's report into one ConfigError that lists every problem."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or what
            msg = "unknown setting (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {msg}")
        raise ConfigError(f"invalid {what} ({source}): " + "; ".join(problems)) from None
    except UnicodeError:
        # YAML's "\ud800" escapes decode to lone surrogates, which no string field can hold.
        raise ConfigError(f"invalid {what} ({source}): text with escaped surrogates is not valid Unicode") from None
