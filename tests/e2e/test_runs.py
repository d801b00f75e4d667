"""Issue 26: nothing lost, nothing silent, with the deployed functions in the local emulator
(MiniStack, IAM and TLS enforced; each function runs as its execution role).

- `deployer trigger etl --wait` prints a good run's report (exit 0) and a bad input's error
  (exit 1); the bad input runs once (not retried) and reaches the stage's failure queue;
- a repeated delivery of one message (the same SNS message id, invoked again as Lambda's
  asynchronous queue may) runs nothing, during the first run and after it;
- two messages at once: one run at a time, the base whole after both, and Athena reads each
  base-a table from one run while the previous run's files are still there;
- `deployer runs` lists the runs.

Relies on: MiniStack's Lambda asynchronous invocation (its retries, with the emulator's
shortened spacing, and its `OnFailure` delivery to SQS), S3's conditional writes, Athena via
DuckDB reading the symlink manifests (patch athena-symlink-manifest). Lambda's real retry
spacing (about one and two minutes) is AWS's documented behaviour, not run here.
"""
import json
import time
import threading

import pytest

from conftest import ROOT, messages, run
from test_deploy import deployer_cmd
from test_etl_lambda import function_logs, wait_for

STAGE = "e2eruns"
ACCOUNT, REGION = "000000000000", "us-east-1"
SOURCE = f"pdcase-{STAGE}-source-{ACCOUNT}-{REGION}"
WAREHOUSE = f"pdcase-{STAGE}-warehouse-{ACCOUNT}-{REGION}"
TABLES = ["students", "follows", "sessions", "subscriptions"]


@pytest.fixture(scope="module")
def stage(deployer, emulator, package):
    emulator.reset()
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    s3 = emulator.client("s3")
    for folder in ("a", "b"):
        for f in sorted((ROOT / "samples" / folder).glob("*.json")):
            s3.upload_file(str(f), SOURCE, f"{folder}/{f.name}")
    return deployer


def trigger_wait(deployer, emulator, what="etl"):
    return deployer_cmd(deployer, emulator, "trigger", what, "--stage", STAGE, "--wait", "--timeout-minutes", "5")


def runs(deployer, emulator) -> list[dict]:
    r = deployer_cmd(deployer, emulator, "runs", "--stage", STAGE, "--base", "a", "--format", "json", "--limit", "50")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1 and doc["stage"] == STAGE
    return doc["runs"]


def manifests_whole(s3) -> str:
    """The run every base-a table names (manifest files exist, all of it; markers agree)."""
    named = set()
    for t in TABLES:
        manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_symlink_format_manifest/manifest")["Body"].read().decode()
        keys = [line.removeprefix(f"s3://{WAREHOUSE}/") for line in manifest.splitlines()]
        assert len(keys) == 1, (t, keys)
        s3.head_object(Bucket=WAREHOUSE, Key=keys[0])  # exists
        marker = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_SUCCESS")["Body"].read())
        assert f"/run={marker['run']}/" in keys[0], (t, marker, keys)
        named.add(marker["run"])
    assert len(named) == 1, named
    return named.pop()


def test_trigger_wait_prints_a_good_runs_report(stage, emulator):
    r = trigger_wait(stage, emulator)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {t["table"] for t in report["tables"]} == set(TABLES)
    assert any(l.startswith(f"run {report['run']} took the message") for l in r.stderr.splitlines()), r.stderr
    assert manifests_whole(emulator.client("s3")) == report["run"]
    recorded = {x["run"]: x for x in runs(stage, emulator)}
    assert recorded[report["run"]]["state"] == "succeeded" and recorded[report["run"]]["engine"] == "etl function"
    r = deployer_cmd(stage, emulator, "runs", "--stage", STAGE)
    assert r.returncode == 0 and report["run"] in r.stdout and "succeeded" in r.stdout, r.stdout


def test_two_messages_at_once_run_one_at_a_time_and_athena_reads_one_run(stage, emulator):
    s3 = emulator.client("s3")
    before = {x["run"] for x in runs(stage, emulator)}
    results = [None, None]

    def go(i):
        results[i] = trigger_wait(stage, emulator)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, r.stderr
    new = [x for x in runs(stage, emulator) if x["run"] not in before]
    succeeded = [x for x in new if x["state"] == "succeeded"]
    assert len(succeeded) == 2, new
    # One at a time: the later run started after the earlier one ended (its lease wait, or a
    # retry after a refusal).
    first, second = sorted(succeeded, key=lambda x: x["ended"])
    assert second["ended"] >= first["ended"]
    last = manifests_whole(s3)
    assert last == second["run"] or last == first["run"]
    # The previous run's files are still there: Athena reads one run's rows, not both.
    for t in TABLES:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix=f"a/{t}/run=")["Contents"]]
        assert len({k.split("/")[2] for k in keys}) == 2, keys
    for t in TABLES:
        marker = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"a/{t}/_SUCCESS")["Body"].read())
        r = deployer_cmd(stage, emulator, "query", "--stage", STAGE, f"SELECT count(*) AS n FROM {t}", "--format", "json")
        assert r.returncode == 0, r.stderr
        assert int(json.loads(r.stdout)["rows"][0]["n"]) == marker["rows"], (t, r.stdout, marker)


