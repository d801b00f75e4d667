"""parliament (pinned) on every IAM policy of the rendered templates: the functions' and
services' roles, and the buckets' policies. Zero findings, or each listed in
docs/SECURITY-CHECKS.md ("parliament") with its reason; a listed one that no longer occurs
fails too.

Relies on: parliament's offline IAM database (actions, resource types, condition keys). The
policies are read from the template with its intrinsic functions resolved for a sample account
(`Fn::Sub`, `Ref`, `Fn::GetAtt` of the stage's own resources), since parliament reads plain
policies; what AWS itself does with them is not run here (the emulator's IAM is a separate gate).
"""

import json
import re

import pytest

from conftest import HARDENED_STAGES, ROOT, STAGES

ACCOUNT, PARTITION = "123456789012", "aws"


class Resolver:
    """Plain values for a template's intrinsic functions, as CloudFormation would resolve them
    in account ACCOUNT: names from the resources' own name properties, ARNs in each service's
    documented form."""

    NAME = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::IAM::Role": "RoleName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::Glue::Crawler": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::IAM::InstanceProfile": "InstanceProfileName",
        "AWS::Athena::WorkGroup": "Name",
        "AWS::SQS::Queue": "QueueName",
    }

    def __init__(self, template: dict, region: str):
        self.resources = template["Resources"]
        self.region = region
        self.params = {
            "ArtifactsBucket": f"pdcase-stage-artifacts-{ACCOUNT}-{region}",
            "LambdaCodeKey": "lambda/0123.zip",
            "SparkJobKey": "spark/0123/site_events.py",
        }
        self.pseudo = {"AWS::Partition": PARTITION, "AWS::Region": region, "AWS::AccountId": ACCOUNT,
                       "AWS::URLSuffix": "amazonaws.com"}

    def name(self, lid: str) -> str:
        r = self.resources[lid]
        key = self.NAME.get(r["Type"])
        props = r.get("Properties", {})
        return self(props[key]) if key in props else f"{lid.lower()}-0123"

    def ref(self, lid: str) -> str:
        if lid in self.pseudo:
            return self.pseudo[lid]
        if lid in self.params:
            return self.params[lid]
        t = self.resources[lid]["Type"]
        if t == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{self.region}:{ACCOUNT}:{self.name(lid)}"
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{self.name(lid)}"
        if t == "AWS::Glue::Database":
            return self(self.resources[lid]["Properties"]["DatabaseInput"]["Name"])
        return self.name(lid)

    def get_att(self, lid: str, attr: str) -> str:
        t, n = self.resources[lid]["Type"], self.name(lid)
        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{n}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{n}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{self.region}:{ACCOUNT}:function:{n}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{self.region}:{ACCOUNT}:key/0123abcd-0123-0123-0123-0123456789ab",
            "AWS::EMRServerless::Application": f"arn:{PARTITION}:emr-serverless:{self.region}:{ACCOUNT}:/applications/00f0123456789abc",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{self.region}:{ACCOUNT}:{n}",
            # A log group's `Arn` attribute ends in `:*` (CloudFormation user guide,
            # AWS::Logs::LogGroup, "Fn::GetAtt").
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{self.region}:{ACCOUNT}:log-group:{n}:*",
        }
        assert attr == "Arn" and t in arns, (lid, attr)
        return arns[t]

    def __call__(self, x):
        if isinstance(x, list):
            return [self(i) for i in x]
        if isinstance(x, dict) and len(x) == 1 and next(iter(x)).startswith(("Ref", "Fn::")):
            (fn, arg), = x.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                return self.get_att(*arg)
            if fn == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else arg
                return re.sub(r"\$\{([^}!]+)\}",
                              lambda m: self(names[m.group(1)]) if m.group(1) in names else self.ref(m.group(1)), text)
            if fn == "Fn::Join":
                return arg[0].join(self(i) for i in arg[1])
            raise AssertionError(f"unresolved {fn}")
        if isinstance(x, dict):
            return {k: self(v) for k, v in x.items()}
        return x


def policies(template: dict, region: str):
    """(where, policy document) of every identity policy in the template."""
    resolve = Resolver(template, region)
    for lid, r in template["Resources"].items():
        if r["Type"] == "AWS::IAM::Role":
            for p in r["Properties"].get("Policies", []):
                yield f"{lid}/{p['PolicyName'].split('-')[-1]}", resolve(p["PolicyDocument"])


