"""The base-b Spark job, run with real PySpark (the EMR release's Spark version) in local mode.

Relies on: PySpark local[2] and the local file system (EMR itself is metadata-only in the
emulator, so the job is tested here). Expected rows come from tests/spark/expected.py, plain
Python over the same input that shares no code with the job.

Not run here: the job against `s3://` paths. Staging, delete and rename go through Hadoop's
FileSystem API, which these tests exercise on the local file system only; on S3 (EMRFS) the
rename of a staged table's folder is a copy, so publishing one table is not atomic there.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import site_events
from conftest import SHARED, SPARK_JOB_DIR, run
from expected import expected

SAMPLE = SHARED / "fixtures" / "reference" / "inputs" / "b" / "part-0000.json"
STUDENTS = SHARED / "fixtures" / "reference" / "outputs" / "denormalizedStudents.json"

# Lines a real export has been seen to hold, and worse.
DIRTY_LINES = [
    '{"at":"2019-11-01 00:28:03","uuid":"u1","session_uuid":"1","studentId_clientType":null,"Page Name":"/a"}',
    '{"at":"2019-11-01 00:29:03","uuid":"u1","session_uuid":"1","Page Name":"/a"}',
    '{"at":"2019-11-01 00:30:03","uuid":"u2","session_uuid":"1","studentId_clientType":"42Website","PageName":"/b"}',
    '{"at":"2019-11-01 00:31:03","uuid":"u3","session_uuid":"2","studentId_clientType":"999@iOS","Page Name":"/c",'
    '"marketing_source":"google","marketing_medium":"cpc","marketing_campaign":"x"}',
    '{"at":"2019-11-02T00:31:03","uuid":"u3","session_uuid":"2","studentId_clientType":"2@","Page Name":"/c",'
    '"marketing_source":"google","marketing_medium":"cpc","marketing_campaign":"x","nth":"17"}',
    '{"at":"yesterday","uuid":"u4","session_uuid":"3","studentId_clientType":"1@Web@extra","Page Name":"/d",'
    '"marketing_source":"google","marketing_medium":"cpc","marketing_campaign":"x","nth":5}',
    '{"at":"2019-11-03 10:00:00","uuid":"u5","session_uuid":"9","studentId_clientType":"@Android","device_new":true}',
    '{"at": "2019-11-',
    "not json at all",
    "",
]


def students_of(spark, path: Path, tmp: Path):
    """Writes the students table as the ETL does (Parquet) and returns {id: (city, state)}."""
    rows = json.loads(path.read_text())
    out = tmp / "students"
    spark.createDataFrame(
        [(str(r["Id"]), r.get("City"), r.get("State")) for r in rows], "Id string, City string, State string"
    ).write.mode("overwrite").parquet(str(out))
    return out, {str(r["Id"]): (r.get("City"), r.get("State")) for r in rows}


def run_job(spark, events, students, output, *extra):
    args = site_events.parse_args(["--events", str(events), "--students", str(students), "--output", str(output), *extra])
    return site_events.run(spark, args)


def read_table(spark, path: Path, keys: list[str]) -> dict:
    rows = spark.read.parquet(str(path)).collect()
    return {tuple(r[k] for k in keys): {c: r[c] for c in r.asDict() if c not in keys} for r in rows}


def check_outputs(spark, output: Path, lines: list[str], students: dict, report: dict):
    events, tables, counts = expected(lines, students)
    for name in ("lines", "malformed_lines", "missing_student_key", "key_without_at", "unknown_students", "unparsed_at"):
        assert report[name] == counts[name], (name, report, counts)
    for spec in site_events.AGGREGATES:
        got = read_table(spark, output / spec.folder, spec.keys)
        assert got == tables[spec.folder], spec.folder
        assert (output / spec.folder / "_SUCCESS").exists(), f"no _SUCCESS marker in {spec.folder}"
    fields = ["uuid", "at", "student_id", "client_type", "page_name", "event_date", "nth", "session_uuid"]
    got = sorted(
        (tuple(r[f] for f in fields) for r in spark.read.parquet(str(output / "events")).collect()), key=repr
    )
    want = sorted((tuple(e[f] for f in fields) for e in events), key=repr)
    assert got == want
    assert (output / "events" / "_SUCCESS").exists()
    return events, tables


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_reference_sample(spark, tmp_path, ansi):
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    students_dir, students = students_of(spark, STUDENTS, tmp_path)
    report = run_job(spark, SAMPLE, students_dir, tmp_path / "b")
    events, tables = check_outputs(spark, tmp_path / "b", SAMPLE.read_text().splitlines(), students, report)
    assert len(events) == 4
    # The sample spells `PageName`, not `Page Name`: renamed all the same.
    pages = read_table(spark, tmp_path / "b" / "events-by-pagename", ["page_name"])
    assert pages[("/perfil/22482764/materiais",)] == {"visits": 1} and len(pages) == 4
    assert report["malformed_lines"] == 0 and report["unparsed_at"] == 0, "`2017-11-1602:10:20` parses"


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_dirty_lines_are_counted_not_fatal(spark, tmp_path, ansi):
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    lines = SAMPLE.read_text().splitlines() + DIRTY_LINES
    events_file = tmp_path / "part-0000.json"
    events_file.write_text("\n".join(lines) + "\n")
    students_dir, students = students_of(spark, STUDENTS, tmp_path)
    report = run_job(spark, events_file, students_dir, tmp_path / "b", "--max-bad-ratio", "0.2")
    check_outputs(spark, tmp_path / "b", lines, students, report)
    assert report["malformed_lines"] == 2 and report["missing_student_key"] == 2
    assert report["key_without_at"] == 1 and report["unknown_students"] == 1 and report["unparsed_at"] == 1
    assert {s["line"] for s in report["malformed_sample"]} == {'{"at": "2019-11-', "not json at all"}
    by_client = read_table(spark, tmp_path / "b" / "events-by-client-type", ["client_type"])
    assert by_client[("Web",)] == {"events": 1}, "`1@Web@extra` is client Web, as split('@')[1] gave"
    campaign = read_table(spark, tmp_path / "b" / "sessions-by-campaign", site_events.MARKETING)
    # Three events of campaign x in two distinct (uuid, session) pairs.
    assert campaign[("google", "cpc", "x")] == {"events": 3, "sessions": 2}


def test_generated_data(spark, tmp_path):
    data = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(SHARED / "bench" / "gen.py"), "--students", "300", "--out", str(data), "--events-per-part", "2500"],
        check=True, capture_output=True,
    )
    parts = sorted((data / "b").glob("part-*.json"))
    assert len(parts) >= 2, "several part files, some without the marketing keys"
    students_dir, students = students_of(spark, data / "a" / "students.json", tmp_path)
    report = run_job(spark, data / "b", students_dir, tmp_path / "b")
    lines = [line for p in parts for line in p.read_text().splitlines()]
    events, tables = check_outputs(spark, tmp_path / "b", lines, students, report)
    assert len(events) == 6000
    assert report["unknown_students"] > 0 and report["missing_student_key"] >= 0
    assert len(tables["events-by-city"]) > 5 and len(tables["sessions-by-campaign"]) > 1


def test_too_many_bad_lines_fails_and_writes_nothing(spark, tmp_path):
    events_file = tmp_path / "part-0000.json"
    events_file.write_text("\n".join(SAMPLE.read_text().splitlines() + ["{broken", "also broken"]) + "\n")
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    previous = output / "events-by-city" / "part-previous.parquet"
    previous.parent.mkdir(parents=True)
    previous.write_bytes(b"the previous run's table")
    with pytest.raises(site_events.TooManyBadLines) as e:
        run_job(spark, events_file, students_dir, output, "--max-bad-ratio", "0.1")
    message = str(e.value)
    assert "2 of 6 lines (33.33%)" in message and "above --max-bad-ratio 0.1" in message
    assert "nothing was written" in message and "part-0000.json" in message
    assert previous.read_bytes() == b"the previous run's table"
    assert sorted(p.name for p in output.iterdir()) == ["events-by-city"]


def test_a_failed_publish_keeps_every_table_whole(spark, tmp_path, monkeypatch):
    """A move that fails while tables are being published: the table being swapped keeps its
    previous rows, the staging is removed, and nothing half-written is left behind."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    run_job(spark, SAMPLE, students_dir, output)
    before = read_table(spark, output / "events-by-course", ["custom_2"])
    assert before, "the first run wrote rows"

    other = tmp_path / "other.json"
    other.write_text('{"at":"2019-12-01 10:00:00","uuid":"u","session_uuid":"1","custom_2":"Physics"}\n')
    real_rename = site_events.Files.rename

    def rename(self, src, dst):
        if "_staging" in src and src.endswith("/events-by-course"):
            raise OSError(f"cannot move {src} to {dst}")
        return real_rename(self, src, dst)

    monkeypatch.setattr(site_events.Files, "rename", rename)
    with pytest.raises(OSError, match="events-by-course"):
        run_job(spark, other, students_dir, output)
    assert read_table(spark, output / "events-by-course", ["custom_2"]) == before
    assert (output / "events-by-course" / "_SUCCESS").exists()
    # The tables published before the failure hold the new run whole.
    assert read_table(spark, output / "events-by-university", ["custom_1"]) == {}
    assert not (output / "_staging").exists()