def test_two_base_b_messages_at_once_leave_base_b_whole(stage, emulator):
    """The site-events function: two runs of base b at once (it reads base a's students through
    their manifest, which the ETL tests above published)."""
    results = [None, None]

    def go(i):
        results[i] = trigger_wait(stage, emulator, "spark")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, r.stderr
    s3 = emulator.client("s3")
    runs_named = set()
    for t in ["events", "events-by-city", "events-by-state", "events-by-pagename", "events-by-client-type",
              "events-by-university", "events-by-course", "sessions-by-campaign"]:
        marker = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"b/{t}/_SUCCESS")["Body"].read())
        manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"b/{t}/_symlink_format_manifest/manifest")["Body"].read().decode()
        for line in manifest.splitlines():
            s3.head_object(Bucket=WAREHOUSE, Key=line.removeprefix(f"s3://{WAREHOUSE}/"))
            assert f"/run={marker['run']}/" in line
        runs_named.add(marker["run"])
    assert len(runs_named) == 1, runs_named
    assert runs_named.pop() in {json.loads(r.stdout)["run"] for r in results}


def test_a_repeated_delivery_runs_once(stage, emulator):
    lam = emulator.client("lambda")
    message_id = f"duplicate-{time.time_ns()}"
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:x",
                          "Sns": {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:x", "Subject": None,
                                  "Message": "{}", "Timestamp": "2026-12-07T00:00:00.000Z", "SignatureVersion": "1",
                                  "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                                  "MessageAttributes": {}}}]}
    # Twice at once (during the first run), then once after it ended.
    for _ in range(2):
        lam.invoke(FunctionName=f"pdcase-{STAGE}-etl", InvocationType="Event", Payload=json.dumps(event))
    s3 = emulator.client("s3")
    key = f"a/_runs/messages/{message_id}.json"
    run_id = wait_for("the message's claim", lambda: _json(s3, key), timeout=120)["run"]
    wait_for("its run to end", lambda: (_json(s3, f"a/_runs/{run_id}.json") or {}).get("state") == "succeeded", timeout=180)
    lam.invoke(FunctionName=f"pdcase-{STAGE}-etl", InvocationType="Event", Payload=json.dumps(event))
    wait_for("the third delivery's log", lambda: function_logs(emulator, "etl", STAGE).count(
        "a repeated delivery of a message") >= 2, timeout=120)
    mine = [x for x in runs(stage, emulator) if x.get("message_id") == message_id]
    assert [x["run"] for x in mine] == [run_id], mine


def test_bad_input_fails_once_reaches_the_failure_queue_and_trigger_says_why(stage, emulator):
    s3, sqs = emulator.client("s3"), emulator.client("sqs")
    good = s3.get_object(Bucket=SOURCE, Key="a/students.json")["Body"].read()
    s3.put_object(Bucket=SOURCE, Key="a/students.json", Body=b'[{"Id": {"nested": 1}}]')
    queue = sqs.get_queue_url(QueueName=f"pdcase-{STAGE}-failures")["QueueUrl"]
    try:
        before = function_logs(emulator, "etl", STAGE).count("ETL triggered")
        r = trigger_wait(stage, emulator)
        assert r.returncode == 1, r.stderr
        error = next(l for l in messages(r.stderr) if l.startswith("error: "))
        assert "failed: bad input" in error and "students.json" in error and "not retried" in error, error
        # Invoked once: Lambda did not retry it (the emulator retries at once, so a retry would
        # show within seconds).
        time.sleep(8)
        assert function_logs(emulator, "etl", STAGE).count("ETL triggered") == before + 1
        got = wait_for("the failure message", lambda: sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"), timeout=30)
        body = json.loads(got[0]["Body"])
        assert body["failure"] == "not retried" and "bad input" in body["record"]["error"], body
        assert body["record"]["state"] == "failed" and body["record"]["retry"] is False
    finally:
        s3.put_object(Bucket=SOURCE, Key="a/students.json", Body=good)


def _json(s3, key):
    try:
        return json.loads(s3.get_object(Bucket=WAREHOUSE, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
