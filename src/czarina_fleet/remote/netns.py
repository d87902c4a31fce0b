"""Real SSH hosts on this machine: one network namespace per host, each with its own
OpenSSH sshd on a private address, a non-root user, a work directory and a known_hosts
entry. Used by the test fixture and by the `lab` provider. Needs root.

Host N (1..254) gets namespace `czlab-N`, veth `czvNa` (here, 10.231.N.1/24) <->
`czvNb` (inside, 10.231.N.2/24), user `czl-N`, and state in /run/czarina-lab/N/
(sshd config, host key, pid, meta.json). N is allocated under a lock from the free
ones, so parallel test sessions and lab fleets never collide. Only addresses of
namespaces made here are ever contacted.

The sshd each host runs, and the killing of its processes, are remote/lab_sshd.py's;
commands run through remote/lab_command.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.lab_command import LabError, run
from czarina_fleet.remote.lab_sshd import (
    kill_pid,
    kill_sshd,
    kill_user_processes,
    start_sshd,
    wait_for_port,
)

LAB_ROOT = Path("/run/czarina-lab")
NET_PREFIX = "10.231"


@dataclass(frozen=True)
class LabHost:
    index: int
    fleet: str
    host_id: str
    address: str
    user: str
    home: str
    work_dir: str
    state_dir: str
    known_hosts: str
    identity_file: str
    sshd_pid: int | None = None
    intent_key: str | None = None
    pool: str | None = None
    created_at: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)
    fleet_id: str = ""  # the owning fleet's identity (config/identity.py); "" before it

    @property
    def namespace(self) -> str:
        return f"czlab-{self.index}"

    @property
    def veth_outside(self) -> str:
        return f"czv{self.index}a"

    def ssh_host(self, slots: int = 2) -> SshHost:
        return SshHost(host_id=self.host_id, address=self.address, user=self.user, port=22,
                       identity_file=self.identity_file, known_hosts=self.known_hosts,
                       work_dir=self.work_dir, slots=slots)


@contextmanager
def _lab_lock(root: Path) -> Iterator[None]:
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _free_index(root: Path) -> int:
    used_addrs = run("ip", "-o", "-4", "addr", "show").stdout
    namespaces = run("ip", "netns", "list").stdout.split()
    for n in range(1, 255):
        if ((root / str(n)).exists() or f"czlab-{n}" in namespaces
                or f" {NET_PREFIX}.{n}." in used_addrs):
            continue
        return n
    raise LabError(f"no free lab subnet left in {NET_PREFIX}.0.0/16 (254 lab hosts exist)")


def client_key(root: Path = LAB_ROOT) -> str:
    """The lab's SSH client key (made once): root-only, used for every lab host."""
    key = root / "id_ed25519"
    with _lab_lock(root):
        if not key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "czarina-lab",
                 "-f", str(key))
    return str(key)


def create_host(fleet: str, host_id: str, *, root: Path = LAB_ROOT, hide_git: bool = False,
                intent_key: str | None = None, pool: str | None = None,
                tools_dir: str | None = None, fleet_id: str = "") -> LabHost:
    """Make one lab host and wait until its sshd answers. Raises LabError. `tools_dir`
    (readable by every user) goes first on the host's PATH: stand-ins for programs the
    host would have, such as an agent's CLI. `fleet_id` is the ownership mark written
    to its meta.json; with it, an intent is matched only against hosts of that fleet
    (two fleets may share a display name)."""
    if os.geteuid() != 0:
        raise LabError("lab hosts need root (network namespaces, sshd, useradd)")
    identity = client_key(root)
    with _lab_lock(root):
        if intent_key is not None:
            existing = _by_intent(root, fleet, intent_key, fleet_id)
            if existing is not None:
                return existing
        n = _free_index(root)
        state = root / str(n)
        state.mkdir(mode=0o755)
        host = replace(_describe(n, fleet, host_id, state, identity, intent_key, pool),
                       fleet_id=fleet_id)
        if tools_dir is not None:
            host = LabHost(**{**asdict(host), "extra": {**host.extra, "tools_dir": tools_dir}})
        _write_meta(host)  # claims N (and the intent) before the lock is released
        _log_launch(root, host)
    try:
        _make_user(host, hide_git)
        _make_network(host)
        pid = start_sshd(host, Path(identity + ".pub").read_text(), hide_git, tools_dir)
        host = LabHost(**{**asdict(host), "sshd_pid": pid})
        _write_meta(host)
        wait_for_port(host.address, 22, timeout=10)
    except Exception:
        destroy_host(host)
        raise
    return host


def _by_intent(root: Path, fleet: str, intent_key: str, fleet_id: str = "") -> LabHost | None:
    """The host made for this intent, if any. One whose maker died half-way (see
    `abandoned`) is torn down and None returned, so the intent can be carried out
    again."""
    for host in list_hosts(root, fleet):
        if host.intent_key != intent_key or host.fleet_id != fleet_id:
            continue
        if not abandoned(host):
            return host
        destroy_host(host)
    return None


def abandoned(host: LabHost) -> bool:
    """Half-made by a process that died (a killed controller): its sshd was never
    started and its maker is gone. Such a host is no host; tear it down."""
    if host.sshd_pid is not None or is_running(host):
        return False
    maker = int(host.extra.get("maker_pid", "0"))
    return not (maker and Path(f"/proc/{maker}").exists())


