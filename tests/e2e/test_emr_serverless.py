"""Base b's Spark engine on EMR Serverless, in the local emulator with IAM and TLS enforced: the
application's lifecycle around a deploy and a teardown, and the upgrade of a stage deployed
with the EMR-on-EC2 network of earlier versions.

Relies on: MiniStack with AUTH=true and USE_SSL=1 and the patches of scripts/patch_emulator.py:
`emr-serverless-*` (the service of scripts/emulator/pdcase_emr_serverless.py: an application
that is started refuses UpdateApplication and DeleteApplication, StopApplication is refused
while a run is active, a run stays RUNNING for PDCASE_EMR_SERVERLESS_RUN_SECONDS; calls
authorized on the application's and runs' ARNs and tags), `ec2-referenced-security-group` (a
group another group's rule references cannot be deleted), `ec2-security-group-tags` (the
deploy identity deletes only groups tagged by EMR), and `cfn-handler-permissions-*` (each
resource's handler permissions against the stage's CloudFormation role). The CLI acts as the
stage's deploy identity. Not run: a Spark job (the emulator records runs), EMR itself creating
its security groups (seeded here as EMR creates them: tagged, referencing each other).
"""
import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, run
from test_deploy import STAGE_CONFIGS, deployer_cmd
from test_etl_lambda import wait_for

DATA = Path(__file__).parent / "data"
ACCOUNT, REGION = "000000000000", "us-east-1"
EMR_TAG = "for-use-with-amazon-emr-managed-policies"


def configure(stage: str, tmp_path, extra: str = "") -> Path:
    path = tmp_path / f"{stage}.yaml"
    path.write_text(f"stages:\n  {stage}:\n    base_b_engine: emr\n{extra}")
    STAGE_CONFIGS[stage] = str(path)
    return path


def outputs(emulator, stage) -> dict:
    s = emulator.client("cloudformation").describe_stacks(StackName=f"pdcase-{stage}")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}


def nothing_left(emulator, stage: str):
    """No stack, application, bucket, role, function, log group, topic or VPC of `stage`."""
    prefix = f"pdcase-{stage}-"
    cfn = emulator.client("cloudformation")
    live = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"].startswith(f"pdcase-{stage}")]
    assert live == []
    apps = emulator.client("emr-serverless").list_applications()["applications"]
    assert [a["name"] for a in apps if a["name"].startswith(prefix)] == []
    buckets = [b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"] if b["Name"].startswith(prefix)]
    assert buckets == []
    roles = [r["RoleName"] for r in emulator.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(prefix)]
    assert roles == []
    profiles = emulator.client("iam").list_instance_profiles()["InstanceProfiles"]
    assert [p["InstanceProfileName"] for p in profiles if p["InstanceProfileName"].startswith(prefix)] == []
    functions = emulator.client("lambda").list_functions()["Functions"]
    assert [f["FunctionName"] for f in functions if f["FunctionName"].startswith(prefix)] == []
    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}")["logGroups"]
    assert groups == []
    topics = emulator.client("sns").list_topics()["Topics"]
    assert [t["TopicArn"] for t in topics if f":{prefix}" in t["TopicArn"]] == []
    vpcs = emulator.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Stage", "Values": [stage]}])["Vpcs"]
    assert vpcs == []


