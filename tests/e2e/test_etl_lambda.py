"""The release `bootstrap` (musl, from `deployer package`) deployed as `provided.al2023`
functions inside the local emulator: a message on the ETL topic runs the ETL function, which
reads the exports from the source bucket and publishes Parquet to the warehouse bucket; the
warehouse's `_SUCCESS` notifications run the table refresher, which starts the crawler once
every table is complete; Athena (DuckDB inside the emulator) queries a declared Glue table.

Relies on: MiniStack (Lambda as a host process, SNS and S3 notifications, Glue catalog,
Athena via DuckDB). Not shown here, because the emulator does not enforce them: IAM
permissions (the template's policies are checked by cfn-lint/checkov and the schema tests).
"""
import json
import time

import duckdb
import pytest

from conftest import SHARED
from expected_a import ENTITIES, as_columns, generate

TABLES = ["students", "follows", "sessions", "subscriptions"]
SOURCE, WAREHOUSE, RESULTS = "e2e-source", "e2e-warehouse", "e2e-athena-results"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def wait_for(what, check, timeout=120, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def function_logs(emulator, name) -> str:
    logs = emulator.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except Exception as e:  # noqa: BLE001 (diagnostics only)
        return f"(no logs: {e})"
    return "\n".join(e["message"].rstrip() for e in events)


def create_function(emulator, name, zip_bytes, env):
    lam = emulator.client("lambda")
    role = emulator.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    arn = lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=role,
        Code={"ZipFile": zip_bytes}, Timeout=120, MemorySize=2048, Architectures=["x86_64"],
        Environment={"Variables": {"STAGE": "e2e", "RUST_LOG": "info", **env}},
    )["FunctionArn"]
    wait_for(f"{name} active", lambda: lam.get_function(FunctionName=name)["Configuration"].get("State", "Active") == "Active")
    return arn


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(SHARED / "bench" / "gen.py", tmp_path_factory.mktemp("gen"), 800, 11)


def test_the_etl_runs_as_a_lambda_in_the_emulator_and_athena_reads_its_tables(emulator, package, data):
    emulator.reset()
    s3 = emulator.client("s3")
    src_dir, expected = data
    for b in (SOURCE, WAREHOUSE, RESULTS):
        s3.create_bucket(Bucket=b)
    for e in ENTITIES:
        s3.upload_file(str(src_dir / "a" / f"{e}.json"), SOURCE, f"a/{e}.json")
    zip_bytes = open(package["lambda"]["path"], "rb").read()

    glue = emulator.client("glue")
    glue.create_database(DatabaseInput={"Name": "e2e_warehouse"})
    glue.create_crawler(Name="e2e-crawler", Role="arn:aws:iam::000000000000:role/e2e-crawler",
                        DatabaseName="e2e_warehouse", Targets={"S3Targets": [{"Path": f"s3://{WAREHOUSE}/a/"}]})
    refresher = create_function(emulator, "e2e-table-refresher", zip_bytes, {
        "PIPELINE_FUNCTION": "table-refresher", "WAREHOUSE_BUCKET": WAREHOUSE, "CRAWLER_NAME": "e2e-crawler"})
    s3.put_bucket_notification_configuration(Bucket=WAREHOUSE, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": refresher, "Events": ["s3:ObjectCreated:*"],
                                          "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "_SUCCESS"}]}}}]})
    etl = create_function(emulator, "e2e-etl", zip_bytes, {
        "PIPELINE_FUNCTION": "etl", "SOURCE_BUCKET": SOURCE, "WAREHOUSE_BUCKET": WAREHOUSE, "TABLE_FORMAT": "parquet"})
    sns = emulator.client("sns")
    topic = sns.create_topic(Name="e2e-trigger-etl")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=etl)
    sns.publish(TopicArn=topic, Message=json.dumps({"requested_by": "e2e test"}))

    def markers():
        found = {}
        for t in TABLES:
            try:
                found[t] = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_SUCCESS")["Body"].read())
            except s3.exceptions.NoSuchKey:
                return None
        return found

    try:
        found = wait_for("the four markers", markers, timeout=180)
    except AssertionError:
        pytest.fail(f"the ETL did not publish.\nETL logs:\n{function_logs(emulator, 'e2e-etl')}\n"
                    f"emulator:\n{emulator.log_tail()}")
    assert len({m["run"] for m in found.values()}) == 1, found

    for t in TABLES:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix=f"a/{t}/")["Contents"])
        assert keys == [f"a/{t}/_SUCCESS", f"a/{t}/data.parquet"]
        body = s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/data.parquet")["Body"].read()
        assert body[:4] == b"PAR1"
        got = _rows(body)
        assert got == [as_columns(t, r) for r in expected[t]], t
        assert found[t]["rows"] == len(expected[t])
    assert s3.list_objects_v2(Bucket=WAREHOUSE, Prefix="a/_staging/").get("KeyCount", 0) == 0

    # The refresher ran for each marker and started the crawler once all four were there.
    def crawler_started():
        text = function_logs(emulator, "e2e-table-refresher")
        return text if "crawler_started" in text else None
    try:
        logs = wait_for("the refresher to start the crawler", crawler_started, timeout=60)
    except AssertionError:
        pytest.fail(f"refresher logs:\n{function_logs(emulator, 'e2e-table-refresher')}")
    assert logs.count("crawler_started") == 1, logs

    # Athena over a declared Glue table (the emulator's crawler creates none).
    glue.create_table(DatabaseName="e2e_warehouse", TableInput={
        "Name": "students", "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {
            "Columns": [{"Name": c.lower(), "Type": "string"} for c in
                        ["Id", "Date", "State", "City", "University", "Course", "SignupSource", "extra"]],
            "Location": f"s3://{WAREHOUSE}/a/students/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}},
        "Parameters": {"classification": "parquet"}})
    rows = athena(emulator, "SELECT count(*) AS n, count(DISTINCT id) AS ids, count(course) AS with_course FROM students")
    students = expected["students"]
    assert rows == [[str(len(students)), str(len({s["Id"] for s in students})),
                     str(sum(1 for s in students if s.get("Course") is not None))]]