def _log_launch(root: Path, host: LabHost) -> None:
    # Append-only record of every host made (one JSON line each, written under the lab
    # lock): lets tests and users see that no intent ever got two hosts.
    entry = {"fleet": host.fleet, "pool": host.pool, "host_id": host.host_id,
             "intent_key": host.intent_key, "index": host.index, "at": host.created_at}
    with open(root / "launch.log", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def launch_log(root: Path = LAB_ROOT, fleet: str | None = None) -> list[dict[str, object]]:
    """Every host `create_host` claimed (of one fleet), oldest first."""
    try:
        lines = (root / "launch.log").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = [json.loads(line) for line in lines if line.strip()]
    return [e for e in entries if fleet is None or e.get("fleet") == fleet]


def _describe(n: int, fleet: str, host_id: str, state: Path, identity: str,
              intent_key: str | None, pool: str | None) -> LabHost:
    home = f"/home/czl-{n}"
    return LabHost(
        index=n, fleet=fleet, host_id=host_id, address=f"{NET_PREFIX}.{n}.2", user=f"czl-{n}",
        home=home, work_dir=f"{home}/czarina-work", state_dir=str(state),
        known_hosts=str(state / "known_hosts"), identity_file=identity,
        intent_key=intent_key, pool=pool, created_at=time.time(),
        extra={"maker_pid": str(os.getpid())},
    )


def _write_meta(host: LabHost) -> None:
    path = Path(host.state_dir) / "meta.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(host)))
    tmp.replace(path)


def _make_user(host: LabHost, hide_git: bool) -> None:
    if run("id", "-u", host.user, check=False).returncode != 0:
        run("useradd", "-M", "-d", host.home, "-s", "/bin/sh", host.user)
    # useradd leaves the account locked ("!"), which sshd refuses even for keys;
    # "*" means: no password can ever match, but key logins work.
    run("usermod", "-p", "*", host.user)
    shutil.rmtree(host.home, ignore_errors=True)
    os.makedirs(host.home, mode=0o755)
    # Lab users clone repositories owned by root on the shared filesystem.
    Path(host.home, ".gitconfig").write_text(
        "[safe]\n\tdirectory = *\n[user]\n\tname = lab\n\temail = lab@czarina.invalid\n")
    run("chown", "-R", f"{host.user}:{host.user}", host.home)
    if hide_git:
        _tool_dir_without_git(Path(host.state_dir) / "bin")


def _tool_dir_without_git(bin_dir: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    for source in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in os.scandir(source):
            link = bin_dir / entry.name
            if not entry.name.startswith("git") and not link.exists():
                link.symlink_to(entry.path)


def _make_network(host: LabHost) -> None:
    n, ns, out = host.index, host.namespace, host.veth_outside
    # A maker killed mid-way may have left the veth pair behind (its `ip` finished
    # after the teardown); the index is free again, so clear that leftover first.
    run("ip", "link", "del", out, check=False)
    run("ip", "netns", "add", ns)
    run("ip", "link", "add", out, "type", "veth", "peer", "name", f"czv{n}b")
    run("ip", "link", "set", f"czv{n}b", "netns", ns)
    run("ip", "addr", "add", f"{NET_PREFIX}.{n}.1/24", "dev", out)
    run("ip", "link", "set", out, "up")
    run("ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", f"czv{n}b")
    run("ip", "-n", ns, "link", "set", f"czv{n}b", "up")
    run("ip", "-n", ns, "link", "set", "lo", "up")


def restart_sshd(host: LabHost) -> LabHost:
    """Start a host's sshd again (after `kill_sshd`), same keys and config."""
    state = Path(host.state_dir)
    pub = (Path(host.identity_file + ".pub")).read_text()
    hide_git = (state / "bin").is_dir()  # made only for hosts without git
    pid = start_sshd(host, pub, hide_git, host.extra.get("tools_dir"))
    host = LabHost(**{**asdict(host), "sshd_pid": pid})
    _write_meta(host)
    wait_for_port(host.address, 22, timeout=10)
    return host


def set_link(host: LabHost, up: bool) -> None:
    """Cut (or restore) the host's network: its outside veth down (or up)."""
    run("ip", "link", "set", host.veth_outside, "up" if up else "down")


def regenerate_host_key(host: LabHost) -> None:
    """Give the host a new key (as a reinstall would) without touching known_hosts."""
    kill_sshd(host)
    for suffix in ("", ".pub"):
        Path(host.state_dir, "ssh_host_ed25519_key" + suffix).unlink(missing_ok=True)
    known = Path(host.known_hosts).read_text()
    restart_sshd(host)
    Path(host.known_hosts).write_text(known)


def destroy_host(host: LabHost) -> None:
    """Tear down everything of one host; safe to call twice or on a half-made host."""
    kill_sshd(host)
    # Whatever else lives in its namespace too: an sshd whose pid never reached
    # meta.json (its maker was killed right after starting it), sessions it forked.
    pids = run("ip", "netns", "pids", host.namespace, check=False).stdout.split()
    for pid in pids:
        if pid.isdigit():
            kill_pid(int(pid))
    kill_user_processes(host.user)
    run("ip", "link", "del", host.veth_outside, check=False)
    run("ip", "netns", "del", host.namespace, check=False)
    shutil.rmtree(host.home, ignore_errors=True)
    shutil.rmtree(host.state_dir, ignore_errors=True)


def list_hosts(root: Path = LAB_ROOT, fleet: str | None = None) -> list[LabHost]:
    """Lab hosts on this machine (of one fleet), read from their meta.json files."""
    hosts: list[LabHost] = []
    if not root.is_dir():
        return hosts
    for meta in sorted(root.glob("*/meta.json")):
        try:
            host = LabHost(**json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if fleet is None or host.fleet == fleet:
            hosts.append(host)
    return hosts


def is_running(host: LabHost) -> bool:
    return host.sshd_pid is not None and Path(f"/proc/{host.sshd_pid}").exists()
