"""Issue 12j: a base-b table switches from one run to the next in one atomic step on S3.

A base-b table is the list of files in its manifest (docs/SEMANTICS.md, "Publishing"): a run
writes its files beside the previous run's and then replaces the manifest with one PutObject.
Here two real runs of the Spark job (local PySpark, `--manifest-base` naming the emulator's
bucket) are published into the emulator's S3 in the order the job writes on S3
(`publish_base_b` below), and the
tables are queried through the emulator's Athena, declared exactly as the rendered template
declares them, before, during and after the switch.

Relies on: MiniStack's S3, Glue and Athena (DuckDB) with the patches athena-symlink-manifest
and athena-symlink-files (scripts/patch_emulator.py), which make its Athena read a symlink
table through its manifest as AWS's does; PySpark local[2]. Not checked here: that EMRFS
writes the manifest in one PutObject (its documented behaviour for an object written through
an output stream), and S3's own guarantee that a reader of a key sees the old object or the
new one whole ("Amazon S3 data consistency model"), which the emulator has by construction.
"""
import json
import re
import time
from pathlib import Path

import pytest

import site_events
from conftest import SHARED, run

BUCKET = "pdcase-switch-warehouse"
DATABASE = "pdcase_switch"
WORKGROUP = "pdcase-switch"
SAMPLE = SHARED / "fixtures" / "reference" / "inputs" / "b" / "part-0000.json"
STUDENTS = SHARED / "fixtures" / "reference" / "outputs" / "denormalizedStudents.json"


def publish_base_b(s3, out: Path, bucket: str, before_switch=lambda table: None) -> int:
    """Uploads the Spark job's local output `out` to `s3://bucket/b/` in the order the job
    writes on S3 (crates/etl/spark/site_events.py): for each table, the run's data files,
    then its manifest, one PutObject that switches the table, then its `_SUCCESS` marker.
    `before_switch(table)` runs between a table's files and its manifest. Returns the number
    of objects uploaded."""
    n = 0
    for table in sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "_runs"):  # tables, not the runs' bookkeeping
        folder = out / table
        files = [f for f in sorted(folder.rglob("*")) if f.is_file() and f.relative_to(folder).parts[0].startswith("run=")
                 and f.suffix == ".parquet"]
        for f in files:
            s3.upload_file(str(f), bucket, f"b/{table}/{f.relative_to(folder).as_posix()}")
        before_switch(table)
        manifest = folder / "_symlink_format_manifest" / "manifest"
        s3.put_object(Bucket=bucket, Key=f"b/{table}/_symlink_format_manifest/manifest", Body=manifest.read_bytes())
        s3.put_object(Bucket=bucket, Key=f"b/{table}/_SUCCESS", Body=(folder / "_SUCCESS").read_bytes())
        n += len(files) + 2
    return n


def athena(client, sql):
    qid = client.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": DATABASE},
                                       WorkGroup=WORKGROUP)["QueryExecutionId"]
    for _ in range(600):
        status = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"{sql}: {status.get('StateChangeReason')}")
    rows = client.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in rows[1:]]


def declared_base_b_tables(deployer) -> list[dict]:
    """The base-b TableInputs of the rendered template, their locations in BUCKET."""
    template = json.loads(run([deployer, "synth", "--stage", "alice", "--format", "json"]).stdout)
    tables = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Glue::Table":
            continue
        table = resource["Properties"]["TableInput"]
        location = table["StorageDescriptor"]["Location"]["Fn::Sub"]
        if "/b/" in location:
            table["StorageDescriptor"]["Location"] = re.sub(r"^s3://[^/]+/", f"s3://{BUCKET}/", location)
            tables.append(table)
    assert len(tables) == 8
    return tables


def job_output(spark, tmp_path: Path, name: str, lines: list[str]) -> tuple[Path, dict]:
    """A run of the Spark job over `lines`, written locally as for the local pipeline."""
    events = tmp_path / f"{name}.json"
    events.write_text("\n".join(lines) + "\n")
    students = tmp_path / "students"
    if not students.exists():
        # As the ETL publishes it: one run's files, named by the table's manifest.
        rows = json.loads(STUDENTS.read_text())
        spark.createDataFrame([(str(r["Id"]), r.get("City"), r.get("State")) for r in rows],
                              "Id string, City string, State string").write.parquet(str(students / "run=r0"))
        manifest = students / "_symlink_format_manifest" / "manifest"
        manifest.parent.mkdir()
        manifest.write_text("".join(f"file:{f}\n" for f in sorted((students / "run=r0").glob("part-*.parquet"))))
    out = tmp_path / name / "b"
    args = site_events.parse_args(["--events", str(events), "--students", str(students), "--output", str(out),
                                   "--run-id", name, "--manifest-base", f"s3://{BUCKET}/b"])
    return out, site_events.run(spark, args)


