"""The base-b Spark job, run with real PySpark (the EMR release's Spark version) in local mode.

Relies on: PySpark local[2] and the local file system (EMR itself is metadata-only in the
emulator, so the job is tested here). Expected rows come from tests/spark/expected.py, plain
Python over the same input that shares no code with the job.

Not run here: the job against `s3://` paths. Its listing, deletes and writes go through
Hadoop's FileSystem API, which these tests exercise on the local file system only. What makes
a table's switch atomic on S3, one manifest object replaced whole and Athena reading only the
files it names, is exercised against the emulator's S3 and Athena in
tests/e2e/test_manifest_switch.py.
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
    """Writes the students table as the ETL publishes it (Parquet files of one run, named by the
    table's manifest) and returns {id: (city, state)}."""
    rows = json.loads(path.read_text())
    out = tmp / "students"
    spark.createDataFrame(
        [(str(r["Id"]), r.get("City"), r.get("State")) for r in rows], "Id string, City string, State string"
    ).write.mode("overwrite").parquet(str(out / "run=r0"))
    manifest = out / site_events.MANIFEST
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(f"file:{f}\n" for f in sorted((out / "run=r0").glob("part-*.parquet"))))
    return out, {str(r["Id"]): (r.get("City"), r.get("State")) for r in rows}


def fail_switching(monkeypatch, table: str):
    """Makes the write of `table`'s manifest fail, as a lost connection would; returns the real
    write."""
    real_write = site_events.Files.write_text

    def write_text(self, path, body):
        if path.endswith(f"/{table}/{site_events.MANIFEST}"):
            raise OSError(f"cannot write {path}")
        return real_write(self, path, body)

    monkeypatch.setattr(site_events.Files, "write_text", write_text)
    return real_write


def manifest_files(output: Path, folder: str) -> list[str]:
    """The data files a table's manifest names, as local paths (the job's default base is the
    output's `file:` URI)."""
    lines = (output / folder / site_events.MANIFEST).read_text().splitlines()
    assert all(line.startswith("file:/") for line in lines), lines
    return [line[len("file:"):] for line in lines]


def read_parquet(spark, output: Path, folder: str):
    """A table as Athena reads it: the files its manifest names, and no other."""
    return spark.read.parquet(*manifest_files(output, folder))


def run_job(spark, events, students, output, *extra):
    args = site_events.parse_args(["--events", str(events), "--students", str(students), "--output", str(output), *extra])
    return site_events.run(spark, args)


def read_table(spark, output: Path, folder: str, keys: list[str]) -> dict:
    rows = read_parquet(spark, output, folder).collect()
    return {tuple(r[k] for k in keys): {c: r[c] for c in r.asDict() if c not in keys} for r in rows}


