"""SshPool and SshRunner against real OpenSSH sshd hosts in network namespaces."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

import pytest

from czarina_fleet.remote import lab_sshd, netns
from czarina_fleet.remote.hostkeys import HostKeyChanged, HostKeyUnknown
from czarina_fleet.remote.ops import (
    capture_pane,
    inject_task,
    list_sessions,
    preflight,
    start_worker,
)
from czarina_fleet.remote.runner import HostUnreachable
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool, probe_all
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

FAST = PoolSettings(connect_timeout=3, keepalive_interval=1, keepalive_count_max=2,
                    backoff_base=0.2, backoff_max=1.0)


def test_commands_are_quoted_and_connections_reused(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    marker = Path(host.home) / "MARKER"
    hostile = [f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", "'q'", '"d"',
               "a\nb", "-n", "--", "$HOME", "*", "~"]

    async def scenario() -> None:
        pool = SshPool([host.ssh_host()], settings=FAST)
        runner = pool.runner(host.host_id)
        try:
            done = await runner.run(["printf", "%s|", *hostile])
            assert done.ok and done.stdout == "".join(f"{h}|" for h in hostile)
            first = await pool.connection(host.host_id)
            echoed = await runner.run(["cat"], input="$(touch MARKER)\n`x`")
            assert echoed.stdout == "$(touch MARKER)\n`x`"
            env = await runner.run(["sh", "-c", 'printf %s "$V"'], env={"V": "$(id) x"})
            assert env.stdout == "$(id) x"
            assert await pool.connection(host.host_id) is first
            failed = await runner.run(["sh", "-c", "echo oops >&2; exit 7"])
            assert failed.exit_status == 7 and failed.stderr == "oops\n"
        finally:
            await pool.close()

    asyncio.run(scenario())
    assert not marker.exists()


def test_workers_on_six_hosts(lab_hosts: LabHosts, shared_origin: Path) -> None:
    from czarina_fleet.remote.bootstrap import prepare_checkout

    hosts = lab_hosts.make(6)
    marker = "/tmp/czarina-test-MARKER-should-not-exist"
    task = f"task $(touch {marker}) `touch {marker}`; 'x' \"y\"\n-second line"

    async def scenario() -> dict[str, dict[str, str]]:
        pool = SshPool([h.ssh_host() for h in hosts], settings=FAST)
        layout: dict[str, dict[str, str]] = {}
        try:
            async def bootstrap(host: netns.LabHost) -> None:
                runner = pool.runner(host.host_id)
                checked = await preflight(runner, "~/czarina-work")
                assert checked.work_dir == host.work_dir
                for k in (1, 2):
                    wid = f"{host.host_id}-w{k}"
                    path = await prepare_checkout(
                        runner, repo_url=str(shared_origin), work_dir="~/czarina-work",
                        worker_id=wid, branch=f"feat/{wid}", base_branch="main")
                    layout.setdefault(host.host_id, {})[wid] = path
                    out = shlex.quote(f"{path}/task.out")
                    await start_worker(runner, worker_id=wid, workdir=path,
                                       agent_command=f"cat > {out}", task_text=task)

            await asyncio.gather(*(bootstrap(h) for h in hosts))
            probes = await probe_all(pool, layout, now=time.time())
            for probe in probes:
                assert probe.reachable, probe.error
                assert probe.cpus and probe.load_1m is not None
                for wid in layout[probe.host_id]:
                    session = probe.sessions[wid]
                    assert session.alive and session.last_commit is not None
                    assert session.last_commit.subject == "second on main"
            runner = pool.runner(hosts[0].host_id)
            assert await list_sessions(runner) == set(layout[hosts[0].host_id])
            await inject_task(runner, "h1-w1", "more", )
            for _ in range(100):
                if "more" in await capture_pane(runner, "h1-w1", 10):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("injected text never reached the pane")
        finally:
            await pool.close()
        return layout

    layout = asyncio.run(scenario())
    for host in hosts:
        for path in layout[host.host_id].values():
            out = Path(path, "task.out")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and out.read_text().count("\n") < 2:
                time.sleep(0.05)
            assert out.read_text().startswith(task + "\n")
    assert not Path(marker).exists()


async def _wait_reachable(pool: SshPool, host_id: str, want: bool) -> str | None:
    for _ in range(200):
        (probe,) = await probe_all(pool, {host_id: {}}, now=time.time(), timeout=2)
        if probe.reachable == want:
            return probe.error
        await asyncio.sleep(0.1)
    raise AssertionError(f"{host_id} never became reachable={want}")


def test_killed_sshd_is_unreachable_then_recovers(lab_hosts: LabHosts) -> None:
    host, other = lab_hosts.make(2)

    async def scenario() -> None:
        pool = SshPool([host.ssh_host(), other.ssh_host()], settings=FAST)
        try:
            probes = await probe_all(pool, now=time.time())
            assert all(p.reachable for p in probes)
            lab_sshd.kill_sshd(host)
            error = await _wait_reachable(pool, host.host_id, False)
            assert error and host.host_id in error
            # the other host is unaffected while this one is down
            (ok,) = await probe_all(pool, {other.host_id: {}}, now=time.time())
            assert ok.reachable
            lab_hosts.restart_sshd(host)
            await _wait_reachable(pool, host.host_id, True)
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_network_cut_and_return(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)

    async def scenario() -> None:
        pool = SshPool([host.ssh_host()], settings=FAST)
        try:
            await _wait_reachable(pool, host.host_id, True)
            netns.set_link(host, up=False)
            await _wait_reachable(pool, host.host_id, False)
            netns.set_link(host, up=True)
            await _wait_reachable(pool, host.host_id, True)
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_changed_host_key_is_refused(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    netns.regenerate_host_key(host)
    trusting = netns.LabHost(**{**host.__dict__})

    async def scenario() -> None:
        for tofu in (False, True):  # trust-on-first-use never overrides a changed key
            ssh_host = trusting.ssh_host()
            ssh_host = type(ssh_host)(**{**_fields(ssh_host), "trust_on_first_use": tofu})
            pool = SshPool([ssh_host], settings=FAST)
            with pytest.raises(HostKeyChanged, match="CHANGED") as caught:
                await pool.connection(host.host_id)
            assert "SHA256:" in str(caught.value) and "ssh-keygen -R" in str(caught.value)
            await pool.close()

    asyncio.run(scenario())


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_unknown_host_key_gives_fingerprint_and_tofu_records_it(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    empty = Path(host.state_dir) / "empty_known_hosts"
    empty.write_text("")
    expected = Path(host.state_dir, "ssh_host_ed25519_key.pub").read_text().split()[1]

    async def scenario() -> None:
        base = _fields(host.ssh_host())
        strict = SshPool([type(host.ssh_host())(**{**base, "known_hosts": str(empty)})],
                         settings=FAST)
        with pytest.raises(HostKeyUnknown) as caught:
            await strict.connection(host.host_id)
        message = str(caught.value)
        assert "SHA256:" in message and "ssh-keyscan" in message and host.address in message
        assert empty.read_text() == ""
        tofu = SshPool([type(host.ssh_host())(**{**base, "known_hosts": str(empty),
                                                  "trust_on_first_use": True})], settings=FAST)
        done = await tofu.runner(host.host_id).run(["true"])
        assert done.ok
        assert expected in empty.read_text() and empty.read_text().startswith(host.address)
        await tofu.close()

    asyncio.run(scenario())


def test_missing_git_is_a_clear_preflight_error(lab_hosts: LabHosts) -> None:
    from czarina_fleet.remote.bootstrap import PreflightError

    (host,) = lab_hosts.make(1, hide_git=True)

    async def scenario() -> None:
        pool = SshPool([host.ssh_host()], settings=FAST)
        try:
            with pytest.raises(PreflightError, match=f"(?s)host {host.host_id} .*git is not inst"):
                await preflight(pool.runner(host.host_id), "~/czarina-work")
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_ssh_config_alias(lab_hosts: LabHosts, tmp_path: Path) -> None:
    from czarina_fleet.remote.hosts import SshHost

    (host,) = lab_hosts.make(1)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host labby\n  HostName {host.address}\n  User {host.user}\n"
                      f"  Port 22\n  IdentityFile {host.identity_file}\n")

    async def scenario() -> str:
        pool = SshPool([SshHost("labby", "labby", known_hosts=host.known_hosts)],
                       settings=PoolSettings(connect_timeout=3, ssh_config=(str(config),)))
        try:
            return (await pool.runner("labby").run(["id", "-un"])).stdout.strip()
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == host.user


def test_unreachable_address_fails_fast_with_backoff(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    lab_sshd.kill_sshd(host)

    async def scenario() -> None:
        pool = SshPool([host.ssh_host()], settings=PoolSettings(connect_timeout=2,
                                                                backoff_base=30))
        with pytest.raises(HostUnreachable, match="cannot connect"):
            await pool.connection(host.host_id)
        with pytest.raises(HostUnreachable, match="next attempt in"):
            await pool.connection(host.host_id)

    asyncio.run(scenario())


def test_aes_gcm_is_preferred_unless_the_ssh_config_names_ciphers(
        lab_hosts: LabHosts, tmp_path: Path) -> None:
    """OpenSSH's sshd offers both; asyncssh's chacha20 costs 6x the CPU per packet."""
    (host,) = lab_hosts.make(1)
    empty, chosen = tmp_path / "empty_config", tmp_path / "ciphers_config"
    empty.write_text("Host *\n  ServerAliveInterval 30\n")
    chosen.write_text("Host *\n  Ciphers aes256-ctr\n")
    including = tmp_path / "including_config"
    including.write_text(f"Include {tmp_path}/ciphers_*\n")

    async def cipher(config: Path) -> str:
        pool = SshPool([host.ssh_host()], settings=PoolSettings(
            connect_timeout=5, ssh_config=(str(config),)))
        try:
            conn = await pool.connection(host.host_id)
            assert (await pool.runner(host.host_id).run(["true"])).ok
            return str(conn.get_extra_info("send_cipher"))
        finally:
            await pool.close()

    assert asyncio.run(cipher(empty)) == "aes128-gcm@openssh.com"
    assert asyncio.run(cipher(chosen)) == "aes256-ctr"
    assert asyncio.run(cipher(including)) == "aes256-ctr"  # a Ciphers line it includes
