"""The `filter` grammar of Compute Engine list calls, as the discovery document's
description of the `filter` parameter states it, parsed and evaluated for the fake.

From that description (tests/data/cloud-specs/gcp/compute.v1.json, `instances.list`):
- an AIP-160 term is `field op value`, op one of `= != > < <= >= :`; `labels.owner:*`
  tests that a key is defined; nested fields are dotted;
- "To filter on multiple expressions, provide each separate expression within
  parentheses"; juxtaposed terms are ANDed, `AND` / `OR` may be written between them;
- a regular-expression term uses `eq` / `ne`, either as a single un-parenthesized
  expression (the literal is the rest of the filter) or as parenthesized terms;
- "These two types of filter expressions cannot be mixed in one request".
So `a = "x" AND b = "y"` (two terms, no parentheses) is refused: that is the rule the
fake enforces. AND / OR precedence follows AIP-160 (OR binds tighter than AND)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FIELD = r"[A-Za-z_][\w-]*(?:\.[\w-]+)*"
REGEX_OPS = ("eq", "ne")
_TERM = re.compile(rf"\s*(?P<field>{FIELD})\s*(?P<op><=|>=|!=|=|<|>|:|\beq\b|\bne\b)\s*"
                   rf"(?P<value>.*?)\s*$", re.S)


class FilterError(ValueError):
    """The filter breaks the documented grammar; the message says how."""


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str  # unquoted
    quoted: bool


Expr = list[list[Term]]  # AND of (OR of terms)


def parse(text: str) -> Expr:
    text = text.strip()
    if not text:
        return []
    if not text.startswith("("):
        return [[_term(text)]]  # a single un-parenthesized expression
    groups: Expr = []
    pending_or = False
    rest = text
    while rest:
        if not rest.startswith("("):
            raise FilterError(f"expected '(' at {rest[:30]!r}: combine expressions by putting "
                              f"each within parentheses")
        inner, rest = _paren(rest)
        term = _term(inner)
        if pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        rest, pending_or = _connective(rest)
    if pending_or or text.rstrip().endswith(("AND", "OR")):
        raise FilterError("the filter ends with AND/OR")
    kinds = {t.op in REGEX_OPS for group in groups for t in group}
    if len(kinds) > 1:
        raise FilterError("regular-expression (eq/ne) and AIP-160 expressions are mixed")
    return groups


def _paren(text: str) -> tuple[str, str]:
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1:].lstrip()
    raise FilterError("unbalanced parentheses")


def _connective(rest: str) -> tuple[str, bool]:
    for word, is_or in (("AND", False), ("OR", True)):
        if re.match(rf"{word}\b", rest):
            return rest[len(word):].lstrip(), is_or
    return rest, False


def _term(text: str) -> Term:
    m = _TERM.match(text)
    if m is None:
        raise FilterError(f"{text!r} is not `field operator value`")
    value, op = m["value"], m["op"]
    if value[:1] in ("'", '"'):
        close = _closing_quote(value)
        if close is None:
            raise FilterError(f"{text!r}: unbalanced quotes")
        if value[close + 1:].strip():
            raise FilterError(f"{text!r} holds more than one expression: put each expression "
                              f"within parentheses")
        if value[0] == "'" and op not in REGEX_OPS:
            raise FilterError(f"{text!r}: single quotes are for eq/ne expressions")
        return Term(m["field"], op, value[1:close].replace('\\"', '"'), True)
    if op not in REGEX_OPS and (not value or re.search(r"\s", value)):
        raise FilterError(f"{text!r}: the value must be one string, number or boolean; put "
                          f"each expression within parentheses")
    return Term(m["field"], op, value, False)


def _closing_quote(value: str) -> int | None:
    for i in range(1, len(value)):
        if value[i] == value[0] and value[i - 1] != "\\":
            return i
    return None


def fields(expr: Expr) -> list[str]:
    return [t.field for group in expr for t in group]


def matches(expr: Expr, resource: dict[str, Any]) -> bool:
    return all(any(_holds(t, resource) for t in group) for group in expr)


def _holds(term: Term, resource: dict[str, Any]) -> bool:
    actual = _lookup(resource, term.field)
    if term.op == ":":
        return actual is not None if term.value == "*" else term.value in str(actual or "")
    if term.op in REGEX_OPS:
        hit = actual is not None and re.fullmatch(term.value, _text(actual)) is not None
        return hit if term.op == "eq" else not hit
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    if actual is None:
        return term.op == "!="
    return compare[term.op](_text(actual), term.value)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _lookup(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
