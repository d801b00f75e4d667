"""`deployer diff` against a stage deployed in the local emulator, and deploy's refusal to
replace a bucket with its data.

Relies on: MiniStack's CloudFormation (GetTemplate returns what was submitted; updates).
"""
import json
import time

from conftest import ROOT
from test_deploy import deployer_cmd


def test_diff_shows_exactly_a_config_change_then_nothing_after_deploying_it(deployer, emulator, package, tmp_path):
    emulator.reset()
    stage = "e2ediff"
    binary = package["lambda"]["bootstrap"]
    assert deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary).returncode == 0
    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary)
    assert (r.returncode, r.stdout) == (0, f"Stage {stage}: no changes\n"), r.stderr

    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {stage}:\n    log_retention_days: 90\n")
    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 2, r.stderr
    assert r.stdout == (
        f"Stage {stage}: changes against the deployed stack\n"
        "~ EtlLogGroup (AWS::Logs::LogGroup)\n    Properties/RetentionInDays: 30 -> 90\n"
        "~ SiteEventsLogGroup (AWS::Logs::LogGroup)\n    Properties/RetentionInDays: 30 -> 90\n"
        "~ TableRefresherLogGroup (AWS::Logs::LogGroup)\n    Properties/RetentionInDays: 30 -> 90\n"
    )
    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary, "--format", "json", config=config)
    report = json.loads(r.stdout)
    assert [c["logical_id"] for c in report["resources"]] == ["EtlLogGroup", "SiteEventsLogGroup", "TableRefresherLogGroup"]
    assert report["data_at_risk"] == [] and report["code"] == []

    assert deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary, config=config).returncode == 0
    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_renamed_bucket_is_a_replacement_with_data_loss_and_deploy_refuses_it(deployer, emulator, package):
    """The deployed stack holds the source bucket under an older name (as after a naming
    change in the code): deploying would replace it, losing its objects."""
    emulator.reset()
    stage = "e2erename"
    binary = package["lambda"]["bootstrap"]
    assert deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary).returncode == 0
    cfn = emulator.client("cloudformation")
    stack = f"pdcase-{stage}"
    body = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    template = body if isinstance(body, dict) else json.loads(body)
    template["Resources"]["SourceBucket"]["Properties"]["BucketName"] = {"Fn::Sub": f"pdcase-{stage}-oldsource-${{AWS::AccountId}}-${{AWS::Region}}"}
    params = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]]
    # Out of band, as an administrator with a role of their own: the stage's role may create
    # only the stage's own names (tests/e2e/test_permissions.py).
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template), Parameters=params, Capabilities=["CAPABILITY_NAMED_IAM"],
                     RoleARN=emulator.admin_cloudformation_role())
    deadline = time.time() + 60
    while cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("IN_PROGRESS") and time.time() < deadline:
        time.sleep(0.5)

    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary)
    assert r.returncode == 2
    assert "~ SourceBucket (AWS::S3::Bucket) [REPLACEMENT] [DATA LOSS]\n" in r.stdout, r.stdout
    assert "! data at risk: SourceBucket; deploy refuses this unless given --allow-replace for each\n" in r.stdout

    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary)
    assert r.returncode == 5, r.stderr
    assert "would replace or remove SourceBucket with their data" in r.stderr
    assert "--allow-replace SourceBucket" in r.stderr
    assert f"oldsource" in json.dumps(cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]), "nothing deployed"

    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary, "--allow-replace", "SourceBucket")
    assert r.returncode == 0, r.stderr
    assert deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary).returncode == 0


def test_changeset_shows_cloudformations_view_and_leaves_nothing_behind(deployer, emulator, package, tmp_path):
    emulator.reset()
    stage = "e2ecs"
    binary = package["lambda"]["bootstrap"]
    assert deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary).returncode == 0
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {stage}:\n    lambda: {{memory_mb: 1024}}\n")
    cfn = emulator.client("cloudformation")
    before = cfn.list_change_sets(StackName=f"pdcase-{stage}")["Summaries"]
    r = deployer_cmd(deployer, emulator, "diff", "--stage", stage, "--lambda-bootstrap", binary, "--changeset",
                     "--format", "json", config=config)
    assert r.returncode == 2, r.stderr
    report = json.loads(r.stdout)
    modified = {(e["action"], e["logical_id"]) for e in report["changeset"]}
    assert ("Modify", "EtlFunction") in modified, report["changeset"]
    assert cfn.list_change_sets(StackName=f"pdcase-{stage}")["Summaries"] == before, "the change set was deleted"
    assert cfn.describe_stacks(StackName=f"pdcase-{stage}")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
