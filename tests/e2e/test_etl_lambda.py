"""The deployed stage's functions at work in the local emulator, with IAM and TLS enforced:
each function runs as a session of the execution role the template gives it, so every S3,
Glue, SNS and EMR Serverless call it makes is checked against that role, and the buckets' TLS-only
policies apply.

A message on the ETL topic runs the ETL function, which reads the exports from the source
bucket and publishes Parquet to the warehouse bucket; the warehouse's `_SUCCESS` objects reach
the table refresher through the stage's EventBridge rule, and it starts the crawler once every
table is complete;
Athena (DuckDB inside the emulator) queries the stage's declared Glue table. Then one
permission at a time is taken out of a role, and the function fails with AccessDenied.

Relies on: MiniStack with AUTH=true and USE_SSL=1 (Lambda as a host process, SNS, S3 events
to EventBridge and its rules' Lambda targets, the Glue catalog, Athena via DuckDB), with the patches of
scripts/patch_emulator.py (crawler ARNs, EMR Serverless). Not run: the Spark job on EMR
Serverless (the emulator records the run), the crawler's crawl, `iam:PassRole` and trust
policies (checked statically).
"""
import json
import time

import duckdb
import pytest

from conftest import SHARED
from expected_a import ENTITIES, as_columns, generate
from test_deploy import deployer_cmd, emr_engine

TABLES = ["students", "follows", "sessions", "subscriptions"]
STAGE = "e2elambda"
ACCOUNT, REGION = "000000000000", "us-east-1"
SOURCE = f"pdcase-{STAGE}-source-{ACCOUNT}-{REGION}"
WAREHOUSE = f"pdcase-{STAGE}-warehouse-{ACCOUNT}-{REGION}"


def wait_for(what, check, timeout=120, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def function_logs(emulator, function, stage=STAGE) -> str:
    logs = emulator.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/pdcase-{stage}-{function}")["events"]
    except Exception as e:  # noqa: BLE001 (diagnostics only)
        return f"(no logs: {e})"
    return "\n".join(e["message"].rstrip() for e in events)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(SHARED / "bench" / "gen.py", tmp_path_factory.mktemp("gen"), 800, 11)


@pytest.fixture(scope="module")
def stage(deployer, emulator, package, tmp_path_factory):
    """The stage, deployed once by its deploy identity, its base b on EMR (the starter's
    tests below)."""
    emulator.reset()
    emr_engine(STAGE, tmp_path_factory.mktemp("config"))
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    return deployer


def markers(s3):
    found = {}
    for t in TABLES:
        try:
            found[t] = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_SUCCESS")["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None
    return found


def test_the_etl_runs_as_its_role_and_athena_reads_its_tables(emulator, stage, data):
    s3 = emulator.client("s3")
    src_dir, expected = data
    for e in ENTITIES:
        s3.upload_file(str(src_dir / "a" / f"{e}.json"), SOURCE, f"a/{e}.json")
    r = deployer_cmd(stage, emulator, "trigger", "etl", "--stage", STAGE)
    assert r.returncode == 0, r.stderr
    try:
        found = wait_for("the four markers", lambda: markers(s3), timeout=180)
    except AssertionError:
        pytest.fail(f"the ETL did not publish.\nETL logs:\n{function_logs(emulator, 'etl')}\n"
                    f"emulator:\n{emulator.log_tail()}")
    assert len({m["run"] for m in found.values()}) == 1, found
    for t in TABLES:
        run_id = found[t]["run"]
        data = f"a/{t}/run={run_id}/data.parquet"
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix=f"a/{t}/")["Contents"])
        assert keys == [f"a/{t}/_SUCCESS", f"a/{t}/_symlink_format_manifest/manifest", data], keys
        manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_symlink_format_manifest/manifest")["Body"].read()
        assert manifest.decode() == f"s3://{WAREHOUSE}/{data}\n"
        body = s3.get_object(Bucket=WAREHOUSE, Key=data)["Body"].read()
        assert _rows(body) == [as_columns(t, r) for r in expected[t]], t
        assert found[t]["rows"] == len(expected[t])
    # The lease is released, naming the run.
    lease = json.loads(s3.get_object(Bucket=WAREHOUSE, Key="a/_runs/lease.json")["Body"].read())
    assert lease["released"] and lease["holder"] == "etl function", lease

    # The refresher, as its role, read the markers and started the crawler once.
    def crawler_started():
        text = function_logs(emulator, "table-refresher")
        return text if "crawler_started" in text else None
    try:
        logs = wait_for("the refresher to start the crawler", crawler_started, timeout=60)
    except AssertionError:
        pytest.fail(f"refresher logs:\n{function_logs(emulator, 'table-refresher')}")
    assert logs.count("crawler_started") == 1, logs

    # Athena over the stage's declared table, in the stage's work group.
    rows = athena(emulator, "SELECT count(*) AS n, count(DISTINCT id) AS ids, count(course) AS with_course FROM students")
    students = expected["students"]
    assert rows == [[str(len(students)), str(len({s["Id"] for s in students})),
                     str(sum(1 for s in students if s.get("Course") is not None))]]


