"""`deployer deploy` and `deployer teardown` against the local emulator, as a user runs them.

Relies on: MiniStack's CloudFormation (change sets, events, real stack states), S3 with
versioning, Lambda, with IAM and TLS enforced: the CLI's calls are checked against the stage's
deploy policy, what CloudFormation then creates against the stage's CloudFormation role
(patches `cfn-service-role` and `cfn-handler-permissions-*`), and each function runs as its
own role. Not shown here (the emulator does not do it): DELETE_FAILED on a
non-empty bucket; teardown empties buckets itself, which this test checks by the buckets'
contents before deletion being gone.
"""
import json
import os
from pathlib import Path

from conftest import ROOT, run

STAGE = "e2edeploy"


def bootstrap_binary() -> str:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pdcase" / "target"))
    return str(target / "x86_64-unknown-linux-musl" / "release" / "bootstrap")


# Stages whose tests need a config of their own by default: {stage: pipeline.yaml path}.
STAGE_CONFIGS = {}


def emr_engine(stage: str, tmp_path) -> None:
    """Runs `stage`'s base b on EMR (`base_b_engine: emr`) in every later call of the CLI."""
    path = tmp_path / f"{stage}-pipeline.yaml"
    path.write_text(f"stages:\n  {stage}:\n    base_b_engine: emr\n")
    STAGE_CONFIGS[stage] = path


def deployer_cmd(deployer, emulator, *args, config=None):
    """The CLI as a user runs it: as the stage's deploy identity (an IAM user holding only
    `deployer policy --stage S`), except `invoke`, which runs a function's code here with the
    developer's own identity (the account root in these tests): the deploy policy does not
    cover what the functions do."""
    cmd = [deployer]
    stage = args[args.index("--stage") + 1] if "--stage" in args else None
    config = config or STAGE_CONFIGS.get(stage)
    if config:
        cmd += ["--config", config]
    identity = None if args[0] == "invoke" else stage
    return run(cmd + list(args), env=emulator.env(identity), cwd=ROOT, timeout=600)


def outputs(text: str) -> dict:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_create_noop_update_and_teardown_of_a_stage(deployer, emulator, package, tmp_path):
    emulator.reset()
    cfn, s3, lam = emulator.client("cloudformation"), emulator.client("s3"), emulator.client("lambda")
    binary = package["lambda"]["bootstrap"]

    # Create.
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary)
    assert r.returncode == 0, r.stderr
    out = outputs(r.stdout)
    stack = cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert out["SourceBucketName"] == f"pdcase-{STAGE}-source-000000000000-us-east-1"
    assert "uploaded" in r.stderr
    artifacts = cfn.describe_stacks(StackName=f"pdcase-{STAGE}-bootstrap")["Stacks"][0]["Outputs"][0]["OutputValue"]
    versions_before = s3.list_object_versions(Bucket=artifacts).get("Versions", [])
    assert {v["Key"].split("/")[0] for v in versions_before} == {"lambda", "spark"}
    fn = lam.get_function_configuration(FunctionName=f"pdcase-{STAGE}-etl")
    assert fn["MemorySize"] == 2048

    # No-op: no upload (the versioned bucket gains no version), no change set, no stack event.
    events_before = len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"])
    change_sets_before = cfn.list_change_sets(StackName=f"pdcase-{STAGE}")["Summaries"]
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary)
    assert r.returncode == 0, r.stderr
    assert "is up to date" in r.stderr
    assert s3.list_object_versions(Bucket=artifacts).get("Versions", []) == versions_before
    assert len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"]) == events_before
    assert cfn.list_change_sets(StackName=f"pdcase-{STAGE}")["Summaries"] == change_sets_before
    assert outputs(r.stdout) == out

    # Update of a changed property.
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    lambda: {{memory_mb: 1024}}\n")
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 0, r.stderr
    assert cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert lam.get_function_configuration(FunctionName=f"pdcase-{STAGE}-etl")["MemorySize"] == 1024
    assert "already there" in r.stderr, "same artifacts: not uploaded again"

    # Teardown of a stage whose versioned buckets hold versions and delete markers.
    source = out["SourceBucketName"]
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=source, Key="a/students.json", Body=body)
    s3.delete_object(Bucket=source, Key="a/students.json")
    listed = s3.list_object_versions(Bucket=source)
    assert len(listed["Versions"]) == 2 and len(listed["DeleteMarkers"]) == 1
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", STAGE, "--yes")
    assert r.returncode == 0, r.stderr
    assert f"s3://{source}: empty (3 object versions deleted)" in r.stderr
    assert "nothing left behind" in r.stderr
    names = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert f"pdcase-{STAGE}" not in names and f"pdcase-{STAGE}-bootstrap" not in names
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not [b for b in buckets if b.startswith(f"pdcase-{STAGE}-")], buckets


