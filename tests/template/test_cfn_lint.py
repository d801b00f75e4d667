"""cfn-lint (pinned) reports nothing on the rendered templates.

Relies on: cfn-lint's rules and the resource schemas it ships (offline). This is the gate for
what the local emulator accepts but AWS would reject.
"""

import json

import pytest

from conftest import STAGES, run, tool


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("stage", STAGES)
def test_no_errors_no_warnings(rendered, stage, fmt):
    path = rendered[(stage, fmt)]
    r = run([tool("cfn-lint"), "--format", "parseable", "--", path])
    assert r.returncode == 0 and r.stdout.strip() == "", f"cfn-lint on {path}:\n{r.stdout}{r.stderr}"


def test_the_gate_can_fail(rendered, tmp_path):
    """A broken template (a function without its required Role, a bad retention) is reported."""
    t = json.loads(rendered[("alice", "json")].read_text())
    del t["Resources"]["EtlFunction"]["Properties"]["Role"]
    t["Resources"]["EtlLogGroup"]["Properties"]["RetentionInDays"] = 10
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(t))
    r = run([tool("cfn-lint"), "--format", "parseable", "--", broken])
    assert r.returncode != 0
    assert ":E3003:'Role' is a required property" in r.stdout, r.stdout
    assert ":E3030:10 is not one of" in r.stdout, r.stdout
