"""Where a worker's task file is, and which ones are missing.

A missing task file is only a warning while checking a config (upstream's own example
points at prompts that are written later); the caller raises when it is about to start
that worker.
"""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.config.paths import safe_exists
from czarina_fleet.model.config import FleetConfig, WorkerSpec


def task_path(cfg: FleetConfig, worker: WorkerSpec) -> Path | None:
    """The task file to inject into `worker`, or None when it has none.

    A relative `task_file` resolves against `cfg.prompts_dir` (PROMPTS_DIR for config.sh,
    the directory holding config.json). Without a `task_file`, a JSON worker uses
    upstream's `workers/<id>.md` beside config.json when that file exists.
    """
    base = cfg.prompts_dir or cfg.source.absolute().parent
    if worker.task_file:
        try:
            path = Path(worker.task_file).expanduser()
        except RuntimeError:  # "~user" that does not exist: keep it literal
            path = Path(worker.task_file)
        return path if path.is_absolute() else base / path
    if cfg.format == "json":
        default = base / "workers" / f"{worker.id}.md"
        return default if safe_exists(default) else None
    return None


def check_task_files(cfg: FleetConfig) -> list[str]:
    """One warning per worker whose task file is named but not there."""
    warnings: list[str] = []
    for worker in cfg.workers:
        path = task_path(cfg, worker)
        if path is not None and not (safe_exists(path) and path.is_file()):
            warnings.append(
                f'{worker.where}: worker "{worker.id}": task file not found: looked for '
                f"{path}; create it before starting this worker"
            )
    return warnings
