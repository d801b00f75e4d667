"""Base b on a `function` stage, deployed in the local emulator with IAM and TLS enforced: a
message on the stage's EMR topic (`deployer trigger spark`) runs the site-events function as
its own role, which reads the events and the ETL's students table and publishes the eight
tables; their markers reach the table refresher, which starts the crawler once; Athena answers
over the tables, through their manifests, with the counts plain Python computes from the same
lines (tests/spark/expected.py). Then one statement of its role is taken out at a time, and the
function fails with AccessDenied; and, given too little memory, it refuses the same input
before writing anything, naming the setting to change.

Relies on: MiniStack with AUTH=true and USE_SSL=1 (Lambda as a host process given its memory
size and deadline, SNS to Lambda, S3 events to EventBridge to the refresher, Glue catalog,
Athena through DuckDB with the patches athena-symlink-manifest and athena-symlink-files).
Not run: Lambda's own limits (the emulator enforces neither memory nor CPU share), the
crawler's crawl.
"""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED
from expected_a import ENTITIES
from test_deploy import deployer_cmd
from test_etl_lambda import access_denied_in, athena as athena_of, function_logs, wait_for, without

sys.path.insert(0, str(ROOT / "tests" / "spark"))
from expected import expected  # noqa: E402

STAGE = "e2ebaseb"
ACCOUNT, REGION = "000000000000", "us-east-1"
SOURCE = f"pdcase-{STAGE}-source-{ACCOUNT}-{REGION}"
WAREHOUSE = f"pdcase-{STAGE}-warehouse-{ACCOUNT}-{REGION}"
B_TABLES = ["events", "events-by-city", "events-by-state", "sessions-by-campaign", "events-by-pagename",
            "events-by-client-type", "events-by-university", "events-by-course"]


def logs_of(emulator, function) -> str:
    return function_logs(emulator, function, STAGE)


def athena(emulator, sql):
    return athena_of(emulator, sql, STAGE)


def markers(s3, base, tables):
    found = {}
    for t in tables:
        try:
            found[t] = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"{base}/{t}/_SUCCESS")["Body"].read())["run"]
        except s3.exceptions.NoSuchKey:
            return None
    return found if len(set(found.values())) == 1 else None


@pytest.fixture(scope="module")
def published(deployer, emulator, package, tmp_path_factory):
    """The stage deployed (`base_b_engine` by default: `function`), the ETL run, then base b
    triggered through the topic; returns (the generated data folder, base b's run)."""
    emulator.reset()
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    data = tmp_path_factory.mktemp("gen")
    subprocess.run([sys.executable, str(SHARED / "bench" / "gen.py"), "--students", "300", "--out", str(data),
                    "--seed", "7", "--events-per-part", "2500"], check=True, capture_output=True)
    s3 = emulator.client("s3")
    for e in ENTITIES:
        s3.upload_file(str(data / "a" / f"{e}.json"), SOURCE, f"a/{e}.json")
    for part in sorted((data / "b").glob("part-*.json")):
        s3.upload_file(str(part), SOURCE, f"b/{part.name}")
    assert deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", STAGE).returncode == 0
    wait_for("base a", lambda: markers(s3, "a", ["students", "follows", "sessions", "subscriptions"]), timeout=180)
    # Base a's markers start a crawl; base b's would find it running (the refresher then logs
    # and returns, as the original did), so base b starts once it is done.
    glue = emulator.client("glue")

    wait_for("base a's crawl to start", lambda: '"crawler_started","base":"a"' in logs_of(emulator, "table-refresher"),
             timeout=120)
    wait_for("base a's crawl to end",
             lambda: glue.get_crawler(Name=f"pdcase-{STAGE}-warehouse-crawler")["Crawler"]["State"] == "READY",
             timeout=180)
    r = deployer_cmd(deployer, emulator, "trigger", "spark", "--stage", STAGE)
    assert r.returncode == 0, r.stderr
    assert "it starts base b in the site-events function" in r.stdout, r.stdout
    try:
        runs = wait_for("base b's eight markers", lambda: markers(s3, "b", B_TABLES), timeout=180)
    except AssertionError:
        pytest.fail(f"base b was not published.\nsite-events logs:\n{logs_of(emulator, 'site-events')}\n"
                    f"emulator:\n{emulator.log_tail()}")
    return data, next(iter(runs.values()))


