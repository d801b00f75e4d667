"""The two engines of base b are one specification (docs/SEMANTICS.md, base b): the Spark job
(PySpark 3.5.2, local[2]) and the function engine (the etl crate's `site_events`, through
`deployer invoke site-events --local`) run on the same inputs, and every table they publish is
equal row for row, every column, and equal to the plain-Python expectations of
tests/spark/expected.py where those apply.

Relies on: real PySpark and the real Rust code on the local file system. Not run here: either
engine against S3 (the function engine on S3 is run in the emulator by
tests/e2e/test_site_events_function.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import site_events
from conftest import SHARED, run
from test_site_events import DIRTY_LINES, RULE_LINES, SAMPLE, STUDENTS, check_outputs, manifest_files, students_of

# Lines whose reading JSON leaves open; what Spark does with each was measured (line.rs).
EXOTIC_LINES = [
    '{"uuid": "a", "uuid": "dup", "session_uuid": 1, "at": "2019-11-02 00:00:00", "at": null}',
    '[{"uuid": "arr1", "studentId_clientType": "1@Web"}, {"uuid": "arr2", "nth": 3}] trailing text',
    "[]",
    '{"uuid": "trail", "custom_1": "U"} {"uuid": "ignored"}',
    '\ufeff{"uuid": "bom", "device_new": "yes"}',
    '{"nth": 17.0, "device_new": "T", "at": "2019-11-02t00:31:03", "browser": {"a" : [1, 2.50], "b": "\\u00e9"}}',
    '{"nth": " 42 ", "custom_2": 1e7, "custom_3": -0, "custom_4": 0.001, "at": "2019-02-30 00:00:00"}',
    '{"Page Name": "spaced", "PageName": "compact", "PageCategory1": "c1", "first-accessed-page": "/f"}',
    '{"studentId_clientType": 42, "marketing_source": "g"}',
    "{'uuid': 'single quotes'}",
    '{"uuid": NaN}',
    '[{"uuid": "x"}, 2]',
    "42",
    "null",
    "   ",
]

AGGREGATE_KEYS = {spec.folder: spec.keys for spec in site_events.AGGREGATES}


def rows(spark, output: Path, folder: str) -> list[tuple]:
    """Every row of a table as Athena reads it (the files its manifest names), sorted."""
    files = manifest_files(output, folder)
    if not files:
        return []
    df = spark.read.parquet(*files)
    return sorted((tuple(r) for r in df.collect()), key=repr)


def run_both(spark, deployer, tmp_path: Path, events: Path, students_json: Path, *extra: str):
    """Runs both engines on `events` with the students of `students_json`; returns
    (spark report, rust report, spark output, rust output, students)."""
    warehouse = tmp_path / "wh"
    # The function engine reads the students table where the ETL publishes it.
    (warehouse / "a").mkdir(parents=True)
    _, students = students_of(spark, students_json, warehouse / "a")
    source = tmp_path / "src"
    (source / "b").mkdir(parents=True)
    for f in sorted(events.glob("*.json")) if events.is_dir() else [events]:
        (source / "b" / f.name).write_bytes(f.read_bytes())
    spark_out = tmp_path / "spark-b"
    args = site_events.parse_args(["--events", str(source / "b"), "--students", str(warehouse / "a" / "students"),
                                   "--output", str(spark_out), "--run-id", "spark", *extra])
    spark_report = site_events.run(spark, args)
    r = run([deployer, "invoke", "site-events", "--local", "--source", source, "--warehouse", warehouse,
             "--run-id", "rust", *extra])
    assert r.returncode == 0, r.stderr
    return spark_report, json.loads(r.stdout), spark_out, warehouse / "b", students


def assert_same_tables(spark, spark_out: Path, rust_out: Path):
    for folder in ["events", *AGGREGATE_KEYS]:
        a, b = rows(spark, spark_out, folder), rows(spark, rust_out, folder)
        assert a == b, f"{folder}: Spark {len(a)} rows, Rust {len(b)} rows; first differences: " + repr(
            [(x, y) for x, y in zip(a, b) if x != y][:3])
        sa = spark.read.parquet(*manifest_files(spark_out, folder)).schema if a else None
        sb = spark.read.parquet(*manifest_files(rust_out, folder)).schema if b else None
        if sa and sb:
            assert [(f.name, f.dataType) for f in sa] == [(f.name, f.dataType) for f in sb], folder


COUNTS = ["lines", "malformed_lines", "missing_student_key", "key_without_at", "unknown_students", "unparsed_at",
          "events_without_session"]


def assert_same_report(spark_report: dict, rust_report: dict):
    assert {k: spark_report[k] for k in COUNTS} == {k: rust_report[k] for k in COUNTS}
    assert rust_report["malformed_ratio"] == pytest.approx(spark_report["malformed_ratio"], abs=1e-6)


def test_reference_sample(spark, deployer, tmp_path):
    s, r, spark_out, rust_out, students = run_both(spark, deployer, tmp_path, SAMPLE, STUDENTS)
    assert_same_tables(spark, spark_out, rust_out)
    assert_same_report(s, r)
    check_outputs(spark, rust_out, SAMPLE.read_text().splitlines(), students, r)
    assert len(rows(spark, rust_out, "events")) == 4


def test_dirty_file(spark, deployer, tmp_path):
    lines = SAMPLE.read_text().splitlines() + DIRTY_LINES
    events = tmp_path / "part-0000.json"
    events.write_text("\n".join(lines) + "\n")
    s, r, spark_out, rust_out, students = run_both(spark, deployer, tmp_path, events, STUDENTS, "--max-bad-ratio", "0.2")
    assert_same_tables(spark, spark_out, rust_out)
    assert_same_report(s, r)
    check_outputs(spark, rust_out, lines, students, r)
    assert r["malformed_lines"] == 2
    assert {b["line"] for b in r["malformed_sample"]} == {b["line"] for b in s["malformed_sample"]}


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_city_and_state_count_the_events_of_known_students_only(spark, deployer, tmp_path, ansi):
    """docs/SEMANTICS.md, "City and state": events of an unknown student and of a NULL student
    id are in no row of events-by-city and -state; a known student without a city is in the
    NULL row. Both engines (Spark with ANSI on and off) give what the rule gives, computed here
    in plain Python, row for row."""
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    events = tmp_path / "part-0000.json"
    events.write_text("\n".join(RULE_LINES) + "\n")
    people = tmp_path / "students.json"
    people.write_text(json.dumps([
        {"Id": "1", "City": "Rio", "State": "RJ"},
        {"Id": "2", "City": "Niteroi", "State": None},
        {"Id": "3", "City": None, "State": "SP"},
    ]))
    s, r, spark_out, rust_out, students = run_both(spark, deployer, tmp_path, events, people)
    assert_same_tables(spark, spark_out, rust_out)
    assert_same_report(s, r)
    check_outputs(spark, rust_out, RULE_LINES, students, r)
    # The rule, independently of tests/spark/expected.py: count each line's student, if known.
    by_city, by_state = {}, {}
    for line in RULE_LINES:
        key = json.loads(line).get("studentId_clientType")
        sid = None if key is None else str(key).split("@")[0]
        if sid in students:
            city, state = students[sid]
            by_city[city] = by_city.get(city, 0) + 1
            by_state[state] = by_state.get(state, 0) + 1
    assert r["unknown_students"] == 1 and r["missing_student_key"] == 1
    for out in (spark_out, rust_out):
        assert sorted(rows(spark, out, "events-by-city"), key=repr) == sorted(by_city.items(), key=repr)
        assert sorted(rows(spark, out, "events-by-state"), key=repr) == sorted(by_state.items(), key=repr)
    assert by_city[None] == 2 and by_state[None] == 2, "the NULL rows: known students without a city or state"


def test_lines_json_leaves_open(spark, deployer, tmp_path):
    """Duplicated keys, arrays of objects, text after the object, a byte-order mark, numbers
    and objects read as text, single quotes and NaN: both engines read each the same way."""
    events = tmp_path / "part-0000.json"
    events.write_bytes(("\n".join(SAMPLE.read_text().splitlines() + EXOTIC_LINES) + "\n").encode()
                       + b'{"uuid": "bad utf-8 \xff"}\n')
    s, r, spark_out, rust_out, _ = run_both(spark, deployer, tmp_path, events, STUDENTS, "--max-bad-ratio", "0.5")
    assert_same_tables(spark, spark_out, rust_out)
    assert_same_report(s, r)
    # 4 sample events + 9 from the lines above (an array of two, `[]` none); 6 malformed.
    assert (r["lines"], r["malformed_lines"]) == (19, 6)
    uuids = {row["uuid"] for row in spark.read.parquet(*manifest_files(rust_out, "events")).collect()}
    assert {"dup", "arr1", "arr2", "trail", "bom"} <= uuids and "ignored" not in uuids


def test_generated_data(spark, deployer, tmp_path):
    data = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(SHARED / "bench" / "gen.py"), "--students", "300", "--out", str(data),
         "--events-per-part", "2500"], check=True, capture_output=True,
    )
    s, r, spark_out, rust_out, students = run_both(spark, deployer, tmp_path, data / "b", data / "a" / "students.json")
    assert_same_tables(spark, spark_out, rust_out)
    assert_same_report(s, r)
    lines = [line for p in sorted((data / "b").glob("part-*.json")) for line in p.read_text().splitlines()]
    events, tables = check_outputs(spark, rust_out, lines, students, r)
    assert len(events) == 6000 and r["unknown_students"] > 0
    # docs/SEMANTICS.md, `events`: each file of the function engine holds one date too.
    for f in manifest_files(rust_out, "events"):
        day = Path(f).parent.name.removeprefix("day=")
        dates = {str(row["event_date"]) for row in spark.read.parquet(f).select("event_date").distinct().collect()}
        assert dates == {day} or (day == "__HIVE_DEFAULT_PARTITION__" and dates == {"None"}), (f, dates)
