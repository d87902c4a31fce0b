"""What every verb needs: the configuration found (or named), the state path, and the
tmux server local workers live on."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from czarina_fleet.clock import SystemClock
from czarina_fleet.config import find_config, load_config
from czarina_fleet.controller.runtime.compose import Fleet, open_fleet
from czarina_fleet.errors import UserError
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.remote.tmux_target import TmuxTarget


@dataclass
class Context:
    config_path: Path
    state_path: Path
    clock: SystemClock

    @cached_property
    def cfg(self) -> FleetConfig:
        return load_config(self.config_path)

    @property
    def tmux_socket(self) -> str | None:
        """Tests and demos can isolate local workers on their own tmux server."""
        return os.environ.get("CZARINA_TMUX_SOCKET") or None


def context_from(args: argparse.Namespace) -> Context:
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UserError(f"--config {args.config}: no such file")
    else:
        path = find_config(Path.cwd())
    state = Path(args.state) if args.state else default_state_path(path)
    if state.exists() and state.is_dir():
        raise UserError(f"--state {state}: is a directory; give a file path")
    return Context(config_path=path.resolve(), state_path=state, clock=SystemClock())


def default_state_path(config_path: Path) -> Path:
    """`.czarina/fleet.db` beside the config (config.json lives in .czarina already)."""
    parent = config_path.resolve().parent
    base = parent if parent.name == ".czarina" else parent / ".czarina"
    return base / "fleet.db"


@asynccontextmanager
async def open_fleet_for(ctx: Context, cfg: FleetConfig | None = None, *,
                 controller: bool = False) -> AsyncIterator[Fleet]:
    """The fleet `ctx` names (or `cfg`), opened for one verb and closed after it."""
    # CZARINA_TMUX_SOCKET overrides the fleet's own server (`czarina-<fleet id>`).
    tmux = TmuxTarget(socket_name=ctx.tmux_socket) if ctx.tmux_socket else None
    async with open_fleet(cfg or ctx.cfg, ctx.state_path, ctx.clock, tmux=tmux,
                          controller=controller) as fleet:
        yield fleet
