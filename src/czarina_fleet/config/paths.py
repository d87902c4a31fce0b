"""Path helpers that never raise on odd user input (NUL bytes, over-long names)."""

from __future__ import annotations

from pathlib import Path


def safe_exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def config_base_dir(config_path: Path) -> Path:
    """The project directory a config file belongs to: the parent of `.czarina/`, or
    the file's own directory for a config that is not inside `.czarina/`."""
    parent = config_path.absolute().parent
    return parent.parent if parent.name == ".czarina" else parent


def project_root_for(
    config_path: Path, repository: str | None, what: str, warnings: list[str]
) -> Path:
    """`repository` (relative to the config's project directory) when it exists on disk,
    else the project directory, with a warning saying so."""
    base = config_base_dir(config_path)
    if repository:
        try:
            candidate = (base / Path(repository).expanduser()).absolute()
        except (RuntimeError, ValueError):  # "~user" unknown, NUL byte
            candidate = None
        if candidate is not None and safe_exists(candidate):
            return candidate
        warnings.append(
            f'{config_path}: {what} "{repository}" does not exist here; using {base} instead'
        )
    return base
