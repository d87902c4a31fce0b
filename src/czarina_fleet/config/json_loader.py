"""Loader for `.czarina/config.json` (upstream Czarina's format, plus `location` and `fleet`).

Upstream keys we do not use are accepted and kept, at the top level and per worker;
upstream's own files stray from its schema (`"role": "qa"`), so only what czarina-fleet
acts on is checked. The `fleet` object is ours and is checked strictly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from czarina_fleet.config.paths import project_root_for
from czarina_fleet.config.problems import Problems, add_validation_errors, json_path
from czarina_fleet.config.resolve import (
    WorkerDraft,
    build_workers,
    check_fleet_names,
    host_names,
)
from czarina_fleet.errors import did_you_mean
from czarina_fleet.model.config import FleetConfig, FleetSettings, ProjectInfo

# Worker keys we interpret; upstream's are kept as they are.
_OURS = ("id", "branch", "agent", "task_file", "description", "role", "location")
# The worker keys of upstream's schema (czarina-examples/config-schema.json) and those
# its own files use. A key near one of these (or ours) is a typo and an error; any other
# key is reported as unused and kept.
UPSTREAM_WORKER_KEYS = ("first_action", "versions", "token_budget", "dependencies", "merges",
                        "planned_duration", "rules", "memory")
_KNOWN_WORKER_KEYS = (*_OURS, *UPSTREAM_WORKER_KEYS)


def load_json_text(
    text: str, path: Path, *, aliases: frozenset[str], ssh_config: Path | None
) -> FleetConfig:
    """Parse and validate; raises ConfigError listing every problem found."""
    file = str(path)
    problems = Problems()
    data = _parse(text, file, problems)
    problems.raise_if_any()
    if not isinstance(data, dict):
        problems.add(f"{file}: $", "the top level must be a JSON object ({...}); "
                     'it needs at least "workers": [...]')
        problems.raise_if_any()
    warnings: list[str] = []
    project = _project(data, file, problems)
    fleet, raw_host_names = _fleet(data, file, problems)
    drafts = _drafts(data, file, problems, warnings)
    agents = _raw_agent_names(data)  # even when fleet is invalid, as raw_host_names
    names = host_names(fleet, aliases, "fleet.hosts", ssh_config, agents)
    if raw_host_names:  # fleet was invalid: still resolve remote:NAME against what it names
        names = host_names(fleet, aliases | raw_host_names, "fleet.hosts", ssh_config, agents)
    workers = build_workers(drafts, names, problems)
    check_fleet_names(
        fleet,
        [f"{file}: $.fleet.hosts[{i}]" for i in range(len(fleet.hosts))],
        [f"{file}: $.fleet.pools[{i}]" for i in range(len(fleet.pools))],
        problems,
    )
    problems.raise_if_any()
    root = project_root_for(path, project.repository, "project.repository", warnings)
    return FleetConfig(
        source=path, format="json", project=project, project_root=root, workers=workers,
        fleet=fleet, warnings=warnings, prompts_dir=path.absolute().parent,
    )


def _parse(text: str, file: str, problems: Problems) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        problems.add(f"{file}:{e.lineno}:{e.colno}", f"invalid JSON: {e.msg}; fix the syntax here")
    except RecursionError:
        problems.add(file, "invalid JSON: nested too deeply; flatten the structure")
    return None


def _project(data: dict[str, Any], file: str, problems: Problems) -> ProjectInfo:
    raw = data.get("project", {})
    if not isinstance(raw, dict):
        problems.add(f"{file}: $.project", 'must be an object such as {"name": "my-project"}')
        return ProjectInfo()
    try:
        return ProjectInfo.model_validate(raw)
    except ValidationError as e:
        add_validation_errors(problems, e, file=file, prefix=("project",), model=ProjectInfo)
        return ProjectInfo()


def _fleet(
    data: dict[str, Any], file: str, problems: Problems
) -> tuple[FleetSettings, frozenset[str]]:
    raw = data.get("fleet", {})
    try:
        return FleetSettings.model_validate(raw), frozenset()
    except ValidationError as e:
        add_validation_errors(problems, e, file=file, prefix=("fleet",), model=FleetSettings)
    hosts = raw.get("hosts") if isinstance(raw, dict) else None
    named = {
        h["name"] for h in (hosts if isinstance(hosts, list) else [])
        if isinstance(h, dict) and isinstance(h.get("name"), str)
    }
    return FleetSettings(), frozenset(named)


def _raw_agent_names(data: dict[str, Any]) -> frozenset[str]:
    fleet = data.get("fleet")
    agents = fleet.get("agents") if isinstance(fleet, dict) else None
    return frozenset(k for k in agents if isinstance(k, str)) if isinstance(agents, dict) \
        else frozenset()


def _drafts(
    data: dict[str, Any], file: str, problems: Problems, warnings: list[str]
) -> list[WorkerDraft]:
    if "workers" not in data:
        warnings.append(f'{file}: no "workers" list: this configuration defines no workers')
        return []
    raw = data["workers"]
    if not isinstance(raw, list):
        problems.add(f"{file}: $.workers", "must be a list of worker objects")
        return []
    drafts: list[WorkerDraft] = []
    for i, item in enumerate(raw):
        draft = _draft(item, i, file, problems, warnings)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _draft(item: Any, i: int, file: str, problems: Problems,
           warnings: list[str]) -> WorkerDraft | None:
    base = f"{file}: {json_path(('workers', i))}"
    if not isinstance(item, dict):
        problems.add(base, 'each worker must be an object with "id", "agent" and "branch"')
        return None
    label = f'worker "{item["id"]}": ' if isinstance(item.get("id"), str) else f"worker #{i}: "
    values: dict[str, str | None] = {}
    ok = True
    for key, required, default in (
        ("id", True, None), ("branch", True, None), ("agent", False, "claude"),
        ("task_file", False, None), ("description", False, ""), ("role", False, None),
        ("location", False, "local"),
    ):
        value = item.get(key, default)
        if key not in item and required:
            problems.add(base, f'{label}missing required key "{key}"; add it')
            ok = False
        elif value is None and key in ("task_file", "role"):
            values[key] = None
        elif not isinstance(value, str):
            problems.add(f"{base}.{key}", f'{label}"{key}" must be a string')
            ok = False
        else:
            values[key] = value
    _unknown_keys(item, base, label, problems, warnings)
    if not ok:
        return None
    return WorkerDraft(
        id=values["id"] or "", branch=values["branch"] or "", where=base,
        agent=values["agent"] or "claude", task_file=values["task_file"],
        description=values["description"] or "", role=values["role"],
        location=values["location"] or "local",
        field_where={k: f"{base}.{k}" for k in _OURS},
        extra={k: v for k, v in item.items() if k not in _OURS and k != "where"},
    )


def _unknown_keys(item: dict[str, Any], base: str, label: str, problems: Problems,
                  warnings: list[str]) -> None:
    """A typo of a known key (`locaton`) would silently fall back to a default (the
    worker runs locally): an error naming the key meant. Other keys are kept, noted."""
    for key in item:
        if key in _KNOWN_WORKER_KEYS or not isinstance(key, str):
            continue
        hint = did_you_mean(key, _KNOWN_WORKER_KEYS)
        if hint:
            problems.add(f"{base}.{key}", f'{label}unknown key "{key}"{hint} Rename it')
        else:
            warnings.append(f'{base}.{key}: {label}key "{key}" is not used by czarina-fleet '
                            "(kept as it is)")