def check_outputs(spark, output: Path, lines: list[str], students: dict, report: dict):
    events, tables, counts = expected(lines, students)
    for name in ("lines", "malformed_lines", "missing_student_key", "key_without_at", "unknown_students", "unparsed_at",
                 "events_without_session"):
        assert report[name] == counts[name], (name, report, counts)
    for spec in site_events.AGGREGATES:
        got = read_table(spark, output, spec.folder, spec.keys)
        assert got == tables[spec.folder], spec.folder
        assert (output / spec.folder / "_SUCCESS").exists(), f"no _SUCCESS marker in {spec.folder}"
    fields = ["uuid", "at", "student_id", "client_type", "page_name", "event_date", "nth", "session_uuid"]
    got = sorted(
        (tuple(r[f] for f in fields) for r in read_parquet(spark, output, "events").collect()), key=repr
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
    pages = read_table(spark, tmp_path / "b", "events-by-pagename", ["page_name"])
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
    # Unknown: `42Website` (no `@`: the whole key is the id), `999`, and `` (from `@Android`).
    assert report["key_without_at"] == 1 and report["unknown_students"] == 3 and report["unparsed_at"] == 1
    assert {s["line"] for s in report["malformed_sample"]} == {'{"at": "2019-11-', "not json at all"}
    by_client = read_table(spark, tmp_path / "b", "events-by-client-type", ["client_type"])
    assert by_client[("Web",)] == {"events": 1}, "`1@Web@extra` is client Web, as split('@')[1] gave"
    campaign = read_table(spark, tmp_path / "b", "sessions-by-campaign", site_events.MARKETING)
    # Three events of campaign x in two distinct (uuid, session) pairs.
    assert campaign[("google", "cpc", "x")] == {"events": 3, "sessions": 2}


# Lines built for the rules of docs/SEMANTICS.md, base b; the comment names the rule.
RULE_LINES = [
    # A whole event: the reference for the others.
    '{"at":"2019-11-01 10:00:00","uuid":"u1","session_uuid":"1","studentId_clientType":"1@Website","custom_1":"Uni1",'
    '"marketing_source":"g","marketing_medium":"cpc","marketing_campaign":"c1"}',
    # "student_id and client_type": no `@`, the whole key is the student, client type NULL.
    '{"at":"2019-11-01 10:01:00","uuid":"u1","session_uuid":"1","studentId_clientType":"2"}',
    # "Counts": an event with a NULL `at` is an event.
    '{"at":null,"uuid":"u2","session_uuid":"5","studentId_clientType":"2@iOS","custom_1":"Uni1"}',
    # "Counts" and "NULL keys": no `at` key and a NULL student key: counted, in the NULL groups.
    '{"uuid":"u2","session_uuid":"6","studentId_clientType":null}',
    # "Sessions": no `uuid`; then neither part of the session key.
    '{"at":"2019-11-02 10:00:00","session_uuid":"7","studentId_clientType":"3@Android",'
    '"marketing_source":"g","marketing_medium":"cpc","marketing_campaign":"c2"}',
    '{"at":"2019-11-02 10:05:00","studentId_clientType":"3@Android",'
    '"marketing_source":"g","marketing_medium":"cpc","marketing_campaign":"c2"}',
    # "City and state": a student the table does not hold: in no row of events-by-city/-state.
    '{"at":"2019-11-03 10:00:00","uuid":"u3","session_uuid":"8","studentId_clientType":"9@Website"}',
]


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_semantics_rules_on_lines_built_for_them(spark, tmp_path, ansi):
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    events_file = tmp_path / "part-0000.json"
    events_file.write_text("\n".join(RULE_LINES) + "\n")
    people = tmp_path / "students.json"
    people.write_text(json.dumps([
        {"Id": "1", "City": "Rio", "State": "RJ"},
        {"Id": "2", "City": "Niteroi", "State": "RJ"},
        {"Id": "3", "City": None, "State": "SP"},
    ]))
    students_dir, students = students_of(spark, people, tmp_path)
    out = tmp_path / "b"
    report = run_job(spark, events_file, students_dir, out)
    check_outputs(spark, out, RULE_LINES, students, report)
    events = len(RULE_LINES)
    # "Counts": every table sums to the number of events, NULL groups included; events-by-city
    # and -state to the events of known students (less the unknown student's and the one
    # without a student id).
    assert report["unknown_students"] == 1 and report["missing_student_key"] == 1
    for spec in site_events.AGGREGATES:
        table = read_table(spark, out, spec.folder, spec.keys)
        known_only = spec.folder in ("events-by-city", "events-by-state")
        assert sum(v[spec.count_name] for v in table.values()) == events - (2 if known_only else 0), spec.folder
    by_client = read_table(spark, out, "events-by-client-type", ["client_type"])
    assert by_client[(None,)] == {"events": 2}, "no `@` and a NULL key: client type NULL"
    by_city = read_table(spark, out, "events-by-city", ["city"])
    assert by_city[("Niteroi",)] == {"events": 2}, "key `2` without `@` still names student 2"
    assert by_city[(None,)] == {"events": 2}, "the NULL row: student 3 without a city, nothing else"
    assert read_table(spark, out, "events-by-state", ["state"]) == {("RJ",): {"events": 3}, ("SP",): {"events": 2}}
    assert read_table(spark, out, "events-by-university", ["custom_1"])[(None,)] == {"events": 5}
    campaign = read_table(spark, out, "sessions-by-campaign", site_events.MARKETING)
    assert campaign[("g", "cpc", "c2")] == {"events": 2, "sessions": None}, "no session key: unknown, not 0"
    assert campaign[(None, None, None)] == {"events": 4, "sessions": 4}
    assert report["events_without_session"] == 2 and report["unparsed_at"] == 2
    assert report["key_without_at"] == 1 and report["missing_student_key"] == 1


def test_markers_name_the_run_and_the_refresher_waits_for_a_whole_run(spark, tmp_path, monkeypatch, deployer):
    """docs/SEMANTICS.md, "Markers": every `_SUCCESS` names the run that published its table;
    the table refresher (its Rust decision, through `deployer invoke table-refresher --local`)
    starts the crawler only when all eight name one run."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    warehouse = tmp_path / "warehouse"
    out = warehouse / "b"

    def decision(base):
        r = run([deployer, "invoke", "table-refresher", "--local", "--warehouse", warehouse])
        assert r.returncode == 0, r.stderr
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        assert all(d.pop("format_version") == 1 for d in lines)
        return next(d for d in lines if d["base"] == base)

    report = run_job(spark, SAMPLE, students_dir, out, "--run-id", "r1")
    assert report["run"] == "r1"
    tables = [spec.folder for spec in site_events.AGGREGATES] + ["events"]
    for folder in tables:
        marker = json.loads((out / folder / "_SUCCESS").read_text())
        assert marker["run"] == "r1" and marker["table"] == folder.replace("-", "_")
        assert marker["rows"] == read_parquet(spark, out, folder).count(), folder
    assert decision("b") == {"decision": "crawl", "base": "b", "run": "r1"}
    assert decision("a")["decision"] == "wait_for_tables"

    # A rerun that stops while publishing: the tables it had switched are put back (issue 26),
    # so every marker names r1 again and the base is whole. (A base whose markers name two
    # runs, when putting back fails too, makes the refresher wait: crates/etl/src/snapshot.rs.)
    real_write = fail_switching(monkeypatch, "events-by-course")
    with pytest.raises(OSError):
        run_job(spark, SAMPLE, students_dir, out, "--run-id", "r2")
    runs = {folder: json.loads((out / folder / "_SUCCESS").read_text())["run"] for folder in tables}
    assert set(runs.values()) == {"r1"}, runs
    assert decision("b") == {"decision": "crawl", "base": "b", "run": "r1"}

    monkeypatch.setattr(site_events.Files, "write_text", real_write)
    run_job(spark, SAMPLE, students_dir, out, "--run-id", "r3")
    assert decision("b") == {"decision": "crawl", "base": "b", "run": "r3"}


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
    previous = output / "events-by-city" / "run=r0" / "part-previous.parquet"
    manifest = output / "events-by-city" / site_events.MANIFEST
    for f, body in [(previous, b"the previous run's table"), (manifest, f"file:{previous}\n".encode())]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(body)
    with pytest.raises(site_events.TooManyBadLines) as e:
        run_job(spark, events_file, students_dir, output, "--max-bad-ratio", "0.1")
    message = str(e.value)
    assert "2 of 6 lines (33.33%)" in message and "above --max-bad-ratio 0.1" in message
    assert "nothing was written" in message and "part-0000.json" in message
    assert previous.read_bytes() == b"the previous run's table"
    assert manifest.read_text() == f"file:{previous}\n"
    assert sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() and "_runs" not in p.parts) == [
        f"events-by-city/{site_events.MANIFEST}", "events-by-city/run=r0/part-previous.parquet"]


def test_a_failed_publish_keeps_every_table_whole(spark, tmp_path, monkeypatch):
    """A switch that fails while tables are being published: the table being switched keeps
    its previous rows, and the tables switched before it are put back to the previous run
    (issue 26: the base's tables and markers name one run after any outcome); the failed run's
    files are removed from every table."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    run_job(spark, SAMPLE, students_dir, output, "--run-id", "r1")
    before = read_table(spark, output, "events-by-course", ["custom_2"])
    assert before, "the first run wrote rows"

    other = tmp_path / "other.json"
    other.write_text('{"at":"2019-12-01 10:00:00","uuid":"u","session_uuid":"1","custom_2":"Physics"}\n')
    fail_switching(monkeypatch, "events-by-course")
    with pytest.raises(OSError, match="events-by-course"):
        run_job(spark, other, students_dir, output, "--run-id", "r2")
    assert read_table(spark, output, "events-by-course", ["custom_2"]) == before
    assert json.loads((output / "events-by-course" / "_SUCCESS").read_text())["run"] == "r1"
    assert not (output / "events-by-course" / "run=r2").exists()
    assert not (output / "events" / "run=r2").exists(), "events comes after events-by-course"
    # The tables switched before the failure were put back: every marker names r1.
    for table in site_events.TABLES if hasattr(site_events, "TABLES") else [a.folder for a in site_events.AGGREGATES] + ["events"]:
        assert json.loads((output / table / "_SUCCESS").read_text())["run"] == "r1", table
        assert not (output / table / "run=r2").exists(), table
    assert read_table(spark, output, "events-by-university", ["custom_1"]) != {(None,): {"events": 1}}


def test_a_run_switches_each_table_to_its_own_files_and_keeps_the_previous_run(spark, tmp_path):
    """docs/SEMANTICS.md, "Publishing": a table is the files its manifest names. A run keeps
    the previous run's files (queries that started before the switch read them) and removes
    older runs and files of the layout before manifests."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    legacy = [output / "events" / "event_date=2019-11-01" / "part-old.parquet", output / "events-by-city" / "part-old.parquet"]
    for f in legacy:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"written before manifests")
    tables = [spec.folder for spec in site_events.AGGREGATES] + ["events"]
    for run_id in ["r1", "r2", "r3"]:
        run_job(spark, SAMPLE, students_dir, output, "--run-id", run_id)
        for folder in tables:
            named = manifest_files(output, folder)
            assert named and all(f"/{folder}/run={run_id}/" in f for f in named), (folder, named)
            on_disk = sorted(str(f) for f in (output / folder / f"run={run_id}").rglob("*.parquet"))
            assert sorted(named) == on_disk, folder
    assert not any(f.exists() for f in legacy)
    for folder in tables:
        # (Hadoop's local file system adds `.crc` checksum files beside what it writes.)
        names = sorted(p.name for p in (output / folder).iterdir() if not p.name.endswith(".crc"))
        assert names == ["_SUCCESS", "_symlink_format_manifest", "run=r2", "run=r3"], folder
    # Each events file holds one date, which its folder names and its `event_date` column holds.
    for f in manifest_files(output, "events"):
        day = Path(f).parent.name.removeprefix("day=")
        dates = {str(r["event_date"]) for r in spark.read.parquet(f).select("event_date").distinct().collect()}
        assert dates == {day} or (day == "__HIVE_DEFAULT_PARTITION__" and dates == {"None"}), (f, dates)


def test_a_run_id_already_used_is_refused_before_anything_is_written(spark, tmp_path):
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    run_job(spark, SAMPLE, students_dir, output, "--run-id", "r1")
    before = {str(p): p.read_bytes() for p in output.rglob("*") if p.is_file() and "_runs" not in p.parts}
    with pytest.raises(FileExistsError, match="run=r1 exists"):
        run_job(spark, SAMPLE, students_dir, output, "--run-id", "r1")
    assert {str(p): p.read_bytes() for p in output.rglob("*") if p.is_file() and "_runs" not in p.parts} == before


def test_manifest_base_names_where_readers_find_the_output(spark, tmp_path):
    """The local pipeline runs the job on a local folder and uploads it to S3: the manifests
    must name the files where Athena reads them."""
    students_dir, _ = students_of(spark, STUDENTS, tmp_path)
    output = tmp_path / "b"
    run_job(spark, SAMPLE, students_dir, output, "--run-id", "r1", "--manifest-base", "s3://warehouse/b/")
    lines = (output / "events-by-city" / site_events.MANIFEST).read_text().splitlines()
    assert lines == ["s3://warehouse/b/events-by-city/run=r1/" + p.name
                     for p in sorted((output / "events-by-city" / "run=r1").glob("*.parquet"))]


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
        assert location.endswith('/_symlink_format_manifest/"}'), location
        declared = [(c["Name"], spark_type[c["Type"]]) for c in table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])]
        schema = read_parquet(spark, tmp_path / "b", folder).schema
        written = [(f.name.lower(), f.dataType.simpleString()) for f in schema.fields]
        assert written == declared, folder
        checked += 1
    assert checked == 8


def test_command_line_refuses_a_bad_ratio_before_starting_spark():
    r = run([sys.executable, SPARK_JOB_DIR / "site_events.py", "--events", "e", "--students", "s", "--output", "o", "--max-bad-ratio", "2"])
    assert r.returncode == 2 and "--max-bad-ratio must be between 0 and 1, not 2.0" in r.stderr


# Spark versions of EMR releases (AWS EMR release guide, "Spark release history").
EMR_SPARK = {"emr-7.5.0": "3.5.2"}


def test_pinned_pyspark_is_the_spark_of_the_requested_emr_release(deployer, config_file):
    """Tests must see what production runs: bumping either side alone fails here. (`prod`
    is protected, so its base b runs on the EMR Serverless application, whose release label
    fixes its Spark.)"""
    import pyspark

    template = json.loads(run([deployer, "--config", config_file, "synth", "--stage", "prod", "--format", "json"]).stdout)
    release = template["Resources"]["EmrApplication"]["Properties"]["ReleaseLabel"]
    assert pyspark.__version__ == EMR_SPARK[release]


def test_both_engines_read_students_through_its_manifest_not_its_folder(spark, deployer, tmp_path):
    """Issue 26: base a keeps its previous run's files beside the current run's until the next
    run. With two runs' students files present (each holding every student), both base-b
    engines count each student once: they read the one run the manifest names. Relies on local
    PySpark and the function engine's code through `deployer invoke site-events --local`."""
    people = json.loads(STUDENTS.read_text())
    warehouse = tmp_path / "wh"
    students_dir, _ = students_of(spark, STUDENTS, warehouse / "a")
    # The previous run's file, every student again, with other cities: not named by the manifest.
    spark.createDataFrame([(str(r["Id"]), "Old City", "XX") for r in people],
                          "Id string, City string, State string").write.parquet(str(students_dir / "run=r-1"))
    source = tmp_path / "src"
    (source / "b").mkdir(parents=True)
    (source / "b" / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "spark-b"
    args = site_events.parse_args(["--events", str(source / "b"), "--students", str(students_dir),
                                   "--output", str(out), "--run-id", "s1"])
    site_events.run(spark, args)
    r = run([deployer, "invoke", "site-events", "--local", "--source", source, "--warehouse", warehouse,
             "--run-id", "f1"])
    assert r.returncode == 0, r.stderr
    for base in (out, warehouse / "b"):
        files = [l.removeprefix("file:") for l in (base / "events-by-city" / site_events.MANIFEST).read_text().splitlines()]
        cities = {row["city"] for row in spark.read.parquet(*files).collect()}
        assert "Old City" not in cities, (base, cities)
    # The unknown-students count is the same as with one run's file: each student known once.
    assert json.loads(r.stdout)["unknown_students"] == site_events.run(
        spark, site_events.parse_args(["--events", str(source / "b"), "--students", str(students_dir),
                                       "--output", str(tmp_path / "again"), "--run-id", "s2"]))["unknown_students"]
