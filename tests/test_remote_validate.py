"""Validation of names that go into remote commands: unsafe ones are refused, and every
accepted one is a single shell word that needs no quoting."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from czarina_fleet.errors import redact_credentials
from czarina_fleet.remote.runner import CommandResult
from czarina_fleet.remote.tmux import RemoteOperationError
from czarina_fleet.remote.validate import (
    check_branch,
    check_repo_url,
    check_worker_id,
    repo_name,
    session_name,
    worker_id_of_session,
)

HOSTILE = [
    "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "a;b", "a'b", 'a"b', "a\nb", "-rf",
    "--help", "a b", "a|b", "a&b", "a>b", "a$b", "", "a\\b", "a\tb", "a*", "a?", "a[1]",
]


@pytest.mark.parametrize("bad", [*HOSTILE, "A", "ab_c", "x" * 64, "é"])
def test_unsafe_worker_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="worker id"):
        check_worker_id(bad)
    with pytest.raises(ValueError):
        session_name(bad)


@pytest.mark.parametrize(
    "bad", [*HOSTILE, "a..b", "a//b", "/a", "a/", "a.", ".a", "a/.b", "x.lock", "a/b.lock/c",
            "@", "a@{1}", "HEAD", "a~1", "a^", "a:b"],
)
def test_unsafe_branches_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="branch"):
        check_branch(bad)


@pytest.mark.parametrize("good", ["main", "feat/v1.2-backend", "user+topic", "release/2024.1",
                                  "a@b", "fix_1"])
def test_ordinary_branches_pass(good: str) -> None:
    assert check_branch(good) == good


def test_session_names_round_trip() -> None:
    assert session_name("engineer1") == "czar-worker-engineer1"
    assert worker_id_of_session("czar-worker-engineer1") == "engineer1"
    assert worker_id_of_session("czar-worker-") is None
    assert worker_id_of_session("other") is None


@given(st.text(max_size=40))
def test_accepted_ids_and_branches_are_single_shell_words(text: str) -> None:
    for check in (check_worker_id, check_branch):
        try:
            accepted = check(text)
        except ValueError:
            continue
        assert shlex.quote(accepted) == accepted
        assert not accepted.startswith("-")


@pytest.mark.parametrize("bad", ["--upload-pack=touch x", "ext::sh -c touch% x", "a b", ""])
def test_unsafe_repo_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="repository URL"):
        check_repo_url(bad)


def test_repo_name_from_urls() -> None:
    assert repo_name("git@github.com:acme/widget.git") == "widget"
    assert repo_name("https://example.com/acme/widget/") == "widget"
    assert repo_name("/srv/git/origin.git") == "origin"


def test_a_refused_repository_url_does_not_show_its_token() -> None:
    with pytest.raises(ValueError) as caught:
        check_repo_url("-https://u:ghp_s3cret@github.com/x.git")
    assert "ghp_s3cret" not in str(caught.value)
    assert "u:***@github.com" in str(caught.value)


def test_remote_errors_hide_url_credentials_git_printed() -> None:
    result = CommandResult(("sh",), 3, "", "neither branch a nor base main exists in "
                           "https://ghp_t0ken@example.invalid/x.git and http://u:pw@h/y")
    message = str(RemoteOperationError("h1", "could not prepare the checkout", result))
    assert "ghp_t0ken" not in message and ":pw@" not in message
    assert "https://***@example.invalid/x.git" in message and "http://u:***@h/y" in message
    # an ssh URL's user name is not a secret and stays as the user wrote it
    assert redact_credentials("ssh://git@github.com/x") == "ssh://git@github.com/x"
