"""Which tmux server a command talks to (the user's default, a named socket `-L`, a
socket path `-S`; the fleet's own is `-L czarina-<fleet id>`), and how a value is
written where tmux expands formats. What runs on that server is tmux.py's."""

from __future__ import annotations

from dataclasses import dataclass

from czarina_fleet.remote.validate import check_path, check_socket_name


@dataclass(frozen=True, slots=True)
class TmuxTarget:
    """Which tmux server to talk to: the user's default, a named socket (`-L`) or a
    socket path (`-S`). Tests and lab hosts use their own so they never collide."""

    socket_name: str | None = None
    socket_path: str | None = None

    def __post_init__(self) -> None:
        if self.socket_name is not None and self.socket_path is not None:
            raise ValueError("give a tmux socket name or a socket path, not both")
        if self.socket_name is not None:
            check_socket_name(self.socket_name)
        if self.socket_path is not None:
            check_path(self.socket_path, "tmux socket path")

    def argv(self, *args: str) -> list[str]:
        """`tmux [-L name | -S path] args...`"""
        return ["tmux", *self.socket_args(), *args]

    def socket_args(self) -> list[str]:
        if self.socket_name is not None:
            return ["-L", self.socket_name]
        if self.socket_path is not None:
            return ["-S", self.socket_path]
        return []


DEFAULT_TMUX = TmuxTarget()


def tmux_literal(value: str) -> str:
    """`value` as tmux reads it back after format expansion. tmux expands formats in
    some arguments (`new-session -c` in 3.x: `#(cmd)` there RUNS cmd, `#{...}` is
    replaced): `##` is tmux's escape for a literal `#`. Every value we pass where tmux
    expands formats goes through here; the others (`-s`, `-t`, `-e`) take validated
    ids only, which hold no `#`."""
    return value.replace("#", "##")


def fleet_tmux(fleet_id: str) -> TmuxTarget:
    """The fleet's own tmux server, `-L czarina-<fleet id>`, on every host: two fleets on
    one machine keep upstream's session names (`czar-worker-<id>`) without meeting."""
    return TmuxTarget(socket_name=f"czarina-{fleet_id}")