def test_a_function_stage_publishes_base_b_through_its_topic(emulator, published):
    data, run = published
    s3 = emulator.client("s3")
    for t in B_TABLES:
        manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"b/{t}/_symlink_format_manifest/manifest")["Body"].read().decode()
        named = manifest.splitlines()
        assert named and all(u.startswith(f"s3://{WAREHOUSE}/b/{t}/run={run}/") for u in named), (t, named)
        for u in named:
            s3.head_object(Bucket=WAREHOUSE, Key=u.removeprefix(f"s3://{WAREHOUSE}/"))
    # The function's report in its log, with the counts of plain Python over the same lines.
    lines = [line for p in sorted((data / "b").glob("part-*.json")) for line in p.read_text().splitlines()]
    people = json.loads((data / "a" / "students.json").read_text())
    students = {str(s["Id"]): (s.get("City"), s.get("State")) for s in people}
    events, tables, counts = expected(lines, students)
    log = logs_of(emulator, "site-events")
    assert "site-events report" in log and run in log, log
    for name in ("lines", "malformed_lines", "unknown_students", "events_without_session"):
        assert f'\\"{name}\\":{counts[name]}' in log or f'"{name}":{counts[name]}' in log, (name, counts[name], log)

    # The refresher, as its role, saw the eight markers and started the crawler once for them.
    def crawled():
        text = logs_of(emulator, "table-refresher")
        started = [line for line in text.splitlines() if "crawler_started" in line and run in line]
        return started or None
    try:
        started = wait_for("the refresher to crawl base b", crawled, timeout=60)
    except AssertionError:
        pytest.fail(f"refresher logs:\n{logs_of(emulator, 'table-refresher')}")
    assert len(started) == 1, started

    # Athena over the declared tables, each read through its manifest.
    assert athena(emulator, "SELECT count(*) FROM events") == [[str(len(events))]]
    by_city = athena(emulator, "SELECT city, events FROM events_by_city")
    assert {(c, int(n)) for c, n in by_city} == {(k[0], v["events"]) for k, v in tables["events-by-city"].items()}
    campaigns = athena(emulator, "SELECT marketing_source, marketing_medium, marketing_campaign, sessions, events "
                                 "FROM sessions_by_campaign")
    want = {(*k, None if v["sessions"] is None else str(v["sessions"]), str(v["events"]))
            for k, v in tables["sessions-by-campaign"].items()}
    assert {tuple(r) for r in campaigns} == want


@pytest.mark.parametrize("sid,named", [
    ("ReadEvents", "b/part-"),
    ("ReadStudents", "a/students/"),
    # The first thing a run writes: its message claim (the lease, the record, its files follow).
    ("WriteBaseB", "b/_runs/"),
])
def test_the_function_fails_without_each_permission_it_is_given(deployer, emulator, published, sid, named):
    """One statement of the site-events role taken out at a time: the function, as its role,
    fails with AccessDenied on the object that statement allows, and publishes nothing."""
    _, run = published
    s3 = emulator.client("s3")
    before_logs = len(logs_of(emulator, "site-events").splitlines())
    restore = without(emulator, "site-events", sid, stage=STAGE)
    try:
        assert deployer_cmd(deployer, emulator, "trigger", "spark", "--stage", STAGE).returncode == 0
        text = access_denied_in(emulator, "site-events", before_logs, sid, stage=STAGE)
    finally:
        restore()
    assert named in text, text
    assert markers(s3, "b", B_TABLES) == {t: run for t in B_TABLES}


def test_too_little_memory_is_refused_before_anything_is_written(deployer, emulator, package, published, tmp_path):
    """A function whose memory cannot hold the run refuses it, names `base_b_engine: emr`,
    and leaves base b as the previous run published it."""
    _, run = published
    s3 = emulator.client("s3")
    before = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix="b/")["Contents"])
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    lambda: {{memory_mb: 256}}\n")
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap",
                     package["lambda"]["bootstrap"], config=config)
    assert r.returncode == 0, r.stderr
    assert deployer_cmd(deployer, emulator, "trigger", "spark", "--stage", STAGE, config=config).returncode == 0

    def refused():
        text = logs_of(emulator, "site-events")
        return text if "set `base_b_engine: emr` for stage e2ebaseb" in text else None
    try:
        text = wait_for("the refusal", refused, timeout=120)
    except AssertionError:
        pytest.fail(f"site-events logs:\n{logs_of(emulator, 'site-events')}")
    assert "memory is the limit" in text and "lambda.memory_mb" in text, text
    after = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=WAREHOUSE, Prefix="b/")["Contents"])
    # The tables are as they were; the runs' bookkeeping (the refused run's claim and record,
    # the lease) is not data.
    tables = lambda keys: [k for k in keys if not k.startswith("b/_runs/")]  # noqa: E731
    assert tables(after) == tables(before)
    assert markers(s3, "b", B_TABLES) == {t: run for t in B_TABLES}
