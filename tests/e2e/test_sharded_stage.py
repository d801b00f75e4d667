"""Base a past one function (issue 29), deployed in the local emulator with IAM and TLS
enforced: a stage whose `base_a_engine` is `sharded`, triggered through its topic
(`deployer trigger etl --wait`). The ETL function, as its role, plans the run and starts the
stage's state machine; its Distributed Map reads the plan from the warehouse and invokes the
ETL function once per span (spans of 64 KiB here, through the `SHARD_BYTES` variable set by an
`overrides:` entry, so boundaries fall inside records); the publisher switches the four
tables. Their rows are those of the single-function run of the same exports, in the same
order; the markers name the engine; the refresher crawls once; Athena answers. A bad record in
the middle of an export refuses the whole run, naming the file's own line and record, and the
tables stay as published.

Relies on: MiniStack with AUTH=true and USE_SSL=1 (CloudFormation as the stage's role with the
computed handler permissions, the state machine created from the template; Step Functions'
Distributed Map with an S3 item reader invoking the real function, each invocation as the
function's role; S3 ranged GETs; SNS to Lambda; the markers to the refresher; Athena through
DuckDB). Not run: the state machine's own role (the emulator invokes with its own authority;
the role is checked by parliament and the template gates), Step Functions' logging and
tracing, Lambda's concurrency limits.
"""
import json

import duckdb
import pytest

from conftest import SHARED
from expected_a import ENTITIES, generate
from test_deploy import STAGE_CONFIGS, deployer_cmd
from test_etl_lambda import athena as athena_of, function_logs, wait_for

STAGE = "e2eshard"
ACCOUNT, REGION = "000000000000", "us-east-1"
SOURCE = f"pdcase-{STAGE}-source-{ACCOUNT}-{REGION}"
WAREHOUSE = f"pdcase-{STAGE}-warehouse-{ACCOUNT}-{REGION}"
TABLES = ["students", "follows", "sessions", "subscriptions"]
SHARD_BYTES = 65536


def table_rows(s3, tmp_path, table):
    """The rows of `table` as its manifest names its parts, in order."""
    manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"a/{table}/_symlink_format_manifest/manifest")["Body"].read()
    rows, keys = [], [u.split(f"{WAREHOUSE}/", 1)[1] for u in manifest.decode().splitlines()]
    for i, key in enumerate(keys):
        part = tmp_path / f"{table}-{i}.parquet"
        part.write_bytes(s3.get_object(Bucket=WAREHOUSE, Key=key)["Body"].read())
        rows += duckdb.sql(f"SELECT * FROM read_parquet('{part}', hive_partitioning = false)").fetchall()
    return keys, rows


def marker(s3, table):
    return json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/{table}/_SUCCESS")["Body"].read())


@pytest.fixture(scope="module")
def stage(deployer, emulator, package, tmp_path_factory):
    """The sharded stage deployed, the exports uploaded; returns (exports folder, expected)."""
    emulator.reset()
    config = tmp_path_factory.mktemp("config") / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    base_a_engine: sharded\n    overrides:\n      EtlFunction:\n"
                      f"        Environment.Variables.SHARD_BYTES: \"{SHARD_BYTES}\"\n")
    STAGE_CONFIGS[STAGE] = config
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    src, expected = generate(SHARED / "bench" / "gen.py", tmp_path_factory.mktemp("gen"), 300, 7)
    s3 = emulator.client("s3")
    for e in ENTITIES:
        s3.upload_file(str(src / "a" / f"{e}.json"), SOURCE, f"a/{e}.json")
    return src, expected


