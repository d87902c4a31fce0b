"""`czarina doctor`: what would stop a worker from starting, found before it is started.

Per host a worker may run on (the local machine, static and `remote:` hosts): the name
resolves, sshd answers, its host key is known, git and tmux and the agent's command are
there, the work directory is writable, the repository can be read from there. Per cloud
pool: the driver's read-only checks (doctor_pools.py). Nothing is changed anywhere: the
remote checks are `command -v`, a temporary file in the work directory, `git ls-remote`.
What a run reports (Check, DoctorReport) is doctor_report.py's.

A check is `ok` True (passed), False (blocks the workers that need it; the detail says
how to fix it) or None (not checked, because an earlier check of the same host failed).
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Sequence

from czarina_fleet.controller.core.desired import Desired, FixedHost
from czarina_fleet.controller.runtime.doctor_report import Check, DoctorReport, HostChecks, RepoPlan
from czarina_fleet.errors import redact_credentials
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.model.fleet import LOCAL_HOST_ID
from czarina_fleet.remote.bootstrap import INSTALL_HINT, preflight
from czarina_fleet.remote.hostkeys import HostKeyChanged, HostKeyUnknown
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.runner import CommandRunner, CommandTimeout, HostUnreachable
from czarina_fleet.remote.ssh_pool import SshPool, SshRunner
from czarina_fleet.remote.validate import check_path, check_repo_url

LS_REMOTE_TIMEOUT = 60.0
AUTH_FAILED = "authentication failed"  # how the SSH pool words a refused login

# Every agent program given as an argument; `command -v` says whether it is on PATH.
AGENTS_SCRIPT = r"""
for prog in "$@"; do
  if command -v -- "$prog" >/dev/null 2>&1; then printf 'agent\t%s\tyes\n' "$prog"
  else printf 'agent\t%s\tno\n' "$prog"; fi
done
"""


def agent_programs(cfg: FleetConfig, agents: Sequence[str]) -> list[str]:
    """The program each agent's start command runs (its first word), deduplicated."""
    progs: list[str] = []
    for agent in agents:
        try:
            words = shlex.split(cfg.agent_command(agent))
        except ValueError:
            words = []
        if words and words[0] not in progs:
            progs.append(words[0])
    return progs


def users_of(desired: Desired) -> dict[str, list[str]]:
    """Which workers need which host or pool (`auto` workers need all of them)."""
    users: dict[str, list[str]] = {}
    auto = [w.worker_id for w in desired.workers if w.host_id is None and w.pool is None]
    for host_id in desired.fixed_hosts:
        users[_host_subject(host_id)] = [w.worker_id for w in desired.workers
                                         if w.host_id == host_id]
    for name in desired.pools:
        users[f"pool {name}"] = [w.worker_id for w in desired.workers if w.pool == name]
    for subject, ids in users.items():
        if subject != "local":
            ids.extend(auto)
    return users


def _host_subject(host_id: str) -> str:
    return "local" if host_id == LOCAL_HOST_ID else f"host {host_id}"


def check_local(cfg: FleetConfig, agents: Sequence[str]) -> list[Check]:
    """This machine, for local workers: git, tmux and the agents' programs on PATH."""
    out = HostChecks("local")
    for tool in ("git", "tmux"):
        found = shutil.which(tool)
        out.add(tool, found is not None, found or f"{tool} is not on PATH: {INSTALL_HINT}")
    for prog in agent_programs(cfg, agents):
        found = shutil.which(prog)
        out.add(f"agent {prog}", found is not None,
                found or f"{prog} is not on PATH here: install it or fix fleet.agents")
    return out.found


def ssh_host_for(fixed: FixedHost, cfg: FleetConfig, known_hosts: str | None) -> SshHost:
    static = next((h for h in cfg.fleet.hosts if h.name == fixed.host_id), None)
    if static is not None:
        return SshHost.from_static(static, known_hosts=known_hosts)
    return SshHost(host_id=fixed.host_id, address=fixed.address or fixed.host_id,
                   user=fixed.user, port=fixed.port, known_hosts=known_hosts,
                   work_dir=fixed.work_dir)


async def check_remote(pool: SshPool, host: SshHost, *, agents: Sequence[str],
                       cfg: FleetConfig, repo: RepoPlan, trust_command: str) -> list[Check]:
    """Every check of one SSH host, in order; a failed step skips those needing it."""
    out = HostChecks(f"host {host.host_id}")
    later = ("login", "git", "tmux", "agents", "work dir", "clone")
    if not _resolves(host, out):
        out.skip("reachable", "host key", *later, because="the name does not resolve")
        return out.found
    pool.add(host)
    try:
        await pool.connection(host.host_id)
    except HostKeyUnknown as e:
        out.add("reachable", True, f"sshd answers at {host.address}")
        out.add("host key", False, f"{_first_sentence(str(e))}. Check it with the host's "
                f"owner, then run: {trust_command}")
        out.skip(*later, because="the host key is not trusted")
        return out.found
    except HostKeyChanged as e:
        out.add("reachable", True, f"sshd answers at {host.address}")
        out.add("host key", False, str(e))
        out.skip(*later, because="the host key changed")
        return out.found
    except HostUnreachable as e:
        if AUTH_FAILED not in str(e):
            out.add("reachable", False, str(e))
            out.skip("host key", *later, because="the host cannot be reached")
            return out.found
        # SSH verifies the host key before the user logs in: the key passed
        out.add("reachable", True, f"sshd answers at {host.address}")
        out.add("host key", True, "known and verified")
        out.add("login", False, str(e))
        out.skip(*later[1:], because="the login was refused")
        return out.found
    out.add("reachable", True, f"sshd answers at {host.address}")
    out.add("host key", True, "known and verified")
    out.add("login", True, f"logged in as {host.user or 'the SSH config user'}")
    await _on_host(SshRunner(pool, host.host_id), host, out, cfg, agents, repo)
    return out.found


