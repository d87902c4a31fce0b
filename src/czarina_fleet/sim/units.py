"""Durations and the strict base model the trace format is built from."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from czarina_fleet.errors import UserError
from czarina_fleet.model.location import parse_location

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text such as "90s", "15m", "1h30m", "2d"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as \"15m\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _PART.sub("", text) == "":
            return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a duration: use seconds (90) or a text such as "
                     "\"90s\", \"15m\", \"2h\", \"1h30m\", \"1d\"")


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_location(text: str | None) -> str | None:
    if text is not None:
        try:
            parse_location(text)
        except UserError as e:
            raise ValueError(e.detail) from None
    return text
