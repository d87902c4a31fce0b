"""When a host is overloaded, with hysteresis. Pure.

A probe sample counts as *over* when the host's 1-minute load per CPU is above
`load_high`, or its free memory is below `mem_free_min_mb`. A host becomes overloaded
after `overload_probes` consecutive samples over, and stays so until a sample is under
`load_low` with memory to spare: a host hovering between the two thresholds keeps its
state, so a worker is not moved back and forth by noise.
"""

from __future__ import annotations

from collections.abc import Sequence

from czarina_fleet.model.config import RebalanceSettings
from czarina_fleet.model.fleet import HostProbe, LoadSample


def short_of_memory(s: LoadSample, cfg: RebalanceSettings) -> bool:
    return (cfg.mem_free_min_mb > 0 and s.mem_free_mb is not None
            and s.mem_free_mb < cfg.mem_free_min_mb)


def sample_over(s: LoadSample, cfg: RebalanceSettings) -> bool:
    return s.load_per_cpu > cfg.load_high or short_of_memory(s, cfg)


def sample_clear(s: LoadSample, cfg: RebalanceSettings) -> bool:
    return s.load_per_cpu < cfg.load_low and not short_of_memory(s, cfg)


def overloaded(samples: Sequence[LoadSample], cfg: RebalanceSettings) -> bool:
    """Is the host overloaded after these samples (oldest first)?"""
    state, run = False, 0
    for s in samples:
        run = run + 1 if sample_over(s, cfg) else 0
        if not state and run >= cfg.overload_probes:
            state = True
        elif state and sample_clear(s, cfg):
            state = False
    return state


def remember(history: Sequence[LoadSample], s: LoadSample, cfg: RebalanceSettings) -> bool:
    """Keep `s` (and the host's history before it)? Only while it can matter: the sample
    is over, or the host is overloaded with it. Otherwise the history says nothing
    `overloaded` needs (a sample that is not over breaks any run), and is dropped: a
    calm fleet writes no samples at all."""
    return sample_over(s, cfg) or overloaded([*history, s], cfg)


def describe(s: LoadSample) -> str:
    mem = "" if s.mem_free_mb is None else f", {s.mem_free_mb} MB free"
    return f"load {s.load_per_cpu:.2f} per CPU{mem}"


def projected(target: LoadSample, worker_load: float) -> float:
    """The target's load per CPU with one more worker's share of load on it."""
    return (target.load_1m + worker_load) / max(1, target.cpus)


def load_note(probe: HostProbe | None, cfg: RebalanceSettings) -> str | None:
    """What `czarina hosts` says of a host whose last probe is over the thresholds:
    the figures, the setting, and what the controller does about it."""
    if probe is None or not probe.reachable or probe.load_1m is None or not probe.cpus:
        return None
    s = LoadSample(probe.host_id, probe.probed_at, probe.load_1m, probe.cpus,
                   probe.mem_free_mb)
    if not sample_over(s, cfg):
        return None
    limit = (f"under fleet.rebalance.mem_free_min_mb {cfg.mem_free_min_mb}"
             if short_of_memory(s, cfg) else f"over fleet.rebalance.load_high {cfg.load_high:g}")
    act = (f"after {cfg.overload_probes} such probes one auto/pool worker moves to a host "
           f"whose load stays under load_low {cfg.load_low:g} (see `czarina events`)"
           if cfg.enabled else "rebalancing is off (fleet.rebalance.enabled)")
    return f"busy: {describe(s)}, {limit}; {act}"