def stack_outputs(emulator, stage=STAGE) -> dict:
    stacks = emulator.client("cloudformation").describe_stacks(StackName=f"pdcase-{stage}")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}


def sns_event(message_id: str) -> dict:
    """An SNS delivery to the starter, as Lambda receives it."""
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:x",
                         "Sns": {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:aws:sns:x",
                                 "Subject": None, "Message": "{}", "Timestamp": "2026-01-01T00:00:00.000Z",
                                 "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "",
                                 "UnsubscribeUrl": "", "MessageAttributes": {}}}]}


def test_the_starter_runs_as_its_role_and_submits_the_job_to_the_application(emulator, stage):
    """`deployer trigger spark` leads to one StartJobRun on the stage's application, with the
    job's S3 URI, its arguments, the job runtime role, the stage's tag and the jobs bucket's
    log location, made by the starter as its role (emr-serverless:StartJobRun is enforced on
    the application's ARN). A second delivery of the same message starts no second run (the
    client token is the message id). The emulator runs no job: the run's record is what is
    checked. Issue 26: the starter holds base b's lease for the run it started."""
    outputs = stack_outputs(emulator)
    app = outputs["EmrApplicationId"]
    es = emulator.client("emr-serverless")
    assert es.get_application(applicationId=app)["application"]["releaseLabel"] == "emr-7.5.0"
    r = deployer_cmd(stage, emulator, "trigger", "spark", "--stage", STAGE)
    assert r.returncode == 0, r.stderr
    try:
        runs = wait_for("the job run", lambda: es.list_job_runs(applicationId=app)["jobRuns"], timeout=60)
    except AssertionError:
        pytest.fail(f"starter logs:\n{function_logs(emulator, 'emr-starter')}")
    assert len(runs) == 1, runs
    run = es.get_job_run(applicationId=app, jobRunId=runs[0]["id"])["jobRun"]
    assert run["executionRole"] == outputs["EmrJobRoleArn"]
    assert run["executionRole"].endswith(f":role/pdcase-{STAGE}-emr-job-{REGION}")
    spark = run["jobDriver"]["sparkSubmit"]
    assert spark["entryPoint"] == outputs["SparkJobUri"]
    args = spark["entryPointArguments"]
    assert args[args.index("--events") + 1] == f"s3://{SOURCE}/b/"
    assert args[args.index("--students") + 1] == f"s3://{WAREHOUSE}/a/students/"
    assert args[args.index("--output") + 1] == f"s3://{WAREHOUSE}/b/"
    assert args[args.index("--run-id") + 1] in run["name"]
    assert run["tags"]["Stage"] == STAGE
    jobs = outputs["JobsBucketName"]
    assert run["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"] == f"s3://{jobs}/logs/"

    # The first run holds base b's lease until it ends (the emulator's runs succeed after
    # 30 s); a message meanwhile is refused, naming it (Lambda retries it later).
    lam = emulator.client("lambda")
    out = lam.invoke(FunctionName=f"pdcase-{STAGE}-emr-starter", Payload=json.dumps(sns_event("early")).encode())
    assert out.get("FunctionError") and b"being built by run" in out["Payload"].read()
    wait_for("the first run to end", lambda: es.get_job_run(applicationId=app, jobRunId=runs[0]["id"])[
        "jobRun"]["state"] == "SUCCESS", timeout=90)
    # The same SNS message delivered twice: one run. The ended run left the lease to it (its
    # job run ended, as EMR Serverless reports: the starter takes the lease over).
    payloads = []
    for _ in range(2):
        out = lam.invoke(FunctionName=f"pdcase-{STAGE}-emr-starter", Payload=json.dumps(sns_event("dup-1")).encode())
        payload = out["Payload"].read()
        assert "FunctionError" not in out, payload
        payloads.append(json.loads(payload)[0])
    assert [p["duplicate"] for p in payloads] == [False, True], payloads
    assert payloads[0]["job_run_id"] == payloads[1]["job_run_id"]
    runs = es.list_job_runs(applicationId=app)["jobRuns"]
    assert len(runs) == 2, [r["name"] for r in runs]


