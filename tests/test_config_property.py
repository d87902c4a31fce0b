"""Property: whatever text either loader is given, the result is a FleetConfig or a
clean UserError/ConfigError - never another exception (and so never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from czarina_fleet.config.json_loader import load_json_text
from czarina_fleet.config.shell_loader import load_shell_text
from czarina_fleet.errors import UserError
from czarina_fleet.model.config import FleetConfig

JSON_PATH = Path("/nonexistent-hyp/.czarina/config.json")
SHELL_PATH = Path("/nonexistent-hyp/config.sh")
ALIASES = frozenset({"gpu-server", "build-1"})
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def outcome(load, text: str) -> str:  # type: ignore[no-untyped-def]
    try:
        cfg = load(text, aliases=ALIASES, ssh_config=None)
    except UserError as e:
        assert str(e).strip(), "an error must say something"
        assert "Traceback" not in str(e) and "pydantic" not in str(e)
        return "error"
    assert isinstance(cfg, FleetConfig)
    return "config"


def json_load(text: str, **kw):  # type: ignore[no-untyped-def]
    return load_json_text(text, JSON_PATH, **kw)


def shell_load(text: str, **kw):  # type: ignore[no-untyped-def]
    return load_shell_text(text, SHELL_PATH, **kw)


@SETTINGS
@given(st.text())
def test_json_loader_any_text(text: str) -> None:
    outcome(json_load, text)


@SETTINGS
@given(st.text())
def test_shell_loader_any_text(text: str) -> None:
    outcome(shell_load, text)


# -- near-valid structured inputs ---------------------------------------------------------

LOCATIONS = st.sampled_from([
    "local", "auto", "remote:gpu-server", "remote:gpu-servr", "remote:me@h.example:22",
    "remote:[2001:db8::1]:70000", "remote:[::1", "aws-spot:t3.large:us-east-1",
    "gcp-spot:e2-standard-4:us-central1-a", "azure:Standard_D2s_v5:eastus", "k8s:a:b",
    "k8s:", "pool:spot", "pool:nope", "remot:x", "", ":", "remote:", "aws-spot::",
])
IDS = st.one_of(st.sampled_from(["qa", "qa", "a-1", "Bad_Id", "", "-", "x" * 70]),
                st.text(max_size=8))
BRANCHES = st.one_of(st.sampled_from(["feat/a", "feat/a..b", "a.lock", "/x", "HEAD", "-x",
                                      "a b", "feat/@{x}", "ok/ok."]), st.text(max_size=10))
AGENTS = st.sampled_from(["claude", "cursor", "windsurf", "aider", "x"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=6,
)


def worker_json() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {"id": IDS, "branch": BRANCHES},
        optional={"agent": AGENTS, "location": LOCATIONS, "task_file": st.text(max_size=8),
                  "role": st.sampled_from(["qa", "code"]), "extra": JSON_VALUES,
                  "description": JSON_VALUES},
    )


FLEET = st.fixed_dictionaries({}, optional={
    "hosts": st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["gpu-server", "h", "bad name", ""]),
         "host": st.sampled_from(["h.example", "2001:db8::1", "bad host", ""])},
        optional={"port": st.integers(-5, 70000), "slotz": st.integers()}), max_size=3),
    "pools": st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["spot", "Spot"]), "provider": st.just("aws"),
         "instance_types": st.lists(st.text(max_size=4), max_size=2),
         "regions": st.just(["us-east-1"])},
        optional={"min_hosts": st.integers(-1, 5), "max_hosts": st.integers(-1, 5)}),
        max_size=2),
    "scaling": st.dictionaries(st.sampled_from(["min_workers", "max_workers", "auto_scale",
                                                "budget_per_hour", "scalling"]),
                               JSON_VALUES, max_size=3),
    "agents": JSON_VALUES, "nme": JSON_VALUES,
})


@SETTINGS
@given(st.fixed_dictionaries({"workers": st.lists(worker_json(), max_size=5)},
                             optional={"fleet": FLEET, "project": JSON_VALUES,
                                       "daemon": JSON_VALUES}))
def test_json_loader_near_valid(doc: dict[str, object]) -> None:
    outcome(json_load, json.dumps(doc))


FIELD = st.one_of(st.sampled_from(["qa", "feat/x", "t.txt", "Desc", "remote:gpu-server",
                                   "aws-spot:t3.large:us-east-1", "k8s:a", "auto", "Bad_Id",
                                   "a..b", "$X", "${BASH_SOURCE[0]}", "$(pwd)", "$(date)",
                                   "`x`", "'", '"', "\\", "#", "(", ")", "${X:-y}", "~"]),
                  st.text(max_size=6))
ELEMENT = st.lists(FIELD, min_size=1, max_size=6).map("|".join)
HOST = st.sampled_from(["gpu-server:ml@gpu.example.com:2222:/mnt", "h:u@[2001:db8::1]:22:/w",
                        "bad", "h:u@h:99999:/x", "x:@:", "h:u@host", ":::", "n:u@[::1:/p"])
VAR = st.sampled_from(["WORKER_DEFINITIONS", "REMOTE_HOSTS", "WORKER_CLOUD_CONFIG",
                       "WORKER_K8S_CONFIG", "MIN_WORKERS", "MAX_WORKERS", "AUTO_SCALE",
                       "PROJECT_ROOT", "PROMPTS_DIR", "PROJECT_NAME", "X", "SLOW_THRESHOLD"])
QUOTE = st.sampled_from(['"{}"', "'{}'", "{}", '"{}', "$'{}'"])


@st.composite
def shell_line(draw: st.DrawFn) -> str:
    name = draw(VAR)
    prefix = draw(st.sampled_from(["", "export ", "declare -a ", "readonly "]))
    if draw(st.booleans()):
        items = draw(st.lists(st.one_of(ELEMENT, HOST), max_size=4))
        sep = draw(st.sampled_from([" ", "\n  ", "  # c\n  "]))
        body = sep.join(draw(QUOTE).format(i) for i in items)
        return f"{prefix}{name}=({sep}{body}{sep})"
    value = draw(st.one_of(FIELD, st.integers(-3, 20).map(str)))
    return f"{prefix}{name}={draw(QUOTE).format(value)}"


STATEMENTS = st.one_of(
    shell_line(),
    st.sampled_from(["if true; then", "fi", "for x in a; do", "done", "f() {", "}",
                     "cat <<EOF", "EOF", "# comment", "", "case $x in a) X=1;; esac",
                     'DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"', "unset X",
                     "source other.sh", "X+=(more)", "echo $((1+2))"]),
)


@SETTINGS
@given(st.lists(STATEMENTS, max_size=10).map("\n".join))
def test_shell_loader_near_valid(text: str) -> None:
    outcome(shell_load, text)


def test_near_valid_inputs_reach_both_outcomes() -> None:
    """The structured strategies are worth having only if they produce valid configs too."""
    good = 'WORKER_DEFINITIONS=("qa|feat/x|t.txt|Desc|remote:gpu-server")'
    assert outcome(shell_load, good) == "config"
    assert outcome(shell_load, good.replace("qa", "Bad_Id")) == "error"
    doc = {"workers": [{"id": "qa", "branch": "feat/a", "location": "remote:gpu-server"}]}
    assert outcome(json_load, json.dumps(doc)) == "config"
    assert outcome(json_load, json.dumps(doc).replace("gpu-server", "gpu-servr")) == "error"
