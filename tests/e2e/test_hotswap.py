"""Issue 14, part 1: `deployer deploy --hotswap` puts a code-only change straight into the
stage's functions (no change set), `diff` then says the stack's view is out of date, and the
next full deploy brings CloudFormation back in line. A template change falls back to a full
deploy, saying why; a protected stage refuses --hotswap.

Relies on: MiniStack (CloudFormation, Lambda run as host processes, S3) with IAM enforced for
the deploy identity. The changed code is the released bootstrap with bytes appended: another
zip and CodeSha256, the same behaviour, which the invocation after the swap shows answering.
"""
import json
import os

from conftest import ROOT, run

STAGE = "e2ehot"


def cli(deployer, emulator, *args, config=None):
    cmd = [deployer] + (["--config", config] if config else []) + list(args)
    return run(cmd, env=emulator.env(STAGE), cwd=ROOT, timeout=600)


def test_a_code_change_is_hotswapped_then_a_full_deploy_brings_the_stack_in_line(deployer, emulator, package, tmp_path):
    emulator.reset()
    original = package["lambda"]["bootstrap"]
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stderr
    changed = tmp_path / "bootstrap"
    changed.write_bytes(open(original, "rb").read() + b"\0a code change for the hotswap test\0")
    os.chmod(changed, 0o755)

    lam, cfn = emulator.client("lambda"), emulator.client("cloudformation")
    function = f"pdcase-{STAGE}-table-refresher"
    before = lam.get_function_configuration(FunctionName=function)["CodeSha256"]
    events_before = len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"])
    params_before = cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]["Parameters"]

    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap")
    assert r.returncode == 0, r.stderr
    assert "hotswapped without a change set" in r.stderr, r.stderr
    after = lam.get_function_configuration(FunctionName=function)["CodeSha256"]
    assert after != before
    # No change set ran: the stack has no new events and still names the previous artifacts.
    assert len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"]) == events_before
    assert cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]["Parameters"] == params_before
    # The new code answers: an object that is not a marker, as EventBridge would send it.
    out = lam.invoke(FunctionName=function, Payload=json.dumps({"detail": {"object": {"key": "a/x.json"}}}))
    assert json.loads(out["Payload"].read()) == [{"outcome": "not_a_marker", "key": "a/x.json"}]

    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the stack's view is out of date: `deploy --hotswap` put lambda/" in r.stdout, r.stdout

    # A second hotswap of the same code has nothing to do.
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap")
    assert r.returncode == 0 and "the functions run these artifacts (nothing hotswapped)" in r.stderr, r.stderr

    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 0, r.stderr
    assert "in line with what runs again" in r.stderr, r.stderr
    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lam.get_function_configuration(FunctionName=function)["CodeSha256"] == after

    # A template change: --hotswap says why and deploys in full.
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    lambda: {{memory_mb: 1024}}\n")
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap", config=config)
    assert r.returncode == 0, r.stderr
    assert "--hotswap: the template changes " in r.stderr and "EtlFunction" in r.stderr and ": a full deploy" in r.stderr
    assert lam.get_function_configuration(FunctionName=f"pdcase-{STAGE}-etl")["MemorySize"] == 1024


def test_hotswap_back_to_the_stacks_code_needs_no_record(deployer, emulator, package, tmp_path):
    """Hotswap a change, then hotswap the stack's own artifacts back: the functions run what the
    stack names again, and `diff` finds nothing."""
    emulator.reset()
    original = package["lambda"]["bootstrap"]
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stderr
    changed = tmp_path / "bootstrap"
    changed.write_bytes(open(original, "rb").read() + b"\0another change\0")
    os.chmod(changed, 0o755)
    assert cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap").returncode == 0
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original, "--hotswap")
    assert r.returncode == 0, r.stderr
    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stdout


def test_a_protected_stage_refuses_hotswap_before_touching_anything(deployer, emulator, package, tmp_path):
    emulator.reset()
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    protected: true\n")
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"],
            "--hotswap", config=config)
    assert r.returncode == 5
    assert r.stderr.splitlines()[-1].startswith(f"error: --hotswap is refused on protected stage {STAGE}"), r.stderr
    # Only the bootstrap stack, which the administrator made before (conftest.run): the refused
    # deploy created nothing.
    stacks = [s["StackName"] for s in emulator.client("cloudformation").list_stacks()["StackSummaries"]]
    assert stacks == [f"pdcase-{STAGE}-bootstrap"], stacks


def test_a_hotswapped_spark_job_is_read_by_the_job_role_and_kept_by_gc(deployer, emulator, package, tmp_path):
    """Issue 25, part 6: on an `emr` stage, `deploy --hotswap` of a changed Spark job points the
    starter at a new content-addressed key under `spark/`, which the job runtime role reads (as
    EMR Serverless will, with IAM enforced: the role's session here, assumed as the root since
    the emulator does not check trust policies); and `gc` keeps the record and every key it
    names, though no stack's parameters name them."""
    import boto3

    emulator.reset()
    stage = "e2ehotemr"
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {stage}:\n    base_b_engine: emr\n")
    binary = package["lambda"]["bootstrap"]

    def deploy(*extra):
        return run([deployer, "--config", config, "deploy", "--stage", stage, "--lambda-bootstrap", binary, *extra],
                   env=emulator.env(stage), cwd=ROOT, timeout=600)
    r = deploy()
    assert r.returncode == 0, r.stderr
    job = tmp_path / "site_events.py"
    job.write_text(open(package["spark_job"]["path"]).read() + "\n# a change for the hotswap test\n")
    r = deploy("--spark-job", str(job), "--hotswap")
    assert r.returncode == 0, r.stderr
    assert "hotswapped without a change set" in r.stderr, r.stderr

    lam, s3 = emulator.client("lambda"), emulator.client("s3")
    uri = lam.get_function_configuration(FunctionName=f"pdcase-{stage}-emr-starter")["Environment"]["Variables"]["SPARK_JOB_URI"]
    bucket = f"pdcase-{stage}-artifacts-000000000000-us-east-1"
    assert uri.startswith(f"s3://{bucket}/spark/")
    key = uri.removeprefix(f"s3://{bucket}/")
    stack_key = {p["ParameterKey"]: p["ParameterValue"] for p in emulator.client("cloudformation").describe_stacks(
        StackName=f"pdcase-{stage}")["Stacks"][0]["Parameters"]}["SparkJobKey"]
    assert key != stack_key, "the stack still names the previous job"

    creds = emulator.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::000000000000:role/pdcase-{stage}-emr-job-us-east-1",
        RoleSessionName="emr-serverless-job")["Credentials"]
    as_job = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1", verify=str(emulator.cert),
                          aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])
    assert b"a change for the hotswap test" in as_job.get_object(Bucket=bucket, Key=key)["Body"].read()
    # And nothing else of the bucket: the Lambda zip is not the job's.
    lambda_key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lambda/")["Contents"])
    try:
        as_job.get_object(Bucket=bucket, Key=lambda_key)
        raise AssertionError("the job role read the Lambda zip")
    except as_job.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", e.response

    # gc, as the root (it reads every stack): the record and the keys it names stay.
    s3.put_object(Bucket=bucket, Key="spark/orphan/site_events.py", Body=b"# nobody's job")
    r = run([deployer, "--config", config, "gc", "--stage", stage, "--older-than-days", "0", "--yes"],
            env=emulator.env(), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {key, stack_key, f"hotswap/pdcase-{stage}.json"} <= left, left
    assert "spark/orphan/site_events.py" not in left
    assert "deleted 1 artifacts" in r.stdout, r.stdout
