"""Checks shared by both loaders: worker drafts -> validated `WorkerSpec`s.

Each loader turns its own syntax into `WorkerDraft`s (plain strings, each field with the
place it came from); this module applies the rules that do not depend on the format:
ids, duplicates, branch names, locations, host and pool names, GUI-only agents.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from czarina_fleet.config.problems import Problems, show_value
from czarina_fleet.config.refname import branch_name_problem
from czarina_fleet.errors import UserError, did_you_mean
from czarina_fleet.model.agents import GUI_ONLY_AGENTS, KNOWN_AGENTS
from czarina_fleet.model.config import WORKER_ID, FleetSettings, WorkerSpec
from czarina_fleet.model.location import (
    LocalLocation,
    Location,
    PoolLocation,
    RemoteLocation,
    parse_location,
)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$"
)


@dataclass
class WorkerDraft:
    """One worker as written, before validation. `where` is what WorkerSpec.where gets;
    `field_where` overrides it for fields defined elsewhere (JSON paths, override lines)."""

    id: str
    branch: str
    where: str
    agent: str = "claude"
    task_file: str | None = None
    description: str = ""
    role: str | None = None
    location: str = "local"
    field_where: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def at(self, name: str) -> str:
        return self.field_where.get(name, self.where)


@dataclass(frozen=True)
class HostNames:
    """What `remote:NAME` and `pool:NAME` may refer to, and how to tell the user."""

    hosts: frozenset[str]
    pools: frozenset[str]
    aliases: frozenset[str]
    hosts_label: str          # "REMOTE_HOSTS" or "fleet.hosts"
    ssh_config: Path | None
    agents: frozenset[str] = KNOWN_AGENTS  # built in, plus the keys of fleet.agents


def build_workers(
    drafts: list[WorkerDraft], names: HostNames, problems: Problems
) -> list[WorkerSpec]:
    """Validate drafts in order; a draft with any problem yields no WorkerSpec."""
    first_seen: dict[str, str] = {}
    workers: list[WorkerSpec] = []
    for draft in drafts:
        before = len(problems.items)
        label = f'worker "{draft.id}": '
        if not WORKER_ID.match(draft.id):
            problems.add(
                draft.at("id"),
                f'{label}id "{draft.id}" must match ^[a-z0-9-]+$; use lowercase letters, '
                f"digits and -{_id_hint(draft.id)}",
            )
        elif draft.id in first_seen:
            problems.add(
                draft.at("id"),
                f"{label}duplicate worker id, first defined at {first_seen[draft.id]}; "
                "give each worker its own id",
            )
        else:
            first_seen[draft.id] = draft.at("id")
        why = branch_name_problem(draft.branch)
        if why:
            problems.add(
                draft.at("branch"),
                f'{label}branch "{draft.branch}" is not a valid git branch name: it {why}; '
                "choose a name such as feat/v1-backend",
            )
        _check_agent(draft, names.agents, problems)
        location = check_location_draft(draft, names, problems)
        if len(problems.items) == before and location is not None:
            spec = _make_spec(draft, location, problems)
            if spec is not None:
                workers.append(spec)
    return workers


def _id_hint(worker_id: str) -> str:
    fixed = re.sub(r"[^a-z0-9-]+", "-", worker_id.lower()).strip("-")
    return f'; did you mean "{fixed}"?' if fixed and fixed != worker_id else ""


def _check_agent(draft: WorkerDraft, agents: frozenset[str], problems: Problems) -> None:
    """`agent` names an agent (built in or a key of fleet.agents); it is never run as a
    command, so anything else is a mistake, not a shell line to try."""
    if draft.agent in agents:
        return
    hint = did_you_mean(draft.agent, agents)
    problems.add(
        draft.at("agent"),
        f'worker "{draft.id}": unknown agent "{show_value(draft.agent)[1:-1]}"{hint}; an '
        f"agent is a name: use one of {', '.join(sorted(agents))}, or give yours a start "
        'command in fleet.agents ("agents": {"NAME": "COMMAND"})',
    )


def check_location_draft(
    draft: WorkerDraft, names: HostNames, problems: Problems
) -> Location | None:
    label = f'worker "{draft.id}": '
    where = draft.at("location")
    try:
        location = parse_location(draft.location)
    except UserError as e:
        problems.add(where, label + e.detail)
        return None
    if isinstance(location, RemoteLocation) and not location.is_literal:
        known = names.hosts | names.aliases
        if location.host not in known:
            hint = did_you_mean(f"remote:{location.host}", [f"remote:{h}" for h in known])
            ssh = names.ssh_config or "~/.ssh/config"
            problems.add(
                where,
                f'{label}unknown host "{location.host}" in "{draft.location}"; define it in '
                f"{names.hosts_label} or as a Host in {ssh}, or write "
                f"remote:USER@HOST[:PORT]{hint}",
            )
            return None
    if isinstance(location, PoolLocation) and location.pool not in names.pools:
        hint = did_you_mean(f"pool:{location.pool}", [f"pool:{p}" for p in names.pools])
        problems.add(
            where,
            f'{label}unknown pool "{location.pool}"; define it under fleet.pools '
            f"(pools: {', '.join(sorted(names.pools)) or 'none'}){hint}",
        )
        return None
    if draft.agent in GUI_ONLY_AGENTS and not isinstance(location, LocalLocation):
        problems.add(
            where,
            f'{label}agent "{draft.agent}" has no command-line interface, so it cannot run '
            f'at "{location}"; set the location to local or use a CLI agent such as claude',
        )
        return None
    return location


def _make_spec(draft: WorkerDraft, location: Location, problems: Problems) -> WorkerSpec | None:
    data: dict[str, Any] = dict(draft.extra)
    data.update(
        id=draft.id, branch=draft.branch, agent=draft.agent, task_file=draft.task_file,
        description=draft.description, role=draft.role, location=location, where=draft.where,
    )
    try:
        return WorkerSpec.model_validate(data)
    except (ValidationError, ValueError, TypeError) as e:  # defensive: drafts are pre-checked
        problems.add(draft.where, f'worker "{draft.id}": invalid worker ({show_value(str(e))})')
        return None


def check_fleet_names(
    fleet: FleetSettings, host_where: list[str], pool_where: list[str], problems: Problems
) -> None:
    """Duplicate host/pool names and host addresses that are neither names nor IPs."""
    seen: dict[str, str] = {}
    for host, where in zip(fleet.hosts, host_where, strict=False):
        if host.name in seen:
            problems.add(where, f'host "{host.name}": duplicate host name, first defined at '
                         f"{seen[host.name]}; give each host its own name")
        seen.setdefault(host.name, where)
        if not _valid_address(host.host):
            problems.add(where, f'host "{host.name}": malformed address "{host.host}"; use a '
                         "host name, an IPv4 address or an IPv6 address")
    pools: dict[str, str] = {}
    for pool, where in zip(fleet.pools, pool_where, strict=False):
        if pool.name in pools:
            problems.add(where, f'pool "{pool.name}": duplicate pool name, first defined at '
                         f"{pools[pool.name]}; give each pool its own name")
        pools.setdefault(pool.name, where)


def _valid_address(host: str) -> bool:
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.strip("[]"))
            return True
        except ValueError:
            return False
    return bool(_HOSTNAME.match(host))


def host_names(fleet: FleetSettings, aliases: frozenset[str], hosts_label: str,
               ssh_config: Path | None, extra_agents: frozenset[str] = frozenset()) -> HostNames:
    return HostNames(
        hosts=frozenset(h.name for h in fleet.hosts),
        pools=frozenset(p.name for p in fleet.pools),
        aliases=aliases, hosts_label=hosts_label, ssh_config=ssh_config,
        agents=KNOWN_AGENTS | frozenset(fleet.agents) | extra_agents,
    )
