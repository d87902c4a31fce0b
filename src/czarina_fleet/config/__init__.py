"""Configuration loaders: .czarina/config.json and legacy config.sh.

    find_config(start) -> Path
    load_config(path, ssh_config=None) -> FleetConfig     (raises ConfigError)
    task_path(cfg, worker) -> Path | None
    check_task_files(cfg) -> list[str]                     (warnings)
    check_location(cfg, worker_id, text) -> Location       (raises UserError)
"""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.config.discover import find_config
from czarina_fleet.config.json_loader import load_json_text
from czarina_fleet.config.ssh_config import default_ssh_config, ssh_aliases
from czarina_fleet.config.tasks import check_task_files, task_path
from czarina_fleet.errors import ConfigError, UserError
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.model.location import Location

__all__ = ["check_location", "check_task_files", "find_config", "load_config", "task_path"]


def load_config(path: Path, *, ssh_config: Path | None = None) -> FleetConfig:
    """Load `path` (JSON when it ends in .json, else config.sh syntax).

    `ssh_config` (default ~/.ssh/config) supplies Host aliases `remote:NAME` may use.
    Raises ConfigError listing every problem, each with FILE:LINE or FILE: JSON-path.
    No code from the file is run.
    """
    text = _read(path)
    ssh_path = ssh_config if ssh_config is not None else default_ssh_config()
    aliases = ssh_aliases(ssh_path)
    if path.suffix == ".json":
        return load_json_text(text, path, aliases=aliases, ssh_config=ssh_path)
    from czarina_fleet.config.shell_loader import load_shell_text

    return load_shell_text(text, path, aliases=aliases, ssh_config=ssh_path)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError([UserError(f"cannot read the file: {reason}", where=str(path))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            [UserError(f"not UTF-8 text (byte 0x{data[e.start]:02x}); save it as UTF-8",
                       where=f"{path}:{line}")]
        ) from None


def check_location(cfg: FleetConfig, worker_id: str, text: str, *,
                   ssh_config: Path | None = None) -> Location:
    """`text` as a location for worker `worker_id`, checked exactly as the loaders check a
    location written in the file (`czarina scale --to` uses it). Raises UserError."""
    from czarina_fleet.config.problems import Problems
    from czarina_fleet.config.resolve import WorkerDraft, check_location_draft, host_names

    spec = cfg.worker(worker_id)
    if spec is None:
        raise UserError(f'no worker "{worker_id}" in {cfg.source}')
    ssh_path = ssh_config if ssh_config is not None else default_ssh_config()
    label = "REMOTE_HOSTS" if cfg.format == "shell" else "fleet.hosts"
    names = host_names(cfg.fleet, ssh_aliases(ssh_path), label, ssh_path)
    problems = Problems()
    draft = WorkerDraft(id=spec.id, branch=spec.branch, where="", agent=spec.agent,
                        location=text)
    location = check_location_draft(draft, names, problems)
    if location is None or problems:
        raise UserError("; ".join(p.detail for p in problems.items))
    return location