def counts(client) -> dict:
    """What a reader sees: the events and the per-city sums, which must come from one run."""
    return {
        "events": int(athena(client, "SELECT count(*) FROM events")[0][0]),
        "events_by_city": int(athena(client, "SELECT sum(events) FROM events_by_city")[0][0]),
    }


@pytest.fixture()
def warehouse(emulator, deployer):
    emulator.reset()
    s3, glue, client = emulator.client("s3"), emulator.client("glue"), emulator.client("athena")
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for table in declared_base_b_tables(deployer):
        glue.create_table(DatabaseName=DATABASE, TableInput=table)
    client.create_work_group(Name=WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena-results/"}})
    return s3, glue, client


def test_each_table_switches_whole_at_its_manifest(spark, tmp_path, warehouse):
    s3, glue, client = warehouse
    lines = SAMPLE.read_text().splitlines()
    first, report1 = job_output(spark, tmp_path, "r1", lines)
    second, report2 = job_output(spark, tmp_path, "r2", lines[: len(lines) // 2])
    rows = [r["lines"] - r["malformed_lines"] for r in (report1, report2)]
    # events-by-city counts the events of known students only (docs/SEMANTICS.md, "City and
    # state"): the events less the unknown students' and those without a student id.
    known = [rows[i] - r["unknown_students"] - r["missing_student_key"] for i, r in enumerate((report1, report2))]
    one = {"events": rows[0], "events_by_city": known[0]}
    two = {"events": rows[1], "events_by_city": known[1]}
    assert one["events"] > two["events"] > 0 and one["events_by_city"] > two["events_by_city"] > 0

    publish_base_b(s3, first, BUCKET)
    seen = counts(client)
    assert seen == one

    # What a folder-layout table would see of the same prefix while the second run's files
    # are written beside the first's: both runs at once. The manifest is what prevents it.
    folder_table = {
        "Name": "events_as_a_folder",
        "StorageDescriptor": {
            "Columns": [{"Name": "uuid", "Type": "string"}],
            "Location": f"s3://{BUCKET}/b/events/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
        "Parameters": {"classification": "parquet"},
    }
    glue.create_table(DatabaseName=DATABASE, TableInput=folder_table)
    during = {}

    def before_switch(table):
        # The table's new files are all in S3; its manifest still names the first run's.
        if table == "events":
            during["events"] = int(athena(client, "SELECT count(*) FROM events")[0][0])
            during["folder"] = int(athena(client, "SELECT count(*) FROM events_as_a_folder")[0][0])
        if table == "events-by-city":
            during["events_by_city"] = int(athena(client, "SELECT sum(events) FROM events_by_city")[0][0])

    publish_base_b(s3, second, BUCKET, before_switch=before_switch)
    assert during["events"] == one["events"] and during["events_by_city"] == one["events_by_city"], during
    assert during["folder"] == one["events"] + two["events"], during
    seen = counts(client)
    assert seen == two

    # Each table's marker names the run its manifest switched to.
    for table in site_events.AGGREGATES:
        marker = json.loads(s3.get_object(Bucket=BUCKET, Key=f"b/{table.folder}/_SUCCESS")["Body"].read())
        assert marker["run"] == "r2" and marker["object"] == f"b/{table.folder}/_symlink_format_manifest/manifest"


def test_a_date_filter_reads_the_events_column(spark, tmp_path, warehouse):
    """`events` is not partitioned (one manifest holds the whole table): `event_date` is a
    column of its files, typed as the table declares it."""
    s3, _, client = warehouse
    lines = SAMPLE.read_text().splitlines()
    out, _ = job_output(spark, tmp_path, "r1", lines)
    publish_base_b(s3, out, BUCKET)
    by_day = athena(client, "SELECT CAST(event_date AS VARCHAR), count(*) FROM events GROUP BY 1 ORDER BY 1")
    total = sum(int(n) for _, n in by_day)
    assert total == int(athena(client, "SELECT count(*) FROM events")[0][0]) and len(by_day) >= 1
    day, n = by_day[0]
    assert int(athena(client, f"SELECT count(*) FROM events WHERE event_date = DATE '{day}'")[0][0]) == int(n)


def test_a_manifest_naming_a_missing_object_fails_the_query(warehouse):
    """Patch athena-symlink-files: a query of a symlink table reads the objects its manifest
    names; one that is gone fails the query rather than reading less."""
    s3, _, client = warehouse
    s3.put_object(Bucket=BUCKET, Key="b/events-by-city/_symlink_format_manifest/manifest",
                  Body=f"s3://{BUCKET}/b/events-by-city/run=gone/part-0.parquet\n".encode())
    with pytest.raises(RuntimeError, match="run=gone/part-0.parquet"):
        athena(client, "SELECT count(*) FROM events_by_city")
