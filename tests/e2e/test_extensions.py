"""A stage extended in `pipeline.yaml` (issue 28): the README's example (a DynamoDB table, an SNS
topic and an alarm on the ETL function's errors added to `alice`, and an override of the ETL
function's description) deployed, changed and torn down through the stage's generated
permissions.

Relies on: MiniStack with IAM and TLS enforced. The deploy runs as the stage's deploy identity
and CloudFormation as the stage's generated role (patch `cfn-service-role`); each added
resource's handler permissions are evaluated against that role before it is provisioned (patch
`cfn-handler-permissions-*`, which reads the schema digest `crates/deployer/data/
resource_schemas.json.gz` for types the pipeline does not use itself), and a role without them
is refused here. MiniStack provisions DynamoDB tables and CloudWatch alarms; it keeps an alarm's
settings without evaluating the metric (no alarm fires here).
"""
import json
import re
import time

import pytest

from conftest import ROOT, run

STAGE = "alice"


def readme_example() -> str:
    """The YAML block the README marks as the extension example."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- extension-example -->\n```yaml\n(.*?)```", text, re.S)
    assert block, "README.md has no extension example"
    return block.group(1)


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(readme_example())
    return path


def cli(deployer, emulator, config, *args, identity=STAGE):
    return run([deployer, "--config", config, *args], env=emulator.env(identity), cwd=ROOT, timeout=600)


def test_the_readme_example_deploys_through_generated_permissions_and_tears_down(deployer, emulator, package, config):
    emulator.reset()
    binary = package["lambda"]["bootstrap"]
    ddb, cw = emulator.client("dynamodb"), emulator.client("cloudwatch")

    # Synth says what the added types' permissions rest on.
    r = cli(deployer, emulator, config, "synth", "--stage", STAGE, "--format", "json", identity=None)
    assert r.returncode == 0, r.stderr
    assert "AWS::DynamoDB::Table: no recorded permission decisions" in r.stderr
    rendered = json.loads(r.stdout)
    assert rendered["Resources"]["EtlFunction"]["Properties"]["Description"] == "the ETL function of alice's stage"
    tags = {t["Key"]: t["Value"] for t in rendered["Resources"]["UsageTable"]["Properties"]["Tags"]}
    assert tags == {"Project": "pdcase", "Stage": STAGE}

    # The role's policy holds the table's calls on that table only.
    r = cli(deployer, emulator, config, "policy", "--stage", STAGE, "--role", "cloudformation", "--account", "000000000000", identity=None)
    assert r.returncode == 0, r.stderr
    statements = [s for p in json.loads(r.stdout)["policies"] for s in p["document"]["Statement"]]
    create = [s for s in statements if "dynamodb:CreateTable" in s["Action"]]
    assert create and all(s["Resource"] == ["arn:aws:dynamodb:us-east-1:000000000000:table/pdcase-alice-usage"]
                          or s["Resource"] == "arn:aws:dynamodb:us-east-1:000000000000:table/pdcase-alice-usage"
                          for s in create), create

    # Deploy as the deploy identity (bootstrapped first as the root, as an administrator would).
    r = cli(deployer, emulator, config, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary)
    assert r.returncode == 0, r.stderr
    assert "UsageTableName: pdcase-alice-usage" in r.stdout
    table = ddb.describe_table(TableName="pdcase-alice-usage")["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["id"]
    alarms = cw.describe_alarms()["MetricAlarms"]
    etl = [a for a in alarms if a["MetricName"] == "Errors"]
    assert len(etl) == 1 and etl[0]["Dimensions"] == [{"Name": "FunctionName", "Value": "pdcase-alice-etl"}], alarms
    assert etl[0]["AlarmActions"][0].startswith("arn:aws:sns:us-east-1:000000000000:")

    # Renaming the table replaces it: diff says so with its data at risk, deploy refuses (5).
    renamed = config.read_text().replace("TableName: pdcase-alice-usage", "TableName: pdcase-alice-usage-v2")
    config.write_text(renamed)
    r = cli(deployer, emulator, config, "diff", "--stage", STAGE, "--format", "json")
    assert r.returncode == 2, r.stderr
    report = json.loads(r.stdout)
    change = next(c for c in report["resources"] if c["logical_id"] == "UsageTable")
    assert change["replacement"] and change["data_loss"], change
    assert report["data_at_risk"] == ["UsageTable"]
    r = cli(deployer, emulator, config, "diff", "--stage", STAGE)
    assert "UsageTable (AWS::DynamoDB::Table) [REPLACEMENT] [DATA LOSS]" in r.stdout, r.stdout
    r = cli(deployer, emulator, config, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary)
    assert r.returncode == 5, r.stderr
    assert "--allow-replace UsageTable" in r.stderr
    assert ddb.describe_table(TableName="pdcase-alice-usage")["Table"]["TableStatus"] == "ACTIVE"

    # Teardown removes what was added, through the same role.
    config.write_text(readme_example())
    r = cli(deployer, emulator, config, "teardown", "--stage", STAGE, "--yes")
    assert r.returncode == 0, r.stderr
    assert "nothing left behind" in r.stderr
    assert "pdcase-alice-usage" not in ddb.list_tables()["TableNames"]
    assert not [a for a in cw.describe_alarms()["MetricAlarms"] if a["MetricName"] == "Errors"]


def test_a_role_without_the_added_types_permissions_is_refused_by_the_emulator(deployer, emulator, package, config, tmp_path):
    """The emulator enforces the added resources' handler permissions: the stage bootstrapped
    without them (its role holds no DynamoDB or CloudWatch action, and SNS actions on the
    pipeline's topics only), then the stack created with them through that role, without the
    deployer's preflight, fails on the first added resource with AWS's access-denied reason."""
    emulator.reset()
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"stages:\n  {STAGE}: {{}}\n")
    r = cli(deployer, emulator, plain, "bootstrap", "--stage", STAGE, identity=None)
    assert r.returncode == 0, r.stderr
    role = dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)["CloudFormationRoleArn"]

    # The deployer itself stops first: its preflight asks IAM's simulator.
    r = cli(deployer, emulator, config, "preflight", "--stage", STAGE)
    assert r.returncode == 1, r.stderr
    assert "dynamodb:CreateTable" in r.stderr and "deployer bootstrap --stage alice" in r.stderr

    # Without it, CloudFormation (the emulator) refuses the table as the role.
    r = run([deployer, "--config", config, "synth", "--stage", STAGE, "--format", "json"])
    body = json.dumps(json.loads(r.stdout), separators=(",", ":"))
    bucket = f"pdcase-{STAGE}-artifacts-000000000000-us-east-1"
    emulator.client("s3").put_object(Bucket=bucket, Key="lambda/x.zip", Body=open(package["lambda"]["path"], "rb").read())
    cfn = emulator.client("cloudformation")
    stack = f"pdcase-{STAGE}"
    cfn.create_stack(StackName=stack, TemplateBody=body, RoleARN=role, Capabilities=["CAPABILITY_NAMED_IAM"],
                     Parameters=[{"ParameterKey": "ArtifactsBucket", "ParameterValue": bucket},
                                 {"ParameterKey": "LambdaCodeKey", "ParameterValue": "lambda/x.zip"},
                                 {"ParameterKey": "SparkJobKey", "ParameterValue": "spark/x.py"}])
    deadline = time.time() + 120
    while cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("IN_PROGRESS"):
        assert time.time() < deadline
        time.sleep(0.3)
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed, [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events]
    # The first added resource CloudFormation reached, refused as the role, with AWS's reason.
    assert failed[0]["LogicalResourceId"] in {"UsageTable", "AlertsTopic", "EtlErrorsAlarm"}, failed[0]
    reason = failed[0]["ResourceStatusReason"]
    assert "pdcase-alice-cloudformation-us-east-1" in reason and "is not authorized to perform" in reason, reason
    assert "AccessDenied" in reason
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"


def test_an_override_that_lowers_the_guard_is_refused_even_on_a_first_deploy(deployer, emulator, package, tmp_path):
    """An override shortening the functions' log retention lowers the stage's guard: refused
    with exit 5 as a deploy that lowers it is, before anything is created."""
    emulator.reset()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"stages:\n  {STAGE}:\n    overrides:\n      EtlLogGroup: {{RetentionInDays: 1}}\n")
    r = cli(deployer, emulator, cfg, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 5, r.stderr
    assert "log retention 30 -> 1 days" in r.stderr and "--allow-lower-guard" in r.stderr
    names = [s["StackName"] for s in emulator.client("cloudformation").list_stacks()["StackSummaries"]
             if s["StackStatus"] != "DELETE_COMPLETE"]
    assert f"pdcase-{STAGE}" not in names
