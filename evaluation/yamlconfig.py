"""YAML config files validated by pydantic models, with one readable error listing every problem.

Shared by every package's configs (training, promotion policy, drift), so it lives in the bottom layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from evaluation.errors import ConfigError

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
    return values


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
