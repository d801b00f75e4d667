"""AWS Control Tower's proactive controls (the cfn-guard rules of the npm package
@cdklabs/cdk-validator-cfnguard, pinned in scripts/setup-cfnguard) on the rendered templates of
`alice`, a protected `prod` and a stage of the longest name, and on their bootstrap stacks
(the artifacts bucket, deployed first). An organization that turns these controls on as
CloudFormation hooks refuses a template that fails one. Every failure is listed in
docs/SECURITY-CHECKS.md ("AWS Control Tower") with its stages, resources and reason; the test
fails on an unlisted failure and on a listed one that passes now.

Relies on: cfn-guard 3.1.1 and the rules shipped in that package, offline.
"""

import json
import re
import subprocess

import pytest

from conftest import MAX_STAGE, ROOT, STAGES, run

# How docs/SECURITY-CHECKS.md names the stages.
STAGE_NAMES = {"alice": "alice", "prod": "prod", MAX_STAGE: "max"}


@pytest.fixture(scope="session")
def guard():
    return subprocess.run([str(ROOT / "scripts" / "setup-cfnguard")], capture_output=True, text=True,
                          check=True).stdout.strip()


def failures(guard: str, template) -> dict[str, set[str]]:
    """{rule: logical ids of the resources that fail it}."""
    r = subprocess.run([f"{guard}/bin/ubuntu/x86_64/cfn-guard", "validate", "--data", str(template),
                        "--rules", f"{guard}/rules/control-tower/cfn-guard", "--output-format", "json",
                        "--show-summary", "none"], capture_output=True, text=True)
    # 0: all pass; 19: some rule fails. Anything else is the tool failing.
    assert r.returncode in (0, 19), r.stderr
    decoder, text, i, found = json.JSONDecoder(), r.stdout, 0, {}
    while True:
        rest = text[i:].lstrip()
        if not rest:
            break
        report, n = decoder.raw_decode(rest)
        i = len(text) - len(rest) + n
        if report["status"] != "FAIL":
            continue
        for entry in report["not_compliant"]:
            rule = entry["Rule"]["name"]
            found.setdefault(rule, set()).update(re.findall(r'"/Resources/([A-Za-z0-9]+)', json.dumps(entry)))
    return found


def listed(stage: str, stack: str = "") -> dict[str, set[str]]:
    """{rule: resources} that docs/SECURITY-CHECKS.md accepts for `stage`'s pipeline stack, or
    with `stack="bootstrap"` its bootstrap stack (named `alice-bootstrap` there)."""
    text = (ROOT / "docs" / "SECURITY-CHECKS.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9_]+_check)` \| ([a-z, -]+) \| ([A-Za-z0-9, ]+) \|", text, re.M)
    name = STAGE_NAMES[stage] + (f"-{stack}" if stack else "")
    return {rule: {r.strip() for r in resources.split(",")} for rule, stages, resources in rows
            if name in {s.strip() for s in stages.split(",")}}


def assert_listed(found: dict[str, set[str]], accepted: dict[str, set[str]], what: str):
    """Every failing rule is listed with exactly its resources, and every listed rule fails."""
    assert found.keys() - accepted.keys() == set(), \
        f"Control Tower rules failing on {what}, not listed in docs/SECURITY-CHECKS.md: {sorted(found.keys() - accepted.keys())}"
    assert accepted.keys() - found.keys() == set(), \
        f"listed for {what} but passing now (remove them): {sorted(accepted.keys() - found.keys())}"
    for rule, resources in found.items():
        assert resources == accepted[rule], f"{rule}: fails on {sorted(resources)}, listed {sorted(accepted[rule])}"


@pytest.mark.parametrize("stage", STAGES)
def test_every_control_tower_failure_is_listed(guard, rendered, stage):
    assert_listed(failures(guard, rendered[(stage, "json")]), listed(stage), stage)


@pytest.fixture(scope="session")
def bootstrap_rendered(deployer, config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("bootstrap")
    paths = {}
    for stage in STAGES:
        path = out / f"{stage}.json"
        r = run([deployer, "--config", config_file, "synth", "--stage", stage, "--format", "json", "--bootstrap",
                 "--out", path])
        assert r.returncode == 0, r.stderr
        paths[stage] = path
    return paths


@pytest.mark.parametrize("stage", STAGES)
def test_every_control_tower_failure_of_the_bootstrap_stack_is_listed(guard, bootstrap_rendered, stage):
    assert_listed(failures(guard, bootstrap_rendered[stage]), listed(stage, "bootstrap"), f"{stage}'s bootstrap stack")


def test_the_gate_sees_a_bucket_policy_that_allows_plain_http(guard, rendered, tmp_path):
    """The gate can fail: without the TLS-only statement, CT.S3.PR.10 fails on every bucket."""
    t = json.loads(rendered[("alice", "json")].read_text())
    for r in t["Resources"].values():
        if r["Type"] == "AWS::S3::BucketPolicy":
            r["Properties"]["PolicyDocument"]["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(t))
    found = failures(guard, path)
    assert "s3_bucket_policy_ssl_requests_only_check" in found, sorted(found)
    assert "s3_bucket_policy_ssl_requests_only_check" not in listed("alice")
