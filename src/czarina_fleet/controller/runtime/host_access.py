"""The real `HostAccess`: how the executor reaches hosts, through the remote layer.

The local host runs commands here (no shell) on git worktrees of the project; every
other host is reached over the pooled SSH connections, where each worker gets its own
worktree of a clone of the project's origin (or `fleet.repository_url`). Both run the
same tmux and git operations (remote/tmux.py, remote/probe.py), written once against
`CommandRunner`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from czarina_fleet.config.origin import URL_SETTING, Repository, repository_for
from czarina_fleet.controller.core.observed import ConnectionLimit
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.task_text import read_task_text
from czarina_fleet.controller.state.store import Store
from czarina_fleet.errors import FleetError, redact_credentials
from czarina_fleet.model.config import FleetConfig, StaticHost, WorkerSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.base import Instance, InvalidPoolConfig
from czarina_fleet.providers.lab import metadata_cloud
from czarina_fleet.providers.local import (
    WORKTREES_DIR,
    WorktreeError,
    catch_up_worktree,
    default_branch,
    prepare_worktree,
    push_branch,
)
from czarina_fleet.providers.registry import load_driver
from czarina_fleet.remote import fd_limit
from czarina_fleet.remote.bootstrap import (
    bare_path,
    checkout_path,
    fleet_dir,
    preflight,
    prepare_bare,
    prepare_checkout,
)
from czarina_fleet.remote.branch_save import BranchSaver, SaveFailed, catch_up
from czarina_fleet.remote.git_relay import GitRelay, carries_credential
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.identity import FleetIdentity
from czarina_fleet.remote.metadata import CLOUDS, ack_argv
from czarina_fleet.remote.probe import probe_host
from czarina_fleet.remote.runner import CommandRunner, LocalRunner
from czarina_fleet.remote.ssh_pool import SshPool, SshRunner
from czarina_fleet.remote.tmux import start_worker, stop_worker
from czarina_fleet.remote.tmux_target import DEFAULT_TMUX, TmuxTarget
from czarina_fleet.remote.watchdog import heartbeat_path, install_watchdog

log = logging.getLogger(__name__)
# Hosts whose connection is let go: nothing is run there any more.
_RELEASED = frozenset({HostState.TERMINATED, HostState.INTERRUPTED, HostState.LAUNCH_FAILED})

# Workers whose sessions a probe should look for (others are found by session name).
_ON_HOST = frozenset({WorkerState.STARTING, WorkerState.RUNNING, WorkerState.CHECKPOINTING})


class LiveHostAccess:
    def __init__(self, cfg: FleetConfig, store: Store, pool: SshPool, *,
                 tmux: TmuxTarget = DEFAULT_TMUX, known_hosts: str | None = None,
                 facts: ConnectFacts | None = None,
                 identity: FleetIdentity | None = None, fleet_id: str | None = None) -> None:
        self.cfg, self.store, self.pool, self.tmux = cfg, store, pool, tmux
        # The mark on every session this fleet starts; only marked ones are touched.
        self.fleet_id = fleet_id
        self.known_hosts = known_hosts
        self.facts = facts or ConnectFacts(None)
        self.identity = identity
        self._base: str | None = cfg.fleet.base_branch
        self._repo: Repository | None = None
        self._statics: tuple[list[StaticHost], dict[str, StaticHost]] | None = None
        self.saver = BranchSaver()
        self.relay = _relay(cfg, self._repository().fetch_url)

    # --- HostAccess -------------------------------------------------------------------

    async def bootstrap(self, host: HostRecord) -> None:
        if host.provider == "local":
            return
        runner = self._runner(host)
        await preflight(runner, host.work_dir)
        if host.pool is not None:  # launched by us: it must not outlive its controller
            await install_watchdog(runner, host.work_dir, self.cfg.fleet.orphan_timeout_s,
                                   load_driver(host.provider).self_shutdown)

    async def start_worker(self, host: HostRecord, spec: WorkerSpec) -> None:
        worker_id = spec.id
        task = read_task_text(self.cfg, spec)
        runner = self._runner(host)
        workdir = await self._checkout(host, runner, spec)
        if host.provider != "local":  # a reused checkout resumes from all that was pushed
            await catch_up(runner, workdir, spec.branch)
        elif (url := self._checkpoint_url()) is not None:  # back from a remote host
            if await catch_up_worktree(Path(workdir), spec.branch, url) == "diverged":
                log.warning("worker %s: the local branch %s and the one at %s both have "
                            "commits the other lacks; starting on the local one: merge "
                            "them by hand", worker_id, spec.branch, redact_credentials(url))
        await start_worker(runner, worker_id=worker_id, workdir=workdir,
                           agent_command=self.cfg.agent_command(spec.agent),
                           task_text=task, tmux=self.tmux, owner=self.fleet_id)

    async def stop_worker(self, host: HostRecord, worker_id: str) -> None:
        await stop_worker(self._runner(host), worker_id, self.tmux, owner=self.fleet_id)

    async def checkpoint_worker(self, host: HostRecord, worker_id: str) -> None:
        """Commit whatever the worker left uncommitted and, on a remote host, push its
        branch, so that moving it loses no work. Idempotent; raises SaveFailed."""
        spec = self.cfg.worker(worker_id)
        if spec is None:
            return
        message = (f"czarina-fleet checkpoint: uncommitted work of worker {worker_id}, "
                   f"saved before it left host {host.host_id}")
        await self._save(host, worker_id, spec.branch, message)
        if host.provider == "local" and (url := self._checkpoint_url()) is not None:
            try:  # the host it moves to clones the branch from there
                await push_branch(Path(self._checkout_dir(host, worker_id)), spec.branch, url)
            except WorktreeError as e:
                raise SaveFailed(f"worker {worker_id}: {e}") from None

    def _checkpoint_url(self) -> str | None:
        """Where checkpoints go and come back from: the push URL, else the fetch URL
        (None when the project has no repository to share)."""
        repo = self._repository()
        return repo.push_url or repo.fetch_url

    async def push_worker(self, host: HostRecord, worker_id: str) -> str | None:
        """Push the worker's committed work (its branch, as it is) to origin; returns
        the pushed commit. None for the local machine (its branch already lives in the
        project's repository) or a worker not configured. Raises SaveFailed."""
        spec = self.cfg.worker(worker_id)
        if spec is None or host.provider == "local":
            return None
        return await self._save(host, worker_id, spec.branch, None)

    async def _save(self, host: HostRecord, worker_id: str, branch: str,
                    message: str | None) -> str:
        """Commit (with `message`) and, from a remote host, push to origin: by the host
        itself, or through the controller (git_relay.py) so the host needs no key."""
        remote = host.provider != "local"
        saved = await self.saver.save(self._runner(host), self._checkout_dir(host, worker_id),
                                      branch, commit_message=message,
                                      push=remote and self.relay is None)
        if remote and self.relay is not None:
            await self.relay.to_origin(self.ssh_host(host),
                                       bare_path(self._work_dir(host), self._repo_url()),
                                       branch, saved.head)
        return saved.head

    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe:
        """`records`: the workers the store places on this host, when the caller has
        them (probe_all reads the store once for every host, not once per host)."""
        if records is None:
            records = [w for w in self.store.workers() if w.host_id == host.host_id]
        workers = {w.worker_id: self._checkout_dir(host, w.worker_id)
                   for w in records if w.host_id == host.host_id and w.state in _ON_HOST}
        beat = heartbeat_path(host.work_dir) if host.pool is not None else None
        return await probe_host(self._runner(host), host.host_id, workers, tmux=self.tmux,
                                now=self.store.clock.now(), cloud=self.metadata_cloud(host),
                                instance=host.instance_id, heartbeat=beat,
                                owner=self.fleet_id)

    async def connect(self, host: HostRecord) -> None:
        """Open the host's pooled connection if it is not open (the reconciler does so
        before it times a probe). Raises HostUnreachable."""
        if host.provider != "local":
            self._runner(host)  # registers the host with the pool
            await self.pool.connection(host.host_id)

    def connection_limit(self, hosts: Sequence[HostRecord] = ()) -> ConnectionLimit:
        """How many hosts the pool can keep connected under the open file limit: the
        reconciler puts it in the observation, so no host is launched past it. The
        connections of `hosts` that are gone are closed first: the planner no longer
        counts them, so neither may the pool (else a keepalive, some 45 s, later)."""
        for h in hosts:
            if h.state in _RELEASED:
                self.pool.disconnect(h.host_id)
        return ConnectionLimit(fd_limit.connection_budget(), fd_limit.limit_note())

    def metadata_cloud(self, host: HostRecord) -> str | None:
        """Whose metadata service the host has (its notices are read there): its
        cloud's, a lab host's stand-in (pool option `metadata`); None for the local
        machine and static hosts, which are never asked."""
        if host.provider in CLOUDS:
            return host.provider
        if host.provider != "lab":
            return None
        pool = next((p for p in self.cfg.fleet.pools if p.name == host.pool), None)
        try:
            return metadata_cloud(host.pool or "", dict(pool.options) if pool else {})
        except InvalidPoolConfig:
            return None

    async def ack_notice(self, host: HostRecord, event_ids: list[str]) -> None:
        """Approve Azure scheduled events on the host (they may then start at once)."""
        done = await self._runner(host).run(ack_argv(event_ids), timeout=15)
        if not done.ok:
            raise FleetError(f"approving {event_ids} on {host.host_id}: exit "
                             f"{done.exit_status} {done.stderr.strip()[-200:]}")

    def learn_instances(self, inventories: Mapping[str, list[Instance]]) -> None:
        """Keep the host keys and identities the listed pools report (connect_facts)."""
        self.facts.learn(inventories)

    # --- helpers ------------------------------------------------------------------------

    def runner(self, host: HostRecord) -> CommandRunner:
        return self._runner(host)

    def _runner(self, host: HostRecord) -> CommandRunner:
        if host.provider == "local":
            return LocalRunner("local", cwd=str(self.cfg.project_root))
        self.pool.add(self.ssh_host(host))  # a no-op unless how to reach it changed
        return SshRunner(self.pool, host.host_id)

    def ssh_host(self, host: HostRecord) -> SshHost:
        static = self._static(host.host_id)
        if static is not None:
            return SshHost.from_static(static, known_hosts=self.known_hosts)
        if host.address is None:
            raise FleetError(f"host {host.host_id} has no address yet")
        self._learn_made_key(host)
        return SshHost(host_id=host.host_id, address=host.address, user=host.user,
                       port=host.port, identity_file=self.facts.identity_file(host.host_id),
                       known_hosts=self.facts.known_hosts_for(host.host_id) or self.known_hosts,
                       work_dir=host.work_dir, slots=host.slots)

    def _static(self, host_id: str) -> StaticHost | None:
        """The configured host of that name: a dict kept per host list (a search of the
        list for every host made each tick O(hosts^2))."""
        hosts = self.cfg.fleet.hosts
        if self._statics is None or self._statics[0] is not hosts:
            self._statics = (hosts, {h.name: h for h in hosts})
        return self._statics[1].get(host_id)

    def _learn_made_key(self, host: HostRecord) -> None:
        """A host the fleet launched with a host key it made (cloud-init) is reached with
        the fleet's login key and verified against that host key."""
        if self.identity is None or host.pool is None or host.address is None:
            return
        if self.facts.known_hosts_for(host.host_id):
            return  # the provider itself told us the key (lab)
        public = self.identity.host_public_key(host.host_id)
        if public is not None:
            self.facts.remember(host.host_id, host.address, host.port, host.pool, public,
                                str(self.identity.private_key_path))

    def _checkout_dir(self, host: HostRecord, worker_id: str) -> str:
        if host.provider == "local":
            return str(self.cfg.project_root / WORKTREES_DIR / worker_id)
        return checkout_path(self._work_dir(host), self._repo_url(), worker_id)

    async def _checkout(self, host: HostRecord, runner: CommandRunner, spec: WorkerSpec) -> str:
        base = self._base or await default_branch(Path(self.cfg.project_root))
        self._base = base
        if host.provider == "local":
            path = await prepare_worktree(Path(self.cfg.project_root), spec.id, spec.branch,
                                          base, owner=self.fleet_id)
            return str(path)
        url = self._repo_url()
        if self.relay is not None:  # the host gets origin's branches from us, no key
            bare = await prepare_bare(runner, repo_url=url, work_dir=self._work_dir(host))
            await self.relay.to_host(self.ssh_host(host), bare)
        return await prepare_checkout(runner, repo_url=url, work_dir=self._work_dir(host),
                                      worker_id=spec.id, branch=spec.branch, base_branch=base,
                                      fetch=self.relay is None,
                                      push_url=self._repository().push_url,
                                      owner=self.fleet_id)

    def _repository(self) -> Repository:
        if self._repo is None:  # asked of git once: the origin remote, unless configured
            self._repo = repository_for(self.cfg)
        return self._repo

    def _work_dir(self, host: HostRecord) -> str:
        """The fleet's own directory on a host: two fleets sharing a host and a work
        directory never share a clone (remote/bootstrap.py)."""
        return fleet_dir(host.work_dir, self.fleet_id)

    def _repo_url(self) -> str:
        repo = self._repository()
        if not repo.fetch_url:
            setting = URL_SETTING[self.cfg.format]
            raise FleetError(f"remote workers need a repository to clone: {repo.source}; add "
                             f"the remote (git remote add origin URL) or set {setting}")
        return repo.fetch_url


def _relay(cfg: FleetConfig, url: str | None = None) -> GitRelay | None:
    """The controller's git relay when hosts must not talk to origin themselves: asked
    for (`git_transport: controller`), or needed (the URL - configured, or the origin
    remote's - holds a credential, which must never reach a host's git config or
    command line). `url` defaults to fleet.repository_url."""
    url = url if url is not None else cfg.fleet.repository_url
    if not url or (cfg.fleet.git_transport != "controller" and not carries_credential(url)):
        return None
    return GitRelay(url, Path(cfg.project_root) / ".czarina" / "git")
