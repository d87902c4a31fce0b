"""Collecting every problem in a config file, and turning pydantic's errors into ours.

Loaders report all problems at once (a user fixing a file wants the whole list), so
each check appends to a `Problems` and the loader raises one `ConfigError` at the end.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from czarina_fleet.errors import ConfigError, UserError, did_you_mean

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Problems:
    items: list[UserError] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(UserError(message, where=where))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(list(self.items))


def json_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """`("fleet", "hosts", 0, "port")` -> `$.fleet.hosts[0].port`."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += "[" + json.dumps(part) + "]"
    return out


def show_value(value: Any) -> str:
    """A short JSON-ish rendering of a user's value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_validation_errors(
    problems: Problems,
    err: ValidationError,
    *,
    file: str,
    prefix: tuple[int | str, ...],
    model: type[BaseModel],
    label: str = "",
) -> None:
    """Append one problem per pydantic error, located by JSON path under `prefix`."""
    for item in err.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        where = f"{file}: {json_path(prefix + loc)}"
        problems.add(where, label + _message(item, loc, model))


def _message(item: Any, loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    kind = item.get("type", "")
    key = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = did_you_mean(str(key), known)
        listed = ", ".join(known)
        return f'unknown key "{key}"; remove it or use one of: {listed}{hint}'
    if kind == "missing":
        return f'missing required key "{key}"; add it'
    msg = str(item.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = msg[:1].lower() + msg[1:]
    return f"{msg} (got {show_value(item.get('input'))}); change this value"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not _is_model(current) or part not in current.model_fields:
            return []
        current = _inner_model(current.model_fields[part].annotation)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside `list[X]`, `X | None`, ... or None."""
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
