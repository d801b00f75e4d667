"""The resource facts `diff`, the CloudFormation role's policy, preflight and the emulator read
(crates/stack-model/data/resource_facts.json) are what the pinned schemas and IAM definitions
give: regenerated here and compared, so a new cfn-lint or parliament, or an edited decision,
shows as a failing test until the file is generated again. And every type the templates
render has its facts, with create-only properties equal to its schema's.

Relies on: cfn-lint's bundled schemas and parliament's IAM definitions (offline)."""
import json
import subprocess
import sys

from conftest import ROOT, STAGES
from test_resource_schemas import schema_for

FACTS = ROOT / "crates" / "stack-model" / "data" / "resource_facts.json"
DIGEST = ROOT / "crates" / "deployer" / "data" / "resource_schemas.json.gz"


def test_the_facts_file_is_what_the_pinned_inputs_give():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_resource_facts.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_rendered_type_has_facts_with_its_schemas_create_only_properties(rendered, deployer, config_file, tmp_path):
    from conftest import run

    facts = json.loads(FACTS.read_text())["types"]
    used = set()
    for stage in STAGES:
        used |= {r["Type"] for r in json.loads(rendered[(stage, "json")].read_text())["Resources"].values()}
        out = tmp_path / f"{stage}-bootstrap.json"
        r = run([deployer, "--config", config_file, "synth", "--stage", stage, "--bootstrap", "--format", "json", "--out", out])
        assert r.returncode == 0, r.stderr
        used |= {r["Type"] for r in json.loads(out.read_text())["Resources"].values()}
    import gzip
    digest = json.loads(gzip.decompress(DIGEST.read_bytes()))["types"]
    # The types the user added (`resources:` in the gate config): the digest's facts, without
    # recorded decisions.
    added = used - set(facts)
    assert added == {"AWS::DynamoDB::Table", "AWS::CloudWatch::Alarm"}, added
    for t in sorted(used):
        if t in added:
            assert not digest[t]["decided"], t
            expected = sorted(p.removeprefix("/properties/") for p in schema_for(t).get("createOnlyProperties", []))
            assert digest[t]["create_only"] == expected, t
            continue
        assert t in facts, f"{t} is rendered but has no facts: add it to handler_decisions.json"
        expected = sorted(p.removeprefix("/properties/") for p in schema_for(t).get("createOnlyProperties", []))
        assert facts[t]["create_only"] == expected, t


def test_the_two_blockers_are_required_on_create():
    facts = json.loads(FACTS.read_text())["types"]
    for t, action in [("AWS::IAM::InstanceProfile", "iam:PassRole"), ("AWS::KMS::Key", "kms:TagResource")]:
        entry = next(a for a in facts[t]["handlers"]["create"] if a["action"] == action)
        assert "when" not in entry, (t, action)