def test_a_sharded_stage_publishes_base_a_through_its_state_machine(deployer, emulator, stage, tmp_path):
    src, expected = stage
    s3, sfn = emulator.client("s3"), emulator.client("stepfunctions")
    r = deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", STAGE, "--wait", "--format", "json")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nETL logs:\n{function_logs(emulator, 'etl', STAGE)}"
    run = marker(s3, "students")["run"]
    record = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/_runs/{run}.json")["Body"].read())
    assert record["state"] == "succeeded" and record["engine"] == "sharded", record
    assert record["report"]["engine"] == "sharded"
    # One execution of the stage's state machine, named by the run, succeeded.
    execution = sfn.describe_execution(executionArn=record["execution_arn"])
    assert execution["status"] == "SUCCEEDED" and execution["name"] == run, execution
    assert execution["stateMachineArn"].endswith(f":stateMachine:pdcase-{STAGE}-etl-shards")
    # Each table is its spans' parts in order: sessions (333 KB) in 64 KiB spans.
    sharded = {}
    for t in TABLES:
        assert marker(s3, t)["run"] == run and marker(s3, t)["engine"] == "sharded"
        keys, rows = table_rows(s3, tmp_path, t)
        assert len(rows) == len(expected[t]), t
        sharded[t] = rows
        if t == "sessions":
            size = (src / "a" / "sessions.json").stat().st_size
            assert len(keys) == -(-size // SHARD_BYTES) and keys[0].endswith("/data-00000.parquet"), keys
    # The run's plan and reports are gone, and base a's lease is free.
    assert s3.list_objects_v2(Bucket=WAREHOUSE, Prefix=f"a/_runs/{run}/").get("KeyCount", 0) == 0
    assert json.loads(s3.get_object(Bucket=WAREHOUSE, Key="a/_runs/lease.json")["Body"].read())["released"]

    # The refresher, as its role, saw the four markers and started the crawler once for them.
    def crawled():
        text = function_logs(emulator, "table-refresher", STAGE)
        started = [line for line in text.splitlines() if "crawler_started" in line and run in line]
        return started or None
    assert len(wait_for("the refresher to crawl base a", crawled, timeout=120)) == 1
    assert athena_of(emulator, "SELECT count(*) FROM sessions", STAGE) == [[str(len(expected["sessions"]))]]

    # The same exports in the function alone (this process, the same code as the function's
    # engine): the same rows in the same order.
    r = deployer_cmd(deployer, emulator, "invoke", "etl", "--local", "--stage", STAGE, "--shards", "1")
    assert r.returncode == 0, r.stderr
    for t in TABLES:
        _, rows = table_rows(s3, tmp_path, t)
        assert rows == sharded[t], t


def test_a_bad_record_in_a_span_refuses_the_whole_run(deployer, emulator, stage, tmp_path):
    src, _ = stage
    s3, sfn = emulator.client("s3"), emulator.client("stepfunctions")
    before = {t: marker(s3, t)["run"] for t in TABLES}
    # A record two thirds into sessions loses its closing brace: the span holding it refuses.
    lines = (src / "a" / "sessions.json").read_text().splitlines(keepends=True)
    bad = 2 * len(lines) // 3
    while not lines[bad].rstrip().endswith("},"):
        bad += 1
    lines[bad] = lines[bad].replace("},", ",", 1)
    broken = tmp_path / "sessions.json"
    broken.write_text("".join(lines))
    s3.upload_file(str(broken), SOURCE, "a/sessions.json")
    try:
        r = deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", STAGE, "--wait")
        assert r.returncode == 1, r.stdout + r.stderr
        # The refusal names the file's own line (1-based, where the next key should be), not
        # the span's, and is the one the function alone gives for the same file.
        place = f"/a/sessions.json:{bad + 2}:"
        assert place in r.stderr and "published tables are unchanged" in r.stderr, r.stderr
        refusal = r.stderr.split(place, 1)[1].split(";", 1)[0]
        alone = deployer_cmd(deployer, emulator, "invoke", "etl", "--local", "--stage", STAGE, "--shards", "1")
        assert alone.returncode != 0 and place + refusal in alone.stderr, (refusal, alone.stderr)
        failed = [e for e in sfn.list_executions(stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:"
                                                                  f"pdcase-{STAGE}-etl-shards")["executions"]
                  if e["status"] == "FAILED"]
        assert len(failed) == 1, failed
        assert {t: marker(s3, t)["run"] for t in TABLES} == before
        # Nothing of the refused run is left: no part of a table, no plan or report.
        run = failed[0]["name"]
        left = [o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix="a/").get("Contents", [])
                if run in o["Key"] and not o["Key"].startswith("a/_runs/messages/") and o["Key"] != f"a/_runs/{run}.json"]
        assert left == [], left
    finally:
        s3.upload_file(str(src / "a" / "sessions.json"), SOURCE, "a/sessions.json")