def _rows(parquet_bytes: bytes):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(parquet_bytes)
        f.flush()
        return duckdb.sql(f"SELECT * FROM read_parquet('{f.name}')").fetchall()


def athena(emulator, sql):
    a = emulator.client("athena")
    qid = a.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "e2e_warehouse"},
                                  ResultConfiguration={"OutputLocation": f"s3://{RESULTS}/"})["QueryExecutionId"]

    def done():
        s = a.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        return s if s["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None
    status = wait_for("the Athena query", done, timeout=60)
    assert status["State"] == "SUCCEEDED", status
    result = a.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in result[1:]]


def test_the_emr_starter_runs_in_the_emulator_and_requests_the_spark_cluster(emulator, package):
    """EMR is metadata only in the emulator: the cluster is recorded, nothing runs."""
    emulator.reset()
    zip_bytes = open(package["lambda"]["path"], "rb").read()
    starter = create_function(emulator, "e2e-emr-starter", zip_bytes, {
        "PIPELINE_FUNCTION": "emr-starter", "SOURCE_BUCKET": SOURCE, "WAREHOUSE_BUCKET": WAREHOUSE,
        "SPARK_JOB_URI": "s3://e2e-artifacts/spark/abc123/site_events.py", "EMR_RELEASE_LABEL": "emr-7.5.0",
        "EMR_MASTER_INSTANCE_TYPE": "m5.xlarge", "EMR_CORE_INSTANCE_TYPE": "m5.xlarge",
        "EMR_CORE_INSTANCE_COUNT": "2", "EMR_IDLE_TIMEOUT_SECONDS": "600",
        "EMR_SERVICE_ROLE": "e2e-emr-service", "EMR_INSTANCE_PROFILE": "e2e-emr-instance",
        "EMR_LOG_URI": "s3://e2e-jobs/logs/", "TABLE_FORMAT": "parquet",
        "EMR_SUBNET_ID": "subnet-0123456789abcdef0"})
    sns = emulator.client("sns")
    topic = sns.create_topic(Name="e2e-trigger-emr")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=starter)
    sns.publish(TopicArn=topic, Message="{}")
    emr = emulator.client("emr")

    def cluster():
        found = [c for c in emr.list_clusters()["Clusters"] if c["Name"].startswith("pdcase-e2e-site-events-")]
        return found[0] if found else None
    try:
        c = wait_for("the cluster", cluster, timeout=60)
    except AssertionError:
        pytest.fail(f"starter logs:\n{function_logs(emulator, 'e2e-emr-starter')}")
    d = emr.describe_cluster(ClusterId=c["Id"])["Cluster"]
    assert d["ReleaseLabel"] == "emr-7.5.0"
    assert d["ServiceRole"] == "e2e-emr-service"
    assert {t["Key"]: t["Value"] for t in d["Tags"]} == {
        "Project": "pdcase", "Stage": "e2e", "for-use-with-amazon-emr-managed-policies": "true"}
    assert d["Ec2InstanceAttributes"]["Ec2SubnetId"] == "subnet-0123456789abcdef0"
    steps = emr.list_steps(ClusterId=c["Id"])["Steps"]
    assert [s["Name"] for s in steps] == ["site-events"]
    args = steps[0]["Config"]["Args"]
    assert args[:4] == ["spark-submit", "--deploy-mode", "cluster", "s3://e2e-artifacts/spark/abc123/site_events.py"]
    assert args[args.index("--events") + 1] == f"s3://{SOURCE}/b/"
    assert args[args.index("--students") + 1] == f"s3://{WAREHOUSE}/a/students/"