def without(emulator, role: str, sid: str, change=None, stage=STAGE):
    """Role `role`'s inline policy without statement `sid` (or with it changed by `change`),
    as if the template had left it out. Returns a function that puts it back."""
    iam = emulator.client("iam")
    name = f"pdcase-{stage}-{role}-{REGION}"
    policy = iam.list_role_policies(RoleName=name)["PolicyNames"][0]
    original = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    if isinstance(original, str):
        original = json.loads(original)
    statements = []
    for s in original["Statement"]:
        if s.get("Sid") == sid:
            if change is None:
                continue
            s = change(json.loads(json.dumps(s)))
        statements.append(s)
    assert len(statements) == len(original["Statement"]) - (0 if change else 1), f"{name} has no statement {sid}"
    iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps({**original, "Statement": statements}))
    return lambda: iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(original))


def access_denied_in(emulator, function, since_lines: int, what: str, stage=STAGE):
    def seen():
        lines = function_logs(emulator, function, stage).splitlines()[since_lines:]
        text = "\n".join(lines)
        return text if "AccessDenied" in text else None
    try:
        return wait_for(f"{function} to fail with AccessDenied ({what})", seen, timeout=90)
    except AssertionError:
        pytest.fail(f"{function} logs:\n{function_logs(emulator, function, stage)}")


@pytest.mark.parametrize("role,sid,function,trigger", [
    ("etl", "WriteBaseA", "etl", "etl"),
    ("etl", "ReadExports", "etl", "etl"),
])
def test_the_etl_fails_without_each_permission_it_is_given(emulator, stage, data, role, sid, function, trigger):
    s3 = emulator.client("s3")
    src_dir, _ = data
    for e in ENTITIES:
        s3.upload_file(str(src_dir / "a" / f"{e}.json"), SOURCE, f"a/{e}.json")
    before = len(function_logs(emulator, function).splitlines())
    restore = without(emulator, role, sid)
    try:
        assert deployer_cmd(stage, emulator, "trigger", trigger, "--stage", STAGE).returncode == 0
        text = access_denied_in(emulator, function, before, sid)
    finally:
        restore()
    key = "a/courses.json" if sid == "ReadExports" else "a/_runs/"
    assert key in text, text


def test_the_refresher_fails_without_start_crawler(emulator, stage):
    """Its StartCrawler is allowed on `crawler/<name>` (emulator patch glue-crawler-arn)."""
    s3 = emulator.client("s3")
    run_id = "r-denied"
    before = len(function_logs(emulator, "table-refresher").splitlines())
    restore = without(emulator, "table-refresher", "StartCrawler")
    try:
        for t in TABLES:
            s3.put_object(Bucket=WAREHOUSE, Key=f"a/{t}/_SUCCESS", Body=json.dumps(
                {"run": run_id, "table": t, "rows": 0, "format": "parquet", "object": f"a/{t}/_symlink_format_manifest/manifest"}).encode())
        text = access_denied_in(emulator, "table-refresher", before, "StartCrawler")
    finally:
        restore()
    assert "StartCrawler" in text or "crawler" in text, text


def test_the_starter_fails_without_start_job_run(emulator, stage):
    """StartJobRun is allowed on the stage's application only: without the statement the
    starter is refused. (The runs of the tests above end first: the last one holds base b's
    lease until EMR Serverless reports it ended.)"""
    app = stack_outputs(emulator)["EmrApplicationId"]
    es = emulator.client("emr-serverless")
    wait_for("the earlier job runs to end", lambda: all(
        r["state"] in ("SUCCESS", "FAILED", "CANCELLED") for r in es.list_job_runs(applicationId=app)["jobRuns"]),
        timeout=90)
    before = len(function_logs(emulator, "emr-starter").splitlines())
    restore = without(emulator, "emr-starter", "StartJobRun")
    try:
        assert deployer_cmd(stage, emulator, "trigger", "spark", "--stage", STAGE).returncode == 0
        text = access_denied_in(emulator, "emr-starter", before, "StartJobRun")
    finally:
        restore()
    assert "StartJobRun" in text, text


def _rows(parquet_bytes: bytes):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(parquet_bytes)
        f.flush()
        return duckdb.sql(f"SELECT * FROM read_parquet('{f.name}')").fetchall()


def athena(emulator, sql, stage=STAGE):
    """The rows of `sql` run in the stage's work group and database, as text."""
    a = emulator.client("athena")
    qid = a.start_query_execution(QueryString=sql, WorkGroup=f"pdcase-{stage}",
                                  QueryExecutionContext={"Database": f"pdcase_{stage}_warehouse"})["QueryExecutionId"]

    def done():
        s = a.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        return s if s["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None
    status = wait_for("the Athena query", done, timeout=60)
    assert status["State"] == "SUCCEEDED", status
    result = a.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in result[1:]]
