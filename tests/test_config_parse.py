"""Pieces of the loaders on their own: git branch-name rules, the static bash evaluator,
and ssh_config aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from czarina_fleet.config.refname import branch_name_problem
from czarina_fleet.config.shell_parse import Unknown, parse_shell
from czarina_fleet.config.ssh_config import ssh_aliases
from czarina_fleet.errors import UserError


@pytest.mark.parametrize("name", ["feat/v1.2-backend", "cz1/release/v1.0.0", "main", "a-b_c",
                                  "feat/ü", "x@y"])
def test_valid_branch_names(name: str) -> None:
    assert branch_name_problem(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("", "is empty"), ("HEAD", "HEAD"), ("-x", 'starts with "-"'), ("@", '"@"'),
    ("a b", "a space"), ("a~b", '"~"'), ("a^b", '"^"'), ("a:b", '":"'), ("a?b", '"?"'),
    ("a*b", '"*"'), ("a[b", '"["'), ("a\\b", '"\\"'), ("a\tb", "control"), ("a..b", '".."'),
    ("a@{b", '"@{"'), ("/a", "empty path component"), ("a/", "empty path component"),
    ("a//b", "empty path component"), ("a.", 'ends with "."'), ("a/.b", 'starting with "."'),
    ("a.lock", '".lock"'), ("x/y.lock/z", '".lock"'),
])
def test_invalid_branch_names(name: str, why: str) -> None:
    problem = branch_name_problem(name)
    assert problem is not None and why in problem


CONFIG = Path("/srv/proj/.czarina/config.sh")


def values(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, var in parse_shell(text, CONFIG, cwd=Path("/home/me")).items():
        out[name] = [v for v, _ in var.items] if var.items is not None else var.value
    return out


def test_static_idioms() -> None:
    v = values('''
D="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
P="$(dirname "$D")"
B=$(basename "$BASH_SOURCE" .sh)
W=$(pwd)
U=${UNSET:-fallback} S=${D:+set} N=${#B}
F=/a/b/c.tar.gz
T1=${F%.*} T2=${F%%.*} T3=${F#*/} T4=${F##*/}
export E=$(echo hello world)
Q='single $D' DQ="double \\$D \\"q\\""
''')
    assert v["D"] == "/srv/proj/.czarina"
    assert v["P"] == "/srv/proj"
    assert v["B"] == "config"
    assert v["W"] == "/home/me"
    assert (v["U"], v["S"], v["N"]) == ("fallback", "set", "6")
    assert (v["T1"], v["T2"], v["T3"], v["T4"]) == (
        "/a/b/c.tar", "/a/b/c", "a/b/c.tar.gz", "c.tar.gz")
    assert v["E"] == "hello world"
    assert v["Q"] == "single $D"
    assert v["DQ"] == 'double $D "q"'


def test_arrays_with_comments_lines_and_splicing() -> None:
    vars_ = parse_shell('''A=(
  "one"   # first
  # a whole comment line
  'two' three\\
  four
)
A+=("five")
B=("${A[@]}" six)
C="${A[1]}"
''', CONFIG)
    assert vars_["A"].items == (("one", 2), ("two", 4), ("three", 4), ("four", 5), ("five", 7))
    assert vars_["A"].line == 1
    assert [v for v, _ in vars_["B"].items or ()] == ["one", "two", "three", "four", "five", "six"]
    assert vars_["C"].value == "two"


def test_unknown_values_carry_reason_and_line() -> None:
    v = parse_shell('''X=$(git rev-parse --show-toplevel)
Y="$X/sub"
Z=$((1 + 2))
if [ -n "$CI" ]; then
  W=1
fi
for f in a b; do K=$f; done
case "$m" in a) C=1 ;; esac
fn() {
  INSIDE=1
}
AFTER=ok
cat <<EOF
HEREDOC=not-an-assignment
EOF
M=$MISSING
''', CONFIG)
    assert isinstance(v["X"].value, Unknown) and v["X"].value.line == 1
    assert v["Y"].value == v["X"].value  # depends on X: same reason, same line
    assert isinstance(v["Z"].value, Unknown)
    for name, line in (("W", 5), ("K", 7), ("C", 8), ("INSIDE", 10)):
        value = v[name].value
        assert isinstance(value, Unknown) and value.line == line, name
        assert "block or a function" in value.reason
    assert v["AFTER"].value == "ok"
    assert "HEREDOC" not in v
    m = v["M"].value
    assert isinstance(m, Unknown) and "$MISSING (line 16) is not set" in m.reason


def test_commands_are_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    v = parse_shell(f'touch {marker}\nX="$(touch {marker})"\nY=`touch {marker}`\n', CONFIG)
    assert not marker.exists()
    assert isinstance(v["X"].value, Unknown) and isinstance(v["Y"].value, Unknown)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("A=1\nB='open\n", "2", "unterminated single quote"),
    ('A=(\n "x"\n', "1", "array is never closed"),
    ("A=(x; y)", "1", 'unexpected ";" inside an array'),
    ("X=$(echo\n", "1", 'unterminated "$("'),
    ("X=`echo", "1", "unterminated backquote"),
])
def test_syntax_errors_name_the_line(text: str, line: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_shell(text, CONFIG)
    assert info.value.where == line and message in info.value.detail


def test_ssh_config_aliases(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host a b # comment\n  HostName x\nhost=c\nHost *.example d? !e f\n"
                   "Match host g\n")
    assert ssh_aliases(cfg) == {"a", "b", "c", "f"}
    assert ssh_aliases(tmp_path / "absent") == frozenset()
    assert ssh_aliases(None) == frozenset()
