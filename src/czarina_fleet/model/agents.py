"""The agents czarina-fleet knows without configuration, and the command line that
starts each: those with a CLI (they may run on any host) and the desktop editors
(local only). `fleet.agents` adds more; an agent is always a name, never a command."""

from __future__ import annotations

# Agents that have a CLI and can therefore run on a machine other than the user's.
DEFAULT_AGENT_COMMANDS: dict[str, str] = {
    "claude": "claude --permission-mode bypassPermissions",
    "aider": "aider --yes-always",
    "opencode": "opencode",
    "kilocode": "kilocode",
    "codex": "codex",
    "gemini": "gemini",
}
# Agents that are desktop editors without a CLI: local only (their command opens the
# editor on the worker's worktree).
GUI_ONLY_AGENTS = frozenset({"cursor", "windsurf", "copilot"})
_GUI_AGENT_COMMANDS = {name: name for name in GUI_ONLY_AGENTS}
# What `agent` may name without `fleet.agents`: an agent is a name, never a command line.
KNOWN_AGENTS = frozenset(DEFAULT_AGENT_COMMANDS) | GUI_ONLY_AGENTS


def builtin_agent_command(agent: str) -> str | None:
    """The built-in command line that starts `agent`; None for a name not in the table."""
    return DEFAULT_AGENT_COMMANDS.get(agent) or _GUI_AGENT_COMMANDS.get(agent)