def test_teardown_of_a_stage_that_does_not_exist_is_not_an_error(deployer, emulator):
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", "neverdeployed", "--yes")
    assert r.returncode == 0, r.stderr
    assert "nothing to tear down" in r.stderr


def test_teardown_refuses_a_protected_stage_and_asks_when_not_told(deployer, emulator, tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text("stages:\n  prod:\n    protected: true\n")
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", "prod", "--yes", config=config)
    assert r.returncode == 1
    assert "protected" in r.stderr


def test_a_failed_first_create_rolls_back_names_its_cause_and_is_recovered(deployer, emulator, package):
    """A real CREATE_FAILED -> ROLLBACK_COMPLETE in the emulator: the stage's source bucket
    name is already taken (as when another account or an old stage holds it)."""
    emulator.reset()
    s3, cfn = emulator.client("s3"), emulator.client("cloudformation")
    stage = "e2erollback"
    taken = f"pdcase-{stage}-source-000000000000-us-east-1"
    s3.create_bucket(Bucket=taken)
    binary = package["lambda"]["bootstrap"]
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary)
    assert r.returncode == 3, r.stderr
    assert cfn.describe_stacks(StackName=f"pdcase-{stage}")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    assert f"error: pdcase-{stage} ended ROLLBACK_COMPLETE" in r.stderr
    assert f"caused by SourceBucket (AWS::S3::Bucket): Resource of type 'AWS::S3::Bucket' with identifier '{taken}' already exists." in r.stderr

    # The name is freed; the next deploy deletes the dead stack and creates it again.
    s3.delete_bucket(Bucket=taken)
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary)
    assert r.returncode == 0, r.stderr
    assert "is ROLLBACK_COMPLETE (its first create failed and rolled back): deleting it to create it again" in r.stderr
    assert cfn.describe_stacks(StackName=f"pdcase-{stage}")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_protected_stage_leaves_nothing_after_a_failed_create_and_is_termination_protected(
        deployer, emulator, package, tmp_path):
    """Issue 12e: with `Retain`, the buckets a failed first create had made stayed, so every
    retry failed on their names; `RetainExceptOnCreate` deletes them with the rollback.
    Issue 12h: a protected stage's stacks are termination-protected; `teardown --force` lifts
    it on purpose. Issue 13: the protected (hence hardened) stage deploys with its KMS key, runs
    the ETL and tears down with --force. Relies on MiniStack's CloudFormation, which deletes
    RetainExceptOnCreate resources on a create's rollback, keeps Retain ones, and enforces
    termination protection; KMS is recorded, not enforced (its key policy is checked statically)."""
    import botocore.exceptions
    import pytest

    emulator.reset()
    s3, cfn = emulator.client("s3"), emulator.client("cloudformation")
    stage = "e2eprotected"
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {stage}:\n    protected: true\n")
    bucket = f"pdcase-{stage}-{{}}-000000000000-us-east-1"
    # The warehouse bucket is made after the source and jobs buckets: its name taken fails
    # the create once they exist.
    s3.create_bucket(Bucket=bucket.format("warehouse"))
    binary = package["lambda"]["bootstrap"]
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 3, r.stderr
    assert "WarehouseBucket" in r.stderr
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert bucket.format("source") not in names and bucket.format("jobs") not in names, names
    assert bucket.format("s3-access") not in names, names

    s3.delete_bucket(Bucket=bucket.format("warehouse"))
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", stage, "--yes", "--force", config=config)
    assert r.returncode == 0, r.stderr
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 0, r.stderr
    assert f"pdcase-{stage}: termination protection on (protected stage)" in r.stderr
    for stack in (f"pdcase-{stage}", f"pdcase-{stage}-bootstrap"):
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["EnableTerminationProtection"] is True, stack

    # Protected, hence hardened: the ETL runs under its role on buckets encrypted with the
    # stage's KMS key (the emulator records the key; it does not enforce KMS).
    for f in sorted((ROOT / "samples" / "a").glob("*.json")):
        s3.upload_file(str(f), bucket.format("source"), f"a/{f.name}")
    r = deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", stage, config=config)
    assert r.returncode == 0, r.stderr
    import time
    deadline = time.time() + 120
    while True:
        try:
            s3.head_object(Bucket=bucket.format("warehouse"), Key="a/subscriptions/_SUCCESS")
            break
        except s3.exceptions.ClientError:
            assert time.time() < deadline, "the hardened stage's ETL did not publish"
            time.sleep(1)
    # The bucket's default encryption is the stage's key (the emulator does not apply default
    # encryption to the objects themselves, so what S3 does with them is not shown here).
    key = emulator.client("kms").describe_key(KeyId=f"alias/pdcase-{stage}")["KeyMetadata"]
    rule = s3.get_bucket_encryption(Bucket=bucket.format("warehouse"))[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms" and rule["KMSMasterKeyID"] in (key["KeyId"], key["Arn"]), (rule, key)
    # Every bucket's access logs go to the stage's log bucket, under the bucket's role (the
    # emulator stores the configuration, patch bucket-logging; it delivers no logs).
    for role in ("source", "jobs", "warehouse"):
        enabled = s3.get_bucket_logging(Bucket=bucket.format(role))["LoggingEnabled"]
        assert enabled == {"TargetBucket": bucket.format("s3-access"), "TargetPrefix": f"{role}/"}, enabled
    logs = s3.get_bucket_encryption(Bucket=bucket.format("s3-access"))[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert logs["SSEAlgorithm"] == "AES256", logs
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket.format("s3-access"))
    with pytest.raises(botocore.exceptions.ClientError, match="TerminationProtection"):
        cfn.delete_stack(StackName=f"pdcase-{stage}")

    r = deployer_cmd(deployer, emulator, "teardown", "--stage", stage, "--yes", "--force", config=config)
    assert r.returncode == 0, r.stderr
    assert f"pdcase-{stage}: termination protection lifted (--force on a protected stage)" in r.stderr
    stacks = [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert f"pdcase-{stage}" not in stacks
    # Retained: the buckets stay with the stage's data, as protection promised, still TLS-only
    # (their policies are retained with them).
    assert bucket.format("source") in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for role in ("source", "jobs", "warehouse", "s3-access"):
        policy = s3.get_bucket_policy(Bucket=bucket.format(role))["Policy"]
        assert "aws:SecureTransport" in policy, (role, policy)

    # Issue 25, part 6: the next deploy adopts what the teardown retained (an import change
    # set through the stage's role), instead of failing on its names; the data is there.
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", binary, config=config)
    assert r.returncode == 0, r.stderr
    adopted = next(l for l in r.stderr.splitlines() if "adopting what an earlier teardown retained" in l)
    for id in ("SourceBucket", "SourceBucketPolicy", "WarehouseBucket", "JobsBucket", "AccessLogsBucket",
               "GlueDatabase", "EtlLogGroup", "StageKey", "StageKeyAlias"):
        assert id in adopted, (id, adopted)
    assert emulator.client("kms").describe_key(KeyId=f"alias/pdcase-{stage}")["KeyMetadata"]["KeyId"] == key["KeyId"]
    s3.head_object(Bucket=bucket.format("warehouse"), Key="a/subscriptions/_SUCCESS")
    held = {x["LogicalResourceId"]: x["ResourceStatus"] for x in
            cfn.list_stack_resources(StackName=f"pdcase-{stage}")["StackResourceSummaries"]}
    assert held["SourceBucket"] in ("IMPORT_COMPLETE", "UPDATE_COMPLETE", "CREATE_COMPLETE") and "EtlFunction" in held
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", stage, "--yes", "--force", config=config)
    assert r.returncode == 0, r.stderr


def test_info_trigger_and_logs_of_a_deployed_stage(deployer, emulator, package, tmp_path):
    """Triggered with an empty source bucket, the ETL function fails inside the emulator
    naming the missing export, and `deployer logs` shows that line."""
    emulator.reset()
    stage = "e2eops"
    # Its base b on EMR: the starter's code runs here below (`invoke emr-starter --stage`).
    emr_engine(stage, tmp_path)
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    r = deployer_cmd(deployer, emulator, "info", "--stage", stage)
    assert r.returncode == 0, r.stderr
    assert f"pdcase-{stage}: CREATE_COMPLETE" in r.stdout
    assert f"EtlFunctionName: pdcase-{stage}-etl" in r.stdout
    r = deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", stage)
    assert r.returncode == 0, r.stderr
    assert f"to arn:aws:sns:us-east-1:000000000000:pdcase-{stage}-trigger-etl" in r.stdout
    import time
    deadline = time.time() + 60
    while True:
        r = deployer_cmd(deployer, emulator, "logs", "etl", "--stage", stage)
        assert r.returncode == 0, r.stderr
        if "missing input" in r.stdout or time.time() > deadline:
            break
        time.sleep(1)
    assert f"missing input s3://pdcase-{stage}-source-000000000000-us-east-1/a/courses.json" in r.stdout, r.stdout
    r = deployer_cmd(deployer, emulator, "info", "--stage", "notdeployed")
    assert "not deployed" in r.stdout
    # The ETL's code run here, against the stage's buckets (not the deployed function).
    s3 = emulator.client("s3")
    source = f"pdcase-{stage}-source-000000000000-us-east-1"
    for f in sorted((ROOT / "samples" / "a").glob("*.json")):
        s3.upload_file(str(f), source, f"a/{f.name}")
    r = deployer_cmd(deployer, emulator, "invoke", "etl", "--local", "--stage", stage)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {t["table"]: t["rows"] for t in report["tables"]} == {"students": 3, "follows": 4, "sessions": 3, "subscriptions": 4}
    warehouse = f"pdcase-{stage}-warehouse-000000000000-us-east-1"
    marker = json.loads(s3.get_object(Bucket=warehouse, Key="a/students/_SUCCESS")["Body"].read())
    assert marker["run"] == report["run"]
    # The other two handlers, run here against the stage.
    r = deployer_cmd(deployer, emulator, "invoke", "table-refresher", "--local", "--stage", stage)
    assert r.returncode == 0, r.stderr
    outcomes = json.loads(r.stdout)["bases"]
    # The deployed refresher, notified of the markers the ETL just wrote, has usually started
    # the crawler already: then Glue says it is running, which is an outcome, not an error.
    assert outcomes[0] in ({"outcome": "crawler_started", "base": "a", "run": report["run"]},
                           {"outcome": "crawler_already_running", "base": "a"}), outcomes
    assert outcomes[1]["outcome"] == "waiting" and outcomes[1]["base"] == "b"
    r = deployer_cmd(deployer, emulator, "invoke", "emr-starter", "--local", "--stage", stage)
    assert r.returncode == 0, r.stderr
    started = json.loads(r.stdout)
    es = emulator.client("emr-serverless")
    runs = es.list_job_runs(applicationId=started["application_id"])["jobRuns"]
    assert [r["id"] for r in runs] == [started["job_run_id"]]

    # `logs spark`, as the deploy identity: the latest run's state and its driver's output,
    # which the emulator (running no job) does not write: seeded gzipped where EMR
    # Serverless writes it.
    import gzip
    jobs = f"pdcase-{stage}-jobs-000000000000-us-east-1"
    key = f"logs/applications/{started['application_id']}/jobs/{started['job_run_id']}/SPARK_DRIVER/stdout.gz"
    r = deployer_cmd(deployer, emulator, "logs", "spark", "--stage", stage)
    assert r.returncode == 0, r.stderr
    assert f"job run {started['job_run_id']}" in r.stdout
    assert "no driver output yet" in r.stderr and key in r.stderr, r.stderr
    driver = '{"message": "site-events report", "rows": 42}\nline two, with ünïcode\n'
    s3.put_object(Bucket=jobs, Key=key, Body=gzip.compress(driver.encode()))
    es.cancel_job_run(applicationId=started["application_id"], jobRunId=started["job_run_id"])
    r = deployer_cmd(deployer, emulator, "logs", "spark", "--stage", stage)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"job run {started['job_run_id']} (pdcase-{stage}-site-events-{started['run']}): CANCELLED"), lines
    assert lines[1:] == driver.splitlines()


def test_a_table_larger_than_one_part_goes_up_as_a_multipart_upload(deployer, emulator, package, tmp_path):
    """The S3 storage's multipart path (parts of 8 MiB, CRC32 checksums, complete), which the
    small fixtures never reach: 80k students make a sessions table of about 12 MB."""
    import duckdb
    from conftest import SHARED
    from expected_a import generate

    emulator.reset()
    stage = "e2eparts"
    assert deployer_cmd(deployer, emulator, "deploy", "--stage", stage, "--lambda-bootstrap",
                        package["lambda"]["bootstrap"]).returncode == 0
    src, expected = generate(SHARED / "bench" / "gen.py", tmp_path / "gen", 80_000, 3)
    s3 = emulator.client("s3")
    for f in sorted((src / "a").glob("*.json")):
        s3.upload_file(str(f), f"pdcase-{stage}-source-000000000000-us-east-1", f"a/{f.name}")
    # Each export read whole: one sessions object, above one part.
    r = deployer_cmd(deployer, emulator, "invoke", "etl", "--local", "--stage", stage, "--shards", "1")
    assert r.returncode == 0, r.stderr
    warehouse = f"pdcase-{stage}-warehouse-000000000000-us-east-1"
    report = json.loads(r.stdout)
    (key,) = next(t["objects"] for t in report["tables"] if t["table"] == "sessions")
    assert key.startswith("a/sessions/run=") and key.endswith("/data.parquet"), key
    head = s3.head_object(Bucket=warehouse, Key=key)
    assert head["ContentLength"] > 8 * 2**20
    assert head["ETag"].strip('"').rsplit("-", 1)[1] == str(-(-head["ContentLength"] // (8 * 2**20))), head["ETag"]
    path = tmp_path / "sessions.parquet"
    path.write_bytes(s3.get_object(Bucket=warehouse, Key=key)["Body"].read())
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}', hive_partitioning = false)").fetchall()[0][0] == len(expected["sessions"])

    # Each export in 4 ranges (S3 ranged GETs through the emulator): 4 sessions objects in the
    # manifest, in order, holding the same rows in the same order.
    r = deployer_cmd(deployer, emulator, "invoke", "etl", "--local", "--stage", stage, "--shards", "4")
    assert r.returncode == 0, r.stderr
    keys = next(t["objects"] for t in json.loads(r.stdout)["tables"] if t["table"] == "sessions")
    assert [k.rsplit("/", 1)[1] for k in keys] == [f"data-0000{i}.parquet" for i in range(4)], keys
    manifest = s3.get_object(Bucket=warehouse, Key="a/sessions/_symlink_format_manifest/manifest")["Body"].read().decode()
    assert [line.split(f"{warehouse}/", 1)[1] for line in manifest.splitlines()] == keys
    parts = []
    for i, k in enumerate(keys):
        part = tmp_path / f"part-{i}.parquet"
        part.write_bytes(s3.get_object(Bucket=warehouse, Key=k)["Body"].read())
        parts += duckdb.sql(f"SELECT * FROM read_parquet('{part}', hive_partitioning = false)").fetchall()
    assert parts == duckdb.sql(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()
