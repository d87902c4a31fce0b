"""A worker's task text, read from its task file when the worker starts: a file that
cannot be read (or holds what may not be typed into a terminal) is an error naming the
worker and the file; an empty one means no task yet."""

from __future__ import annotations

from czarina_fleet.config import task_path
from czarina_fleet.errors import FleetError
from czarina_fleet.model.config import FleetConfig, WorkerSpec
from czarina_fleet.remote.validate import check_task_text


class TaskFileMissing(FleetError):
    pass


def read_task_text(cfg: FleetConfig, spec: WorkerSpec) -> str | None:
    """The text to type into `spec`'s agent when it starts: its task file, checked
    (check_task_text); None when it has none or the file is still empty. Raises
    TaskFileMissing, naming the worker, the file and the fix."""
    path = task_path(cfg, spec)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskFileMissing(f"{spec.where}: worker \"{spec.id}\": cannot read its task "
                              f"file {path} ({e}); create it or fix task_file") from None
    if not text.strip():
        return None  # written later: the agent starts with no task yet
    try:
        return check_task_text(text)
    except ValueError as e:
        raise TaskFileMissing(f"{spec.where}: worker \"{spec.id}\": task file {path}: "
                              f"{e}") from None