def test_the_application_is_stopped_for_an_update_once_its_runs_end_and_deleted_by_teardown(
        deployer, emulator, package, tmp_path):
    """A deploy that changes the application waits for its running job run, stops it, and
    updates it; a teardown with --cancel-runs cancels the run, and leaves nothing behind."""
    emulator.reset()
    stage = "esrvlife"
    configure(stage, tmp_path)
    binary = package["lambda"]["bootstrap"]
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary)
    assert r.returncode == 0, r.stderr
    app = outputs(emulator, stage)["EmrApplicationId"]
    es = emulator.client("emr-serverless")
    assert es.get_application(applicationId=app)["application"]["maximumCapacity"]["cpu"] == "32 vCPU"

    r = deployer_cmd(deployer, emulator, "trigger", "spark", "--stage", stage)
    assert r.returncode == 0, r.stderr
    run_id = wait_for("the job run", lambda: [x["id"] for x in es.list_job_runs(applicationId=app)["jobRuns"]])[0]
    assert es.get_application(applicationId=app)["application"]["state"] == "STARTED"
    # What CloudFormation's handler meets on a started application: refused.
    with pytest.raises(es.exceptions.ValidationException):
        es.update_application(applicationId=app, maximumCapacity={"cpu": "64 vCPU", "memory": "256 GB"})

    # A deploy that changes the application's capacity: it waits for the run.
    configure(stage, tmp_path, "    emr: {max_vcpu: 64, max_memory_gb: 256}\n")
    cmd = [deployer, "--config", STAGE_CONFIGS[stage], "deploy", "--stage", stage, "--lambda-bootstrap", binary]
    proc = subprocess.Popen([str(c) for c in cmd], env=emulator.env(stage), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "waiting for 1 job run(s)" in line:
                break
        assert any(run_id in l and "--cancel-runs" in l for l in lines), lines
        assert es.get_application(applicationId=app)["application"]["maximumCapacity"]["cpu"] == "32 vCPU"
        # The run ends (cancelled from outside the deploy, as a run that finishes).
        es.cancel_job_run(applicationId=app, jobRunId=run_id)
        _, rest = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert f"stopping application {app}" in text, text
    got = es.get_application(applicationId=app)["application"]
    assert got["maximumCapacity"]["cpu"] == "64 vCPU" and got["state"] == "STOPPED"

    # Teardown while a run is active: --cancel-runs cancels it, then everything goes.
    r = deployer_cmd(deployer, emulator, "trigger", "spark", "--stage", stage)
    assert r.returncode == 0, r.stderr
    second = wait_for("the second run", lambda: [x["id"] for x in es.list_job_runs(applicationId=app)["jobRuns"]
                                                  if x["state"] in ("SUBMITTED", "RUNNING")])[0]
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", stage, "--yes", "--cancel-runs")
    assert r.returncode == 0, r.stderr
    assert f"cancelled 1 job run(s) of application {app} ({second})" in r.stderr, r.stderr
    nothing_left(emulator, stage)


UPGRADE = "upgrade"  # the stage tests/e2e/data/emr_on_ec2_stage_upgrade.json was rendered for


def deploy_todays_network(emulator, deployer, package, tmp_path) -> str:
    """Stage `upgrade` as the last deployer before EMR Serverless made it (its template, kept in
    tests/e2e/data, with the VPC, subnet, route table, S3 endpoint, EMR roles and instance
    profile), created through the stage's CloudFormation role after `deployer bootstrap`, the
    role holding for that create what the earlier version's role held (here: everything, taken
    back at once; this version's role may only delete the network); then EMR's three managed security
    groups in its VPC, tagged as EMR tags them, each group's rules referencing the others.
    Returns the VPC's id."""
    configure(UPGRADE, tmp_path)
    r = run([deployer, "--config", STAGE_CONFIGS[UPGRADE], "bootstrap", "--stage", UPGRADE],
            env=emulator.env(), cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    bucket = f"pdcase-{UPGRADE}-artifacts-{ACCOUNT}-{REGION}"
    s3 = emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="lambda/old.zip", Body=Path(package["lambda"]["path"]).read_bytes())
    s3.put_object(Bucket=bucket, Key="spark/old/site_events.py", Body=b"# the old job\n")
    cfn = emulator.client("cloudformation")
    iam = emulator.client("iam")
    stack = f"pdcase-{UPGRADE}"
    role = f"pdcase-{UPGRADE}-cloudformation-{REGION}"
    iam.put_role_policy(RoleName=role, PolicyName="earlier-version", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(json.loads((DATA / "emr_on_ec2_stage_upgrade.json").read_text()), separators=(",", ":")),
                     RoleARN=iam.get_role(RoleName=role)["Role"]["Arn"],
                     Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=[
                         {"ParameterKey": "ArtifactsBucket", "ParameterValue": bucket},
                         {"ParameterKey": "LambdaCodeKey", "ParameterValue": "lambda/old.zip"},
                         {"ParameterKey": "SparkJobKey", "ParameterValue": "spark/old/site_events.py"}])
    wait_for("the old stack", lambda: not cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("IN_PROGRESS"),
             timeout=180)
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    iam.delete_role_policy(RoleName=role, PolicyName="earlier-version")
    vpc = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="EmrVpc")["StackResourceDetail"]["PhysicalResourceId"]
    ec2 = emulator.client("ec2")
    tags = [{"ResourceType": "security-group", "Tags": [{"Key": EMR_TAG, "Value": "true"}]}]
    ids = {name: ec2.create_security_group(GroupName=name, Description=f"{name} (EMR)", VpcId=vpc,
                                           TagSpecifications=tags)["GroupId"]
           for name in ["ElasticMapReduce-Master-Private", "ElasticMapReduce-Slave-Private",
                        "ElasticMapReduce-ServiceAccess"]}
    for name, gid in ids.items():
        others = [{"GroupId": o} for o in ids.values() if o != gid]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "UserIdGroupPairs": others}])
        ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 9443, "ToPort": 9443, "UserIdGroupPairs": others}])
    # As on AWS: the groups hold the VPC, and each holds the others.
    with pytest.raises(ec2.exceptions.ClientError, match="DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc)
    with pytest.raises(ec2.exceptions.ClientError, match="DependencyViolation"):
        ec2.delete_security_group(GroupId=ids["ElasticMapReduce-ServiceAccess"])
    return vpc


def emr_groups(emulator, vpc):
    groups = emulator.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    return [g["GroupName"] for g in groups["SecurityGroups"] if g["GroupName"] != "default"]


def test_a_stage_with_todays_network_is_upgraded_by_one_deploy_then_torn_down(deployer, emulator, package, tmp_path):
    emulator.reset()
    vpc = deploy_todays_network(emulator, deployer, package, tmp_path)
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", UPGRADE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    assert f"removing EMR's managed security groups from {vpc}" in r.stderr, r.stderr
    assert emr_groups(emulator, vpc) == []
    cfn = emulator.client("cloudformation")
    stack = cfn.describe_stacks(StackName=f"pdcase-{UPGRADE}")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["RoleARN"].endswith(f"role/pdcase-{UPGRADE}-cloudformation-{REGION}")
    held = {x["LogicalResourceId"] for x in cfn.list_stack_resources(StackName=f"pdcase-{UPGRADE}")["StackResourceSummaries"]}
    assert {"EmrApplication", "EmrJobRole", "EmrStarterFunction"} <= held
    assert not held & {"EmrVpc", "EmrSubnet", "EmrRouteTable", "EmrSubnetRoutes", "EmrS3Endpoint",
                       "EmrServiceRole", "EmrInstanceRole", "EmrInstanceProfile"}
    assert emulator.client("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"] == []
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", UPGRADE, "--yes")
    assert r.returncode == 0, r.stderr
    nothing_left(emulator, UPGRADE)


def test_a_stage_with_todays_network_tears_down_with_emrs_groups(deployer, emulator, package, tmp_path):
    emulator.reset()
    vpc = deploy_todays_network(emulator, deployer, package, tmp_path)
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", UPGRADE, "--yes")
    assert r.returncode == 0, r.stderr
    assert f"removing EMR's managed security groups from {vpc}" in r.stderr, r.stderr
    nothing_left(emulator, UPGRADE)