def test_outputs_match_the_warehouse_contract(spark, tmp_path, deployer):
    """The Parquet the job writes has the columns and types the Glue tables declare."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    run_job(spark, SAMPLE, students_dir, tmp_path / "b")
    template = json.loads(run([deployer, "synth", "--stage", "alice", "--format", "json"]).stdout)
    spark_type = {"string": "string", "bigint": "bigint", "boolean": "boolean", "timestamp": "timestamp", "date": "date"}
    checked = 0
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Glue::Table":
            continue
        table = resource["Properties"]["TableInput"]
        location = json.dumps(table["StorageDescriptor"]["Location"])
        if "/b/" not in location:
            continue
        folder = location.split("/b/")[1].split("/")[0]
        declared = [(c["Name"], spark_type[c["Type"]]) for c in table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])]
        schema = spark.read.parquet(str(tmp_path / "b" / folder)).schema
        written = [(f.name.lower(), f.dataType.simpleString()) for f in schema.fields]
        assert written == declared, folder
        checked += 1
    assert checked == 8


def test_command_line_refuses_a_bad_ratio_before_starting_spark():
    r = run([sys.executable, SPARK_JOB_DIR / "site_events.py", "--events", "e", "--students", "s", "--output", "o", "--max-bad-ratio", "2"])
    assert r.returncode == 2 and "--max-bad-ratio must be between 0 and 1, not 2.0" in r.stderr


# Spark versions of EMR releases (AWS EMR release guide, "Spark release history").
EMR_SPARK = {"emr-7.5.0": "3.5.2"}


def test_pinned_pyspark_is_the_spark_of_the_requested_emr_release(deployer):
    """Tests must see what production runs: bumping either side alone fails here."""
    import pyspark

    template = json.loads(run([deployer, "synth", "--stage", "alice", "--format", "json"]).stdout)
    env = template["Resources"]["EmrStarterFunction"]["Properties"]["Environment"]["Variables"]
    assert pyspark.__version__ == EMR_SPARK[env["EMR_RELEASE_LABEL"]]
