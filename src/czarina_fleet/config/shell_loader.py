"""Loader for legacy `config.sh` files, evaluated statically by `shell_parse`.

Variables used: WORKER_DEFINITIONS, REMOTE_HOSTS, MIN_WORKERS, MAX_WORKERS, AUTO_SCALE,
WORKER_CLOUD_CONFIG, WORKER_K8S_CONFIG, PROJECT_ROOT, PROJECT_NAME, PROMPTS_DIR,
SLOW_THRESHOLD, STUCK_THRESHOLD, FLEET_REPOSITORY_URL, FLEET_REPOSITORY_PUSH_URL. Every
other variable is ignored, whatever its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from czarina_fleet.config.paths import config_base_dir, project_root_for
from czarina_fleet.config.problems import Problems
from czarina_fleet.config.resolve import WorkerDraft, build_workers, check_fleet_names, host_names
from czarina_fleet.config.shell_parse import ShellVar, Unknown, parse_shell
from czarina_fleet.errors import ConfigError, UserError, did_you_mean
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    HealthThresholds,
    ProjectInfo,
    ScalingLimits,
    StaticHost,
)
from czarina_fleet.model.location import RemoteLocation, parse_location

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_WORKER_FORMAT = "ID|BRANCH|TASK_FILE|DESCRIPTION[|LOCATION]"
_HOST_FORMAT = "NAME:USER@HOST:PORT:/PATH"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


@dataclass
class _Ctx:
    file: str
    vars: dict[str, ShellVar]
    problems: Problems
    warnings: list[str] = field(default_factory=list)

    def at(self, line: int) -> str:
        return f"{self.file}:{line}"

    def scalar(self, name: str, *, soft: bool = False) -> tuple[str | None, int]:
        """The value of `name` (None when unset or unknown; unknown is reported)."""
        var = self.vars.get(name)
        if var is None:
            return None, 0
        value = var.items[0][0] if var.items else var.value if var.items is None else ""
        if isinstance(value, Unknown):
            message = f"{name} cannot be determined: {value.reason}"
            if soft:
                self.warnings.append(f"{self.at(var.line)}: {message}")
            else:
                self.problems.add(self.at(var.line), message)
            return None, var.line
        return value, var.line

    def array(self, name: str) -> list[tuple[str, int]] | None:
        """The elements of `name` with their lines (None when unset); unknown ones reported."""
        var = self.vars.get(name)
        if var is None:
            return None
        items = var.items if var.items is not None else ((var.value or "", var.line),)
        out: list[tuple[str, int]] = []
        for value, line in items:
            if isinstance(value, Unknown):
                self.problems.add(self.at(line), f"{name} element cannot be determined: "
                                  f"{value.reason}")
            else:
                out.append((value, line))
        return out


def load_shell_text(
    text: str, path: Path, *, aliases: frozenset[str], ssh_config: Path | None
) -> FleetConfig:
    """Evaluate `text` statically and validate it; raises ConfigError with every problem."""
    file = str(path)
    try:
        variables = parse_shell(text, path)
    except UserError as e:
        raise ConfigError([UserError(e.detail, where=f"{file}:{e.where}")]) from None
    ctx = _Ctx(file, variables, Problems())
    hosts, host_where = _remote_hosts(ctx)
    drafts = _worker_definitions(ctx)
    k8s = _apply_overrides(ctx, drafts)
    url, _ = ctx.scalar("FLEET_REPOSITORY_URL")
    push_url, _ = ctx.scalar("FLEET_REPOSITORY_PUSH_URL")
    fleet = FleetSettings(hosts=hosts, scaling=_scaling(ctx), health=_health(ctx), k8s=k8s,
                          repository_url=url or None, repository_push_url=push_url or None)
    workers = build_workers(drafts, host_names(fleet, aliases, "REMOTE_HOSTS", ssh_config),
                            ctx.problems)
    check_fleet_names(fleet, host_where, [], ctx.problems)
    base = config_base_dir(path)
    name, _ = ctx.scalar("PROJECT_NAME", soft=True)
    root_text, _ = ctx.scalar("PROJECT_ROOT", soft=True)
    prompts_dir = _prompts_dir(ctx, path)
    ctx.problems.items.sort(key=_line_of)  # in file order, as a person fixes them
    ctx.problems.raise_if_any()
    root = project_root_for(path, root_text, "PROJECT_ROOT", ctx.warnings)
    project = ProjectInfo(name=name or root.name or base.name, repository=root_text)
    return FleetConfig(
        source=path, format="shell", project=project, project_root=root, workers=workers,
        fleet=fleet, warnings=ctx.warnings, prompts_dir=prompts_dir,
    )


def _prompts_dir(ctx: _Ctx, path: Path) -> Path:
    """PROMPTS_DIR (relative to the config's directory), else <config dir>/prompts as
    upstream's example sets it."""
    config_dir = path.absolute().parent
    text, _ = ctx.scalar("PROMPTS_DIR")
    if not text:
        return config_dir / "prompts"
    try:
        return config_dir / Path(text).expanduser()
    except RuntimeError:  # ~user that does not exist
        return config_dir / text


def _worker_definitions(ctx: _Ctx) -> list[WorkerDraft]:
    items = ctx.array("WORKER_DEFINITIONS")
    if items is None:
        if "WORKER_DEFINITIONS" not in ctx.vars:
            ctx.problems.add(ctx.file, f'WORKER_DEFINITIONS is not set; add WORKER_DEFINITIONS=('
                             f'"{_WORKER_FORMAT}" ...)')
        return []
    if not items and "WORKER_DEFINITIONS" in ctx.vars:
        ctx.warnings.append(f"{ctx.at(ctx.vars['WORKER_DEFINITIONS'].line)}: "
                            "WORKER_DEFINITIONS is empty: this configuration defines no workers")
    drafts: list[WorkerDraft] = []
    for value, line in items:
        fields = [f.strip() for f in value.split("|")]
        if len(fields) not in (4, 5):
            ctx.problems.add(ctx.at(line), f'worker definition "{_clip(value)}" has '
                             f"{len(fields)} field(s); write {_WORKER_FORMAT}")
            continue
        worker_id, branch, task_file, description = fields[:4]
        drafts.append(WorkerDraft(
            id=worker_id, branch=branch, where=ctx.at(line), task_file=task_file or None,
            description=description, location=fields[4] if len(fields) == 5 else "local",
        ))
    return drafts


def _apply_overrides(ctx: _Ctx, drafts: list[WorkerDraft]) -> list[str]:
    """WORKER_CLOUD_CONFIG / WORKER_K8S_CONFIG: `ID|LOCATION` sets that worker's location."""
    by_id = {d.id: d for d in drafts}
    first: dict[str, str] = {}
    kept: list[str] = []
    for var in ("WORKER_CLOUD_CONFIG", "WORKER_K8S_CONFIG"):
        for value, line in ctx.array(var) or []:
            worker_id, sep, location = (p.strip() for p in value.partition("|"))
            where = ctx.at(line)
            if not sep or not worker_id or not location or "|" in location:
                ctx.problems.add(where, f'{var} entry "{_clip(value)}" is malformed; write '
                                 "ID|LOCATION, e.g. backend|aws-spot:t3.large:us-east-1")
                continue
            if var == "WORKER_K8S_CONFIG":
                kept.append(value)
                if not location.startswith("k8s:"):
                    ctx.problems.add(where, f'worker "{worker_id}": {var} location "{location}" '
                                     "must start with k8s:; move it to WORKER_CLOUD_CONFIG or "
                                     "write k8s:TEMPLATE[:POD]")
                    continue
            draft = by_id.get(worker_id)
            if draft is None:
                ctx.problems.add(where, f'worker "{worker_id}": {var} names no worker in '
                                 f"WORKER_DEFINITIONS; fix the id{did_you_mean(worker_id, by_id)}")
            elif worker_id in first:
                ctx.problems.add(where, f'worker "{worker_id}": location already set at '
                                 f"{first[worker_id]}; keep one of the two")
            else:
                first[worker_id] = where
                draft.location = location
                draft.field_where["location"] = where
    return kept


def _remote_hosts(ctx: _Ctx) -> tuple[list[StaticHost], list[str]]:
    hosts: list[StaticHost] = []
    wheres: list[str] = []
    for value, line in ctx.array("REMOTE_HOSTS") or []:
        host = _host_spec(ctx, value.strip(), ctx.at(line))
        if host is not None:
            hosts.append(host)
            wheres.append(ctx.at(line))
    return hosts, wheres


def _host_spec(ctx: _Ctx, spec: str, where: str) -> StaticHost | None:
    name, sep, rest = spec.partition(":")
    if not sep or not rest or not _HOST_NAME.match(name):
        ctx.problems.add(where, f'malformed host spec "{_clip(spec)}": the first field must '
                         f"be the host's name; write {_HOST_FORMAT}")
        return None
    # the path starts at the first ":/" or ":~" (an IPv6 address in brackets has neither)
    m = re.search(r":(?=[/~])", rest)
    remote, work_dir = (rest[:m.start()], rest[m.end():]) if m else (rest, None)
    try:
        location = parse_location("remote:" + remote.removesuffix(":"))
    except UserError as e:
        ctx.problems.add(where, f'host "{name}": {e.detail}; write {_HOST_FORMAT}')
        return None
    if not isinstance(location, RemoteLocation):  # pragma: no cover - "remote:" always is
        return None
    given: dict[str, Any] = {"work_dir": work_dir} if work_dir else {}
    try:
        return StaticHost(name=name, host=location.host, user=location.user,
                          port=location.port, **given)
    except ValidationError as e:
        ctx.problems.add(where, f'host "{name}": malformed host spec ({e.error_count()} '
                         f"problem(s)); write {_HOST_FORMAT}")
        return None


def _scaling(ctx: _Ctx) -> ScalingLimits:
    low, low_line = _count(ctx, "MIN_WORKERS")
    high, high_line = _count(ctx, "MAX_WORKERS")
    auto_text, auto_line = ctx.scalar("AUTO_SCALE")
    auto = False
    if auto_text is not None:
        if auto_text.strip().lower() in _TRUE | _FALSE:
            auto = auto_text.strip().lower() in _TRUE
        else:
            ctx.problems.add(ctx.at(auto_line), f'AUTO_SCALE must be true or false (got '
                             f'"{_clip(auto_text)}")')
    defaults = ScalingLimits()
    low = defaults.min_workers if low is None else low
    if high is None:
        high = max(defaults.max_workers, low)
    elif low > high:
        ctx.problems.add(ctx.at(low_line), f"MIN_WORKERS ({low}) is greater than MAX_WORKERS "
                         f"({high}, line {high_line}); lower MIN_WORKERS or raise MAX_WORKERS")
        low = high
    return ScalingLimits(min_workers=low, max_workers=high, auto_scale=auto)


def _count(ctx: _Ctx, name: str) -> tuple[int | None, int]:
    text, line = ctx.scalar(name)
    if text is None:
        return None, line
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 9:
        ctx.problems.add(ctx.at(line), f'{name} must be a whole number from 0 to 999999999 '
                         f'(got "{_clip(text)}")')
        return None, line
    return int(text), line


def _health(ctx: _Ctx) -> HealthThresholds:
    values: dict[str, float] = {}
    for var, key in (("SLOW_THRESHOLD", "slow_after_s"), ("STUCK_THRESHOLD", "stuck_after_s")):
        count, _ = _count(ctx, var)
        if count is not None:
            values[key] = float(count)
    return HealthThresholds(**values)


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _line_of(problem: UserError) -> int:
    """The line a problem's `file:line` names (0: the whole file)."""
    _, _, line = (problem.where or "").rpartition(":")
    return int(line) if line.isdigit() else 0