def findings(doc: dict) -> list[tuple[str, str]]:
    from parliament import analyze_policy_string

    policy = analyze_policy_string(json.dumps({"Version": "2012-10-17", **doc}))
    return [(f.issue, json.dumps(f.detail, sort_keys=True)) for f in policy.findings]


def accepted() -> set[str]:
    """The parliament findings docs/SECURITY-CHECKS.md lists: `| parliament ISSUE | where |`."""
    text = (ROOT / "docs" / "SECURITY-CHECKS.md").read_text()
    return set(re.findall(r"^\| parliament (\w+) \| `([^`]+)` \|", text, re.M))


@pytest.mark.parametrize("stage", STAGES)
def test_every_policy_passes_parliament_or_its_finding_is_listed(rendered, stage):
    template = json.loads(rendered[(stage, "json")].read_text())
    region = "eu-west-1" if stage == "prod" else "us-east-1"
    seen, count = set(), 0
    for where, doc in policies(template, region):
        count += 1
        for issue, _ in findings(doc):
            seen.add((issue, where.split("/")[0]))
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("Policies")]
    # Four on a stage whose base b runs in a function (ETL, site-events, refresher, crawler),
    # five with the EMR starter and the Spark job's runtime role.
    assert count >= len(roles) >= 4, "every role's inline policy is read"
    # A finding is listed for a role; only the stages that hold the role must show it.
    holders = {where.split("/")[0] for where, _ in policies(template, region)}
    listed = {a for a in accepted() if not a[1].startswith(("deploy-policy", "cloudformation-role"))}
    assert seen - listed == set(), f"parliament findings not listed in docs/SECURITY-CHECKS.md: {sorted(seen - listed)}"
    held = {a for a in listed if a[1] in holders}
    assert held - seen == set(), f"listed but no longer found (remove them): {sorted(held - seen)}"


def test_parliament_reports_a_misspelt_action_and_a_needless_wildcard():
    """The gate can fail."""
    bad = {"Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": ["arn:aws:s3:::b/*"]},
        {"Effect": "Allow", "Action": ["elasticmapreduce:PutAutoTerminationPolicy"], "Resource": ["*"]},
    ]}
    issues = {issue for issue, _ in findings(bad)}
    assert {"UNKNOWN_ACTION", "RESOURCE_STAR"} <= issues, issues


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_policy_passes_parliament_or_its_finding_is_listed(deployer, config_file, stage):
    """`deployer policy`: what a CI identity needs for one stage."""
    from conftest import run

    r = run([deployer, "--config", config_file, "policy", "--stage", stage, "--account", ACCOUNT])
    assert r.returncode == 0, r.stderr
    parts = json.loads(r.stdout)["policies"]
    assert parts and all(p["name"].startswith(f"pdcase-{stage}-deploy-") for p in parts)
    seen = set()
    for p in parts:
        for issue, _ in findings(p["document"]):
            seen.add((issue, "deploy-policy"))
    # `deploy-policy-hardened`: only the hardened stages' deploy policy has it.
    kinds = {"deploy-policy", "deploy-policy-hardened"} if stage in HARDENED_STAGES else {"deploy-policy"}
    listed = {(issue, "deploy-policy") for issue, where in accepted() if where in kinds}
    assert seen - listed == set(), f"parliament findings not listed in docs/SECURITY-CHECKS.md: {sorted(seen - listed)}"
    assert listed - seen == set(), f"listed but no longer found (remove them): {sorted(listed - seen)}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_cloudformation_roles_policy_passes_parliament_or_its_finding_is_listed(deployer, config_file, stage):
    """`deployer policy --role cloudformation`: the stage's CloudFormation role, generated from
    the handlers' permissions. The emulator's enforcement proves it sufficient
    (tests/e2e/test_permissions.py); this gate says what it grants is well formed."""
    from conftest import run

    r = run([deployer, "--config", config_file, "policy", "--stage", stage, "--account", ACCOUNT,
             "--role", "cloudformation"])
    assert r.returncode == 0, r.stderr
    parts = json.loads(r.stdout)["policies"]
    assert 1 <= len(parts) <= 10 and all(p["name"].startswith(f"pdcase-{stage}-cloudformation-") for p in parts)
    seen = set()
    for p in parts:
        for issue, _ in findings(p["document"]):
            seen.add((issue, "cloudformation-role"))
    listed = {(issue, where) for issue, where in accepted() if where == "cloudformation-role"}
    assert seen - listed == set(), f"parliament findings not listed in docs/SECURITY-CHECKS.md: {sorted(seen - listed)}"
    assert listed - seen == set(), f"listed but no longer found (remove them): {sorted(listed - seen)}"
