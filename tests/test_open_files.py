"""One SSH connection, one open file, per host: a controller raises its soft limit to
the hard one, and past the limit the pool leaves hosts unconnected with a message
naming the limit and the fix, never EMFILE in the middle of something else (issue 14).

Run in a child process (the limit is lowered there) against loopback asyncssh servers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from czarina_fleet.clock import SystemClock
from czarina_fleet.config import load_config
from czarina_fleet.controller.runtime.compose import open_fleet
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import HostState

pytestmark = pytest.mark.timeout(120)

CHILD = r'''
import asyncio, gc, json, logging, resource, sys
from pathlib import Path
import asyncssh
from czarina_fleet.clock import SystemClock
from czarina_fleet.config import load_config
from czarina_fleet.controller.runtime.compose import open_fleet
from czarina_fleet.remote import fd_limit
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.runner import HostUnreachable
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool

work = sys.argv[1]
HOSTS = 4

async def main() -> None:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key.write_private_key(f"{work}/id")
    user_key.write_public_key(f"{work}/id.pub")

    async def handle(process):
        process.exit(0)

    ports = []
    for _ in range(HOSTS):
        server = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key], process_factory=handle,
            authorized_client_keys=asyncssh.read_authorized_keys(f"{work}/id.pub"))
        ports.append(server.sockets[0].getsockname()[1])
    public = host_key.export_public_key().decode().strip()
    with open(f"{work}/known_hosts", "w") as fh:
        fh.writelines(f"[127.0.0.1]:{p} {public}\n" for p in ports)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit.RESERVED + 2, hard))
    pool = SshPool([SshHost(f"h{i}", "127.0.0.1", user="u", port=p,
                            identity_file=f"{work}/id", known_hosts=f"{work}/known_hosts")
                    for i, p in enumerate(ports)],
                   settings=PoolSettings(connect_timeout=10, ssh_config=()))
    for i in range(HOSTS):
        try:
            done = await pool.runner(f"h{i}").run(["true"])
            print(f"h{i} ok {done.exit_status}")
        except HostUnreachable as e:
            print(f"h{i} refused: {e}")
    print("raised to", fd_limit.raise_soft_limit(), "hard", fd_limit.limits()[1])
    done = await pool.runner(f"h{HOSTS - 1}").run(["true"])
    print(f"h{HOSTS - 1} after raising: ok {done.exit_status}")
    await pool.close()

async def controller_start() -> None:
    # A hard limit of 100 (lowered for good in this process) and a fleet of 40 hosts.
    resource.setrlimit(resource.RLIMIT_NOFILE, (50, 100))
    root = Path(work, "proj")
    (root / ".czarina").mkdir(parents=True)
    hosts = [{"name": f"h{i}", "host": "127.0.0.1", "port": 2200 + i} for i in range(40)]
    (root / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "p"}, "workers": [],
        "fleet": {"name": "p", "repository_url": "https://git.invalid/p.git",
                  "hosts": hosts}}))
    cfg = load_config(root / ".czarina" / "config.json")
    async with open_fleet(cfg, root / ".czarina" / "fleet.db", SystemClock()):
        # status, hosts, scale --dry-run: they probe every host, and plan with the
        # limit a controller would have
        print("reader soft limit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    async with open_fleet(cfg, root / ".czarina" / "fleet.db", SystemClock(),
                          controller=True):
        print("controller gc thresholds", gc.get_threshold())
        print("controller soft limit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])

asyncio.run(main())
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s",
                    stream=sys.stdout)
asyncio.run(controller_start())
'''


def test_past_the_limit_hosts_are_refused_with_the_fix_then_raising_it_connects(
        tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["h0 ok 0", "h1 ok 0"]
    for refused in lines[2:4]:
        assert "refused: " in refused and "Too many open files" not in refused
        assert "4 hosts need 68 open files" in refused and "RLIMIT_NOFILE) is 66" in refused
        assert "ulimit -n 68" in refused and "split the fleet" in refused
    raised, hard = lines[4].split()[2], lines[4].split()[4]
    assert raised == hard and int(hard) >= 68
    assert lines[5] == "h3 after raising: ok 0"
    # At a controller's start: the soft limit goes up to the hard one, and a fleet that
    # may reach more hosts than that leaves room for is told so at once.
    warning = "WARNING open files: 40 hosts need 104 open files"
    assert any(line.startswith(warning) and "hard limit 100" in line
               and "LimitNOFILE=104" in line for line in lines[6:]), lines[6:]
    assert lines[-1] == "controller soft limit 100"
    assert "reader soft limit 100" in lines[6:]
    # and collects garbage less often (a tick allocates some 100,000 objects)
    assert lines[-2] == "controller gc thresholds (20000, 50, 50)"
    assert "Traceback" not in done.stderr


LAUNCHING = r'''
import asyncio, json, resource, sys
from pathlib import Path
from czarina_fleet.clock import SystemClock
from czarina_fleet.config import load_config
from czarina_fleet.controller.runtime.compose import open_fleet
from czarina_fleet.model.states import HOST_ALIVE

work = Path(sys.argv[1])
# Room for 2 host connections (66 open files, 64 kept), lowered for good here: the
# controller's start cannot raise it.
resource.setrlimit(resource.RLIMIT_NOFILE, (66, 66))
(work / ".czarina").mkdir()
(work / ".czarina" / "config.json").write_text(json.dumps({
    "project": {"name": "p"},
    "fleet": {"name": "p", "repository_url": "https://git.invalid/p.git",
              "pools": [{"name": "p", "provider": "fake", "instance_types": ["t"],
                         "regions": ["r"], "max_hosts": 10, "slots_per_host": 1}]},
    "workers": [{"id": f"w{i}", "branch": f"b{i}", "location": "pool:p"}
                for i in range(5)]}))

async def main() -> None:
    cfg = load_config(work / ".czarina" / "config.json")
    async with open_fleet(cfg, work / ".czarina" / "fleet.db", SystemClock(),
                          controller=True) as fleet:
        for _ in range(3):
            await fleet.reconciler.reconcile_once()
        store = fleet.store
        print(json.dumps({
            "hosts": sorted(h.host_id for h in store.hosts() if h.state in HOST_ALIVE),
            "waiting": {w.worker_id: w.last_error for w in store.workers()
                        if w.state == "pending"},
            "events": [e.reason for e in store.events(1000, "worker")
                       if "host connections" in e.reason]}))

asyncio.run(main())
'''


def test_the_planner_launches_no_host_past_the_open_file_limit(tmp_path: Path) -> None:
    """The pool refuses connections past the open file limit; the planner sees that
    limit (the observation) and launches no host it could not reach. Real store, real
    compose, the real limit lowered in a child process, the fake cloud's pool."""
    done = subprocess.run([sys.executable, "-c", LAUNCHING, str(tmp_path)],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["hosts"] == ["p-1", "p-2"]  # five workers wanted five hosts
    assert sorted(got["waiting"]) == ["w2", "w3", "w4"]
    why = set(got["waiting"].values())
    assert len(why) == 1
    (reason,) = why
    assert reason.startswith("no place: the controller keeps at most 2 host connections")
    assert "RLIMIT_NOFILE) is 66 (hard limit 66)" in reason and "ulimit -n" in reason
    assert "split the fleet" in reason
    # Said once per worker, not once per step (three steps ran).
    assert len(got["events"]) == 3, got["events"]


def test_the_connection_of_a_host_that_is_gone_is_closed_at_the_next_step(
        tmp_path: Path) -> None:
    """The planner counts no connection for a terminated host; the pool must not keep
    one either (it would hold a file until a keepalive fails, some 45 s). A static host
    taken out of the configuration: probed (connected) in the step that retires it,
    disconnected in the next."""
    class Open(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return False  # a test endpoint: no login needed

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        process.exit(0)  # the probe finds no session there

    async def scenario() -> tuple[bool, str, bool]:
        key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[key],
                                       server_factory=Open, process_factory=handle)
        port = server.sockets[0].getsockname()[1]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}\n")
        root = tmp_path / "proj"
        (root / ".czarina").mkdir(parents=True)
        (root / ".czarina" / "config.json").write_text(json.dumps({
            "project": {"name": "p"}, "workers": [],
            "fleet": {"name": "p", "repository_url": "https://git.invalid/p.git"}}))
        state = root / ".czarina" / "fleet.db"
        store = Store(state, SystemClock())
        store.upsert_host(HostRecord("gone", "static", HostState.READY, 0.0, 1,
                                     address="127.0.0.1", port=port, user="u"), reason="t")
        store.close()
        cfg = load_config(root / ".czarina" / "config.json")
        try:
            async with open_fleet(cfg, state, SystemClock(), known_hosts=str(known),
                                  controller=True) as fleet:
                await fleet.reconciler.reconcile_once()
                probed = fleet.pool.is_connected("gone")
                after = fleet.store.host("gone")
                assert after is not None
                await fleet.reconciler.reconcile_once()
                return probed, str(after.state), fleet.pool.is_connected("gone")
        finally:
            server.close()

    probed, state, still = asyncio.run(scenario())
    assert probed and state == "terminated"
    assert not still