def test_the_state_machines_role_allows_its_steps_and_nothing_else(emulator, stage):
    """The execution role's policy, as deployed, through IAM's policy simulation (the emulator's
    evaluator, which the emulator's Step Functions does not apply to its own calls): it may
    invoke the stage's ETL function, read a run's plan and start its own map children, and
    nothing beside them."""
    iam = emulator.client("iam")
    role = iam.get_role(RoleName=f"pdcase-{STAGE}-etl-shards-{REGION}")["Role"]["Arn"]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pdcase-{STAGE}-etl-shards"

    def decision(action, resource):
        r = iam.simulate_principal_policy(PolicySourceArn=role, ActionNames=[action], ResourceArns=[resource])
        return r["EvaluationResults"][0]["EvalDecision"]
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pdcase-{STAGE}"
    allowed = [
        ("lambda:InvokeFunction", f"{fn}-etl"),
        ("s3:GetObject", f"arn:aws:s3:::{WAREHOUSE}/a/_runs/20261207T000000Z-abcdef/plan.json"),
        ("states:StartExecution", machine),
        ("states:DescribeExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:execution:pdcase-{STAGE}-etl-shards/Shards:x"),
    ]
    denied = [
        ("lambda:InvokeFunction", f"{fn}-site-events"),
        ("s3:GetObject", f"arn:aws:s3:::{WAREHOUSE}/a/sessions/_SUCCESS"),
        ("s3:GetObject", f"arn:aws:s3:::{SOURCE}/a/sessions.json"),
        ("s3:PutObject", f"arn:aws:s3:::{WAREHOUSE}/a/_runs/20261207T000000Z-abcdef/plan.json"),
        ("states:StartExecution", f"{machine}-other"),
    ]
    assert [decision(*c) for c in allowed] == ["allowed"] * len(allowed)
    assert [decision(*c) for c in denied] == ["implicitDeny"] * len(denied)


@pytest.mark.parametrize("timeout, engine", [(60, "function"), (10, "sharded")])
def test_auto_runs_in_the_function_while_it_has_time_and_as_shards_past_it(
        deployer, emulator, package, stage, tmp_path, timeout, engine):
    """`base_a_engine: auto` decides per run with the capacity model: a function with a minute
    reads the exports (560 KB) in a fraction of half its time; one whose timeout leaves nothing
    past the model's margin (10 s) starts the state machine. The report and the markers name
    the engine."""
    s3 = emulator.client("s3")
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    base_a_engine: auto\n    lambda: {{timeout_seconds: {timeout}}}\n"
                      f"    overrides:\n      EtlFunction:\n        Environment.Variables.SHARD_BYTES: \"{SHARD_BYTES}\"\n")
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap",
                     package["lambda"]["bootstrap"], config=config)
    assert r.returncode == 0, r.stderr
    r = deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", STAGE, "--wait", config=config)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nETL logs:\n{function_logs(emulator, 'etl', STAGE)}"
    run = marker(s3, "students")["run"]
    assert {t: marker(s3, t)["engine"] for t in TABLES} == {t: engine for t in TABLES}
    record = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/_runs/{run}.json")["Body"].read())
    assert record["report"]["engine"] == engine
    assert "base_a_engine auto" in function_logs(emulator, "etl", STAGE)


def test_a_sharded_stage_names_its_state_machine_and_tears_down(deployer, emulator, stage):
    """`info` names the state machine; `teardown`, as the deploy identity through the stage's
    role, removes it with the stack (its executions have ended)."""
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pdcase-{STAGE}-etl-shards"
    r = deployer_cmd(deployer, emulator, "info", "--stage", STAGE)
    assert r.returncode == 0 and f"EtlStateMachineArn: {machine}" in r.stdout, r.stdout + r.stderr
    r = deployer_cmd(deployer, emulator, "teardown", "--stage", STAGE, "--yes")
    assert r.returncode == 0, r.stderr
    names = [m["name"] for m in emulator.client("stepfunctions").list_state_machines()["stateMachines"]]
    assert f"pdcase-{STAGE}-etl-shards" not in names, names
