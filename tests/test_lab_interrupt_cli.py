"""`czarina lab interrupt`, as a user runs it, on a lab fleet run by the real CLI."""

from __future__ import annotations

import pytest

from tests.test_lab_cli import LabProject, converge, lab_project  # noqa: F401 - a fixture

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]


def test_interrupting_a_lab_host_moves_its_workers_and_reports_exposure(
        lab_project: LabProject) -> None:  # noqa: F811 - the fixture
    p = lab_project

    def working() -> bool:
        rows = p.json("status")["workers"]
        return all(r["status"] in ("working", "idle") and r["host"] for r in rows)

    converge(p, working, "three workers working on lab hosts")
    rows = p.json("status")["workers"]
    # exposure per worker: a host taken without notice takes what origin lacks
    assert all(set(r["exposure"]) == {"unpushed_commits", "uncommitted_files",
                                      "newest_unpushed_commit_age_s"} for r in rows), rows

    bad = p.czarina("lab", "interrupt", "lab-9")
    assert bad.returncode == 2 and 'no lab host "lab-9"' in bad.stderr
    assert "lab-1" in bad.stderr and "Traceback" not in bad.stderr
    bad = p.czarina("lab", "interrupt", "lab-1", "--notice", "-3")
    assert bad.returncode == 2 and "--notice" in bad.stderr

    on_1 = {r["worker"] for r in rows if r["host"] == "lab-1"}
    done = p.czarina("lab", "interrupt", "lab-1")
    assert done.returncode == 0 and "Lab host lab-1 taken" in done.stdout, done.stderr
    assert "lab-1" not in {h.host_id for h in p.hosts()}

    def moved() -> bool:
        rows = p.json("status")["workers"]
        return working() and all(r["host"] != "lab-1" for r in rows)

    converge(p, moved, "lab-1's workers working elsewhere")
    events = p.json("events", "--limit", "500")
    assert any(e["entity_id"] == "lab-1" and e["to_state"] == "interrupted"
               and "czarina lab interrupt" in e["reason"] for e in events)
    again = {e["entity_id"] for e in events if e["entity"] == "worker"
             and "lab-1 is gone" in e["reason"]}
    assert on_1 and on_1 <= again