async def _on_host(runner: CommandRunner, host: SshHost, out: HostChecks, cfg: FleetConfig,
                   agents: Sequence[str], repo: RepoPlan) -> None:
    try:
        pre = await preflight(runner, check_path(host.work_dir, "work_dir"), strict=False)
        progs = agent_programs(cfg, agents)
        found = await runner.run(["sh", "-c", AGENTS_SCRIPT, "czarina-doctor",
                                  *(check_path(p, "agent program") for p in progs)])
    except (HostUnreachable, CommandTimeout) as e:
        out.add("tools", False, f"the checks did not run: {e}")
        return
    for tool, version in (("git", pre.git_version), ("tmux", pre.tmux_version)):
        problem = next((p for p in pre.problems if p.startswith(tool + " ")), None)
        out.add(tool, problem is None, problem or f"{tool} {version}")
    for line in found.stdout.splitlines():
        _, prog, there = line.split("\t")
        out.add(f"agent {prog}", there == "yes", f"{prog} on PATH" if there == "yes" else
                f"{prog} is not on PATH of {host.user or 'the SSH user'} there: install it "
                "or fix fleet.agents")
    disk = next((p for p in pre.problems if p.startswith(("work directory", "only "))), None)
    out.add("work dir", disk is None, disk or f"{pre.work_dir} writable, "
            f"{pre.free_mb if pre.free_mb is not None else '?'} MB free")
    if pre.git_version is None:
        out.skip("clone", because="git is missing")
    else:
        await _check_clone(runner, out, repo)


async def _check_clone(runner: CommandRunner, out: HostChecks, repo: RepoPlan) -> None:
    if repo.url is None:
        out.add("clone", False if repo.blocking else None, repo.why_none)
        return
    shown = redact_credentials(repo.url)
    try:
        url = check_repo_url(repo.url)
        done = await runner.run(["git", "ls-remote", "-q", url, "HEAD"],
                                timeout=LS_REMOTE_TIMEOUT,
                                env={"GIT_TERMINAL_PROMPT": "0",
                                     "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"})
    except ValueError as e:
        out.add("clone", False, str(e))
        return
    except (HostUnreachable, CommandTimeout) as e:
        out.add("clone", False, f"git ls-remote {shown} did not finish: {e}")
        return
    if done.ok:
        out.add("clone", True, f"{shown} readable from here")
    else:
        why = redact_credentials(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                                 else f"exit status {done.exit_status}")
        out.add("clone", False, f"cannot read {shown} from this host: {why} (the host needs "
                "network access and read rights to it: a deploy key, a token, or a path "
                "it can read)")


def _resolves(host: SshHost, out: HostChecks) -> bool:
    """The name (after ~/.ssh/config's HostName, via `ssh -G`) resolves to an address.
    MagicDNS names (Tailscale) resolve only while tailscale is up: say so."""
    name = _ssh_config_hostname(host) or host.address
    try:
        infos = socket.getaddrinfo(name, host.port or 22, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        return out.add("resolves", False, f'"{name}" does not resolve ({e}): check the '
                       "spelling; on Tailscale, is `tailscale status` up and MagicDNS on?")
    address = infos[0][4][0]
    return out.add("resolves", True, "an address" if address == name else f"{name} -> {address}")


def _ssh_config_hostname(host: SshHost) -> str | None:
    if host.proxy_jump is not None:
        return None  # the jump host resolves it, not us
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    try:
        done = subprocess.run([ssh, "-G", "--", host.address], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "proxyjump" and value and value != "none":
            return None
        if key == "hostname":
            return value
    return None


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0]


async def run_doctor(cfg: FleetConfig, desired: Desired, pool: SshPool, *,
                     known_hosts: str | None, repo: RepoPlan,
                     trust_command: Callable[[str], str],
                     pool_checks: Callable[[str], Awaitable[list[Check]]]) -> DoctorReport:
    """Every check for the hosts and pools `desired` uses, concurrently."""
    report = DoctorReport(users=users_of(desired))
    auto = [w.spec.agent for w in desired.workers if w.host_id is None and w.pool is None]

    def agents_on(host_id: str) -> list[str]:
        mine = [w.spec.agent for w in desired.workers if w.host_id == host_id]
        return list(dict.fromkeys(mine + ([] if host_id == LOCAL_HOST_ID else auto)))

    jobs: list[Awaitable[list[Check]]] = []
    for host_id, fixed in desired.fixed_hosts.items():
        if fixed.provider == "local":
            if any(w.host_id == LOCAL_HOST_ID for w in desired.workers):
                report.checks += check_local(cfg, agents_on(host_id))
            continue
        ssh = ssh_host_for(fixed, cfg, known_hosts)
        jobs.append(check_remote(pool, ssh, agents=agents_on(host_id), cfg=cfg,
                                 repo=repo, trust_command=trust_command(host_id)))
    jobs += [pool_checks(name) for name in desired.pools]
    for found in await asyncio.gather(*jobs):
        report.checks += found
    return report
