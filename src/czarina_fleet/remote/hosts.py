"""How to reach a host over SSH: one small value shared by the pool, the bench, the lab
provider and `attach_argv`. Built from a static host, a provider's ConnectInfo, or a
literal `remote:` location."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from czarina_fleet.model.config import StaticHost
from czarina_fleet.remote.validate import check_path


@dataclass(frozen=True, slots=True)
class SshHost:
    """`address` may be a host name, an IP address or a `~/.ssh/config` alias; unset
    fields (user, port, identity) come from the SSH config, then the defaults."""

    host_id: str
    address: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None
    known_hosts: str | None = None     # None: ~/.ssh/known_hosts (and the SSH config's)
    trust_on_first_use: bool = False   # opt-in: record an unknown key instead of refusing
    work_dir: str = "~/czarina-work"
    slots: int = 2

    def __post_init__(self) -> None:
        check_path(self.address, "host address")
        # Each goes to `ssh` as an option's value (attach_argv) and to asyncssh: none may
        # read as an option or hold a newline (an injected ssh_config line).
        for value, what in ((self.user, "user name"), (self.proxy_jump, "proxy_jump"),
                            (self.identity_file, "identity_file"),
                            (self.known_hosts, "known_hosts file")):
            if value is not None:
                check_path(value, what)

    @classmethod
    def from_static(cls, host: StaticHost, known_hosts: str | None = None) -> SshHost:
        return cls(
            host_id=host.name, address=host.host, user=host.user, port=host.port,
            identity_file=host.identity_file, proxy_jump=host.proxy_jump,
            known_hosts=known_hosts, trust_on_first_use=host.trust_on_first_use,
            work_dir=host.work_dir, slots=host.slots,
        )

    def openssh_args(self) -> list[str]:
        """Options for the OpenSSH client (`ssh`): host keys always checked (the jump
        host's too), and nothing forwarded whatever `~/.ssh/config` says."""
        args: list[str] = [*NO_FORWARDING_ARGS]
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.user is not None:
            args += ["-l", self.user]
        if self.identity_file is not None:
            args += ["-i", self.identity_file]
        if self.proxy_jump is not None:
            args += ["-o", "ProxyCommand=" + jump_proxy_command(self.proxy_jump,
                                                                self.known_hosts)]
        if self.known_hosts is not None:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        args += ["-o", "StrictHostKeyChecking=" + ("accept-new" if self.trust_on_first_use
                                                   else "yes")]
        return args


# `-a -x`: no agent, no X11; ClearAllForwardings drops the config's Local/Remote/
# DynamicForward lines. Given on the command line, they win over ~/.ssh/config.
NO_FORWARDING_ARGS = ("-a", "-x", "-o", "ForwardAgent=no", "-o", "ForwardX11=no",
                      "-o", "ClearAllForwardings=yes")
_HOP_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def jump_proxy_command(spec: str, known_hosts: str | None) -> str:
    """A ProxyCommand reaching the host through the `[user@]host[:port],...` hops.
    OpenSSH's own `-J` checks a jump host's key as the SSH config says for it
    (`StrictHostKeyChecking no` there would switch checking off); this command checks
    it strictly (against `known_hosts` too, if set). `%` is ssh's expansion character:
    each level escapes it, so only the innermost `%h:%p` of each level expands."""
    *before, last = spec.split(",")
    user, _, rest = last.rpartition("@")
    name, colon, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not _HOP_NAME.match(name) or (user and not _HOP_NAME.match(user)) or (
            colon and not port.isdigit()):
        raise ValueError(f"proxy_jump {spec!r}: each hop must be [user@]host[:port]")
    files = ["~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"]
    argv = ["ssh", *NO_FORWARDING_ARGS, "-T", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=" + " ".join([*([known_hosts] if known_hosts else []),
                                                    *files])]
    if user:
        argv += ["-l", user]
    if colon:
        argv += ["-p", port]
    if before:
        argv += ["-o", "ProxyCommand=" + jump_proxy_command(",".join(before), known_hosts)]
    return shlex.join(argv).replace("%", "%%") + " -W %h:%p " + name
