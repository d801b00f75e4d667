"""Base b of the warehouse: site events -> eight Parquet tables (Spark 3.5, as on EMR 7.x).

    spark-submit site_events.py \\
        --events s3://<source>/b/ --students s3://<warehouse>/a/students/ \\
        --output s3://<warehouse>/b/ [--max-bad-ratio 0.01]

Works with `s3://` URIs on EMR and local paths in tests; nothing about the stage is hard-coded.

Compared with the original job: the events are parsed once, with an explicit schema (no
inference pass), and written once as the (staged) `events` table; the seven aggregates are
computed from its few columns they need, side by side (the original re-read the JSON for every
table). City and state come from per-student counts joined with the students, not from a join
of every event. Output is zstd Parquet, `events` partitioned by date; `sessions-by-campaign`
counts distinct sessions (the original counted events) and keeps the event count beside it.

What every column and count means is written in docs/SEMANTICS.md: every event counts once
(COUNT(*)), a NULL key is a group of its own, a key without `@` still names its student.

Dirty input is counted, reported in the log (one JSON line starting with `site-events report`)
and never crashes the job: malformed lines, a missing or null `studentId_clientType`, one
without `@`, unknown students, an unparseable `at`, events without a whole session key, key
spellings that differ between exports (`Page Name` / `PageName`). It is correct with
`spark.sql.ansi.enabled` on or off (no `split(...)[1]`, no plain casts of text). The job
fails, before publishing anything, only when the share of malformed lines is above
`--max-bad-ratio`.

Publishing is atomic per table, on S3 too (docs/SEMANTICS.md, "Publishing"). Each table is
its manifest, `<table>/_symlink_format_manifest/manifest`: the list of its data files, which
the Glue table reads through Hive's SymlinkTextInputFormat. A run writes every table's files
under `<table>/run=<run-id>/`, where no reader looks, and only once all eight are computed
replaces each table's manifest: one object written whole, so Athena sees the previous run or
this one, never a mix. (S3 has no rename: EMRFS moves a folder by copying and deleting each
object, which is what the job did before.) A failure before that removes this run's files and
leaves the tables as they were. The previous run's files stay until the next run, for the
queries that started before the switch.

Each table's folder then gets a `_SUCCESS` marker naming the run (`--run-id`): the stage's
EventBridge rule sends those markers (only) to the table refresher, and it starts the crawler
once all eight name the same run.

One run of base b at a time: the job holds base b's lease, `<output>/_runs/lease.json`
(crates/etl/src/lease.rs). On EMR Serverless the EMR starter takes it with S3's conditional
writes and hands it to this job run (the lease names its `--run-id`); the job checks it still
does before it switches a table and gives it back at its end. EMRFS has no conditional write:
that the lease cannot pass to another run while this one lives rests on the starter holding
it for longer than the run's execution timeout, which EMR Serverless enforces. Run by hand on
a local folder, the job takes the lease itself, under the same file lock as the Rust code's,
and refuses to start while another run holds it.

The students table is read through its manifest, as every reader reads a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

LOG = logging.getLogger("site_events")

# Output column -> the source keys that carry it, preferred first. Real exports say
# `Page Name`; the sample files say `PageName`.
RENAMED = {
    "page_name": ["Page Name", "PageName"],
    "page_category": ["Page Category", "PageCategory"],
    "page_category_1": ["Page Category 1", "PageCategory1"],
    "page_category_2": ["Page Category 2", "PageCategory2"],
    "page_category_3": ["Page Category 3", "PageCategory3"],
    "last_accessed_url": ["Last Accessed Url", "LastAccessedUrl"],
    "first_accessed_page": ["first-accessed-page", "firstAccessedPage"],
}

# Keys copied as they are (text), in the warehouse's column order.
PLAIN = [
    "at", "browser", "carrier", "country", "custom_1", "custom_2", "custom_3", "custom_4",
    "device_new", "install_uuid", "language", "library_ver", "model", "name", "nth", "os_ver",
    "platform", "session_uuid", "type", "user_type", "uuid",
]
MARKETING = ["marketing_source", "marketing_medium", "marketing_campaign"]
KEY = "studentId_clientType"
CORRUPT = "_corrupt_record"
SUCCESS = "_SUCCESS"
# A table's manifest (crates/stack-model/src/warehouse.rs, `Layout::Manifest`).
MANIFEST_FOLDER = "_symlink_format_manifest"
MANIFEST = f"{MANIFEST_FOLDER}/manifest"
RUN_FOLDER = re.compile(r"/run=([A-Za-z0-9_-]+)/")

# The `events` table's columns, in the order of the warehouse contract
# (crates/stack-model/src/warehouse.rs).
EVENT_COLUMNS = (
    ["at", "event_time"]
    + PLAIN[1:]
    + list(RENAMED)
    + MARKETING
    + ["student_id", "client_type", "event_date"]
)
# The events are written in one folder per date (`day=2019-11-01/`), so each file holds one
# date and Athena skips a file whose statistics exclude a date filter. The folder's name is
# not a column readers see: the manifest names files, and `event_date` is inside them.
DAY_FOLDER = "day"

# Every source key is read as text: Spark renders numbers and booleans of a text field as
# their text, so a type that differs between exports never turns a whole line into a corrupt
# record. Typed columns are derived with try_cast.
SOURCE_SCHEMA = T.StructType(
    [T.StructField(k, T.StringType()) for k in PLAIN + MARKETING + [KEY]]
    + [T.StructField(k, T.StringType()) for keys in RENAMED.values() for k in keys]
    + [T.StructField(CORRUPT, T.StringType())]
)

TIME_FORMATS = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-ddHH:mm:ss"]


@dataclass(frozen=True)
class Aggregate:
    """A table of event counts grouped by some columns."""

    folder: str
    keys: list[str]
    count_name: str
    distinct_sessions: bool = False


AGGREGATES = [
    Aggregate("events-by-city", ["city"], "events"),
    Aggregate("events-by-state", ["state"], "events"),
    Aggregate("sessions-by-campaign", MARKETING, "events", distinct_sessions=True),
    Aggregate("events-by-pagename", ["page_name"], "visits"),
    Aggregate("events-by-client-type", ["client_type"], "events"),
    Aggregate("events-by-university", ["custom_1"], "events"),
    Aggregate("events-by-course", ["custom_2"], "events"),
]

# A session is (user uuid, session number): session numbers repeat across users.
SESSION = ["uuid", "session_uuid"]

# Group keys that come from the students table, not from the events: their aggregates are
# computed from per-student counts (see `events_per_student`).
STUDENT_COLUMNS = {"city", "state"}

# Columns written without a Parquet dictionary. The ids and times rarely repeat within a file:
# the writer would build a dictionary for each, outgrow it and fall back to plain encoding,
# paying for both. The page paths repeat, but hashing and comparing their long values was a
# tenth of the job's CPU (profiled with JFR) for 6% of the output's size.
NO_DICTIONARY = ["at", "event_time", "install_uuid", "uuid", "student_id", "page_name", "last_accessed_url"]


class TooManyBadLines(RuntimeError):
    """The share of malformed lines is above the configured limit; nothing was written."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Site events -> warehouse tables (base b)")
    ap.add_argument("--events", required=True, help="NDJSON site events: a folder, file or glob")
    ap.add_argument("--students", required=True, help="the warehouse's students table (Parquet folder)")
    ap.add_argument("--output", required=True, help="the warehouse's base-b folder; tables go in subfolders")
    ap.add_argument("--students-format", choices=["parquet", "json"], default="parquet")
    ap.add_argument("--max-bad-ratio", type=float, default=0.01,
                    help="fail (writing nothing) when more than this share of lines is malformed")
    ap.add_argument("--report", help="also write the report (JSON) to this local file")
    ap.add_argument("--run-id", default=None,
                    help="names the run's folder in every table and is written into its _SUCCESS marker "
                         "(default: a new one, UTC time and random hex)")
    ap.add_argument("--manifest-base", default=None,
                    help="the URI readers reach --output by, written into the manifests (default: "
                         "--output, qualified; set it when the folder is copied to S3 after the run)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.max_bad_ratio <= 1.0:
        ap.error(f"--max-bad-ratio must be between 0 and 1, not {args.max_bad_ratio}")
    if args.run_id is None:
        args.run_id = new_run_id()
    elif not RUN_ID.fullmatch(args.run_id):
        ap.error(f"--run-id {args.run_id!r}: only letters, digits, `-` and `_` (it names a folder)")
    return args


RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_run_id() -> str:
    """`20261124T093000Z-4f1c2a`, the form the ETL's runs have: sortable by time, unique."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def marker(run_id: str, folder: str, rows: int) -> str:
    """A table's `_SUCCESS` body: the run that published it, as the ETL's markers say (the
    table refresher crawls only when every table of the base names the same run; see
    crates/etl/src/snapshot.rs, `Marker`)."""
    return json.dumps({
        "run": run_id, "table": folder.replace("-", "_"), "rows": rows, "format": "parquet",
        "object": f"b/{folder}/{MANIFEST}",
    })


def manifest(base: str, table: str, run_id: str, data_files: list[str]) -> str:
    """A table's manifest: the absolute URI of each of the run's data files, one per line
    (none for an empty `events` table: Spark writes no file then, and Athena reads no rows)."""
    return "".join(f"{base}/{table}/run={run_id}/{f}\n" for f in data_files)


def manifest_runs(text: str) -> set[str]:
    """The runs whose files a manifest names."""
    return {m.group(1) for line in text.splitlines() if (m := RUN_FOLDER.search(line))}


def try_cast(c: str, to: str) -> Column:
    # try_cast: null instead of an error under ANSI mode.
    return F.expr(f"try_cast(`{c}` as {to})")


def event_time(at: Column) -> Column:
    # try_to_timestamp returns null for text that does not match, ANSI or not.
    return F.coalesce(*[F.call_function("try_to_timestamp", at, F.lit(f)) for f in TIME_FORMATS])


def derive(raw: DataFrame) -> DataFrame:
    """Source keys -> warehouse columns, plus the flags the report counts."""
    key = F.col(KEY)
    has_at = key.isNotNull() & (F.instr(key, "@") > 0)
    cols = [F.col(k) for k in PLAIN if k not in ("device_new", "nth")]
    cols += [
        try_cast("device_new", "boolean").alias("device_new"),
        try_cast("nth", "bigint").alias("nth"),
        event_time(F.col("at")).alias("event_time"),
    ]
    cols += [F.coalesce(*[F.col(f"`{k}`") for k in keys]).alias(out) for out, keys in RENAMED.items()]
    cols += [F.col(m) for m in MARKETING]
    # docs/SEMANTICS.md, "student_id and client_type": what the original's split('@')[0] and
    # split('@')[1] gave, without the index error ANSI mode raises for a key without `@`.
    # `1@Website` -> `1`, `Website`; `1@Web@x` -> `1`, `Web`; `42` -> `42`, NULL; `@iOS` -> ``, `iOS`.
    cols += [
        F.substring_index(key, "@", 1).alias("student_id"),
        F.when(has_at, F.substring_index(F.substring_index(key, "@", 2), "@", -1)).alias("client_type"),
        key.isNull().alias("_key_missing"),
        (key.isNotNull() & ~has_at).alias("_key_without_at"),
        F.col(CORRUPT),
    ]
    return raw.select(*cols).withColumn("event_date", F.to_date("event_time"))


def table_files(files: "Files", folder: str) -> list[str] | None:
    """The data files a table's manifest names now (None: no manifest, never published).
    Never the folder's listing: it also holds the previous run's files and a run's in progress."""
    text = files.read_text(f"{folder.rstrip('/')}/{MANIFEST}")
    if text is None:
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_students(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    named = table_files(Files(spark), path)
    if not named:
        raise ValueError(f"{path.rstrip('/')}/{MANIFEST}: no students table; run the ETL (base a) first")
    students = spark.read.format(fmt).load(named)
    missing = {"Id", "City", "State"} - set(students.columns)
    if missing:
        raise ValueError(f"{path}: the students table lacks column(s) {sorted(missing)}")
    # One row per student id, ids compared by their text form, as in the base-a ETL. An id
    # that the table holds twice takes its last row (docs/SEMANTICS.md, "City and state"): the
    # original's join counted such a student's events once per row. The table is one file
    # written in export order, which monotonically_increasing_id follows.
    last = F.max_by(F.struct("city", "state"), "_order")
    return (
        students.select(
            F.col("Id").cast("string").alias("_student_key"),
            F.col("City").cast("string").alias("city"),
            F.col("State").cast("string").alias("state"),
            F.monotonically_increasing_id().alias("_order"),
        )
        .where(F.col("_student_key").isNotNull())
        .groupBy("_student_key")
        .agg(last.alias("_last"))
        .select("_student_key", "_last.city", "_last.state")
    )


def scan_metrics() -> list[Column]:
    """The report's counts, gathered by `observe` during the one pass over the events."""
    ok = F.col(CORRUPT).isNull()
    return [
        F.count(F.lit(1)).alias("lines"),
        F.count(CORRUPT).alias("malformed_lines"),
        _count_if(ok & F.col("_key_missing")).alias("missing_student_key"),
        _count_if(ok & F.col("_key_without_at")).alias("key_without_at"),
        _count_if(ok & F.col("event_time").isNull()).alias("unparsed_at"),
        _count_if(ok & ~session_known()).alias("events_without_session"),
    ]


def session_known() -> Column:
    """Whether the event names its session: both parts of the key are present."""
    return F.col(SESSION[0]).isNotNull() & F.col(SESSION[1]).isNotNull()


def _count_if(cond: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0))


def read_events(spark: SparkSession, events: str) -> DataFrame:
    """The events as JSON (RFC 8259): Spark's reader also accepts single quotes and `NaN` by
    default, which the function engine (crates/etl/src/site_events/line.rs) and every other
    JSON reader refuse; both engines count such lines as malformed."""
    return (
        spark.read.schema(SOURCE_SCHEMA)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("allowSingleQuotes", "false")
        .option("allowNonNumericNumbers", "false")
        .json(events)
    )


def bad_line_sample(spark: SparkSession, events: str, limit: int = 3) -> list[dict]:
    """A few malformed lines and their files (a second scan, made only when there are some)."""
    rows = (
        read_events(spark, events)
        .where(F.col(CORRUPT).isNotNull())
        # Spark refuses a raw-JSON query whose only column is the corrupt record: add one.
        .select(F.input_file_name().alias("file"), CORRUPT, "at")
        .limit(limit)
        .collect()
    )
    return [{"file": r["file"], "line": r[CORRUPT][:200]} for r in rows]


class Files:
    """The Hadoop file system of the output (local, HDFS or S3 through EMRFS)."""

    def __init__(self, spark: SparkSession):
        self.jvm = spark._jvm
        self.conf = spark._jsc.hadoopConfiguration()

    def _path(self, p: str):
        path = self.jvm.org.apache.hadoop.fs.Path(p)
        return path, path.getFileSystem(self.conf)

    def delete(self, p: str) -> None:
        path, fs = self._path(p)
        fs.delete(path, True)

    def qualified(self, p: str) -> str:
        """`p` as an absolute URI (`file:/tmp/out`, `s3://bucket/b`)."""
        path, fs = self._path(p)
        return str(fs.makeQualified(path))

    def delete_if_empty(self, p: str) -> None:
        path, fs = self._path(p)
        if fs.exists(path) and len(fs.listStatus(path)) == 0:
            fs.delete(path, False)

    def children(self, p: str) -> list[str]:
        """The names in folder `p` (none when it does not exist)."""
        path, fs = self._path(p)
        if not fs.exists(path):
            return []
        return [str(s.getPath().getName()) for s in fs.listStatus(path)]

    def data_files(self, folder: str) -> list[str]:
        """The Parquet files under `folder`, at any depth, as paths relative to it (sorted).
        Spark's own `_SUCCESS` and checksum files and hidden names are not data."""
        path, fs = self._path(folder)
        root = str(fs.makeQualified(path)).rstrip("/") + "/"
        found = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            full = str(files.next().getPath())
            rel = full[len(root):] if full.startswith(root) else None
            if rel is None:
                raise OSError(f"{full} is not under {root}")
            if rel.endswith(".parquet") and not any(part.startswith(("_", ".")) for part in rel.split("/")):
                found.append(rel)
        return sorted(found)

    def read_text(self, p: str) -> str | None:
        path, fs = self._path(p)
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            return bytes(self.jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode("utf-8")
        finally:
            stream.close()

    def write_text(self, p: str, body: str) -> None:
        """Writes `p` whole. On S3 (EMRFS) the object appears when the stream closes, in one
        PutObject or one completed multipart upload, and replaces the previous one atomically.
        On a local disk the file is written in place: only the local pipeline writes there,
        and it uploads each table's manifest, in one PutObject, after the table's files."""
        path, fs = self._path(p)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(body.encode("utf-8")))
        finally:
            stream.close()

    def set_success_markers(self, on: bool) -> None:
        self.conf.set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "true" if on else "false")


def events_per_student(staged: DataFrame, students: DataFrame) -> DataFrame:
    """Event counts per student id, joined with the students (one row per id seen).

    The events-by-city and -state tables and the unknown-students count come from this:
    joining 100k counts costs a fraction of joining 2M events.
    """
    counts = staged.groupBy("student_id").agg(F.count(F.lit(1)).alias("_events"))
    return counts.join(students, F.col("student_id") == F.col("_student_key"), "left")


def aggregate(staged: DataFrame, per_student: DataFrame, spec: Aggregate) -> DataFrame:
    """docs/SEMANTICS.md, "Counts": every event counts once (COUNT(*)), and NULL keys form a
    group of their own, as GROUP BY keeps them, so each table sums to the events table, but
    for events-by-city and -state, which count the events of known students only."""
    if set(spec.keys) <= STUDENT_COLUMNS:
        # Only the events of students the table holds, as the original's inner join counts them
        # (docs/SEMANTICS.md, "City and state"): the NULL row is known students without a city.
        known = per_student.where(F.col("_student_key").isNotNull())
        return known.groupBy(*spec.keys).agg(F.sum("_events").alias(spec.count_name))
    if not spec.distinct_sessions:
        return staged.groupBy(*spec.keys).agg(F.count(F.lit(1)).alias(spec.count_name))
    # Distinct sessions in two steps (one group per session, then count the groups), cheaper
    # than countDistinct's plan here. A session with a NULL part is no session: its events
    # count, it does not; a group none of whose events names a session has NULL sessions
    # (unknown, not zero), and the report counts such events (`events_without_session`).
    sessions = F.count(F.when(session_known(), 1))
    return (
        staged.groupBy(*spec.keys, *SESSION)
        .agg(F.count(F.lit(1)).alias("_events"))
        .groupBy(*spec.keys)
        .agg(F.when(sessions > 0, sessions).alias("sessions"), F.sum("_events").alias(spec.count_name))
    )


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Runs the job; returns the report. Raises TooManyBadLines, publishing nothing."""
    # Parse dates with the Java 8 parser only: under the default policy a text that the
    # legacy parser would read differently raises instead of giving null.
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    # `at` is read as UTC whatever the host's zone (EMR's default; the function engine's too).
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.compression.codec", "zstd")
    files = Files(spark)
    out = args.output.rstrip("/")
    base = (args.manifest_base or files.qualified(out)).rstrip("/")
    tables = [spec.folder for spec in AGGREGATES] + ["events"]

    def run_folder(table: str) -> str:
        # Where this run writes the table: no reader looks here until the manifest names it.
        return f"{out}/{table}/run={args.run_id}"

    started = time.monotonic()
    steps: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        now = time.monotonic()
        steps[name] = round(now - since, 1)
        return now

    # Checked before the long scan; joined (to per-student counts) only by the aggregates.
    # Spark picks the join: adaptive execution broadcasts the smaller side once it is counted.
    students = read_students(spark, args.students, args.students_format)
    raw = read_events(spark, args.events)
    observation = Observation("site-events")
    # The one pass over the events: parse, derive, count the dirt, write the events table to
    # this run's folder. Persisting them as Parquet there (rather than in Spark's cache, whose build
    # cost more than the whole scan) is what every other table is computed from.
    events = derive(raw).observe(observation, *scan_metrics())
    lease = BaseLease(files, out, args.run_id)
    lease.take()
    try:
        return publish_holding(spark, args, files, lease, out, base, tables, run_folder, students, events,
                               observation, started, steps, step)
    finally:
        lease.release()


def publish_holding(spark, args, files, lease, out, base, tables, run_folder, students, events, observation,
                    started, steps, step) -> dict:
    """The run, holding base b's lease: writes every table, then switches them."""
    for table in tables:
        if files.children(run_folder(table)):
            # Checked before anything is written: the folder may be what a manifest names.
            raise FileExistsError(f"{run_folder(table)} exists: a run id names one run; pass a new --run-id")
    switched: list[str] = []
    try:
        files.set_success_markers(False)
        good = events.where(F.col(CORRUPT).isNull())
        writer = good.select(*EVENT_COLUMNS, F.col("event_date").alias(DAY_FOLDER)).write
        for column in NO_DICTIONARY:
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
        writer.partitionBy(DAY_FOLDER).parquet(run_folder("events"))
        mark = step("scan and stage events", started)
        report = {k: int(v or 0) for k, v in observation.get.items()}
        lines, bad = report["lines"], report["malformed_lines"]
        ratio = bad / lines if lines else 0.0
        report["malformed_ratio"] = round(ratio, 6)
        if bad:
            report["malformed_sample"] = bad_line_sample(spark, args.events)
        if report["events_without_session"]:
            LOG.warning(
                "%d events lack `uuid` or `session_uuid`: they count as events but belong to no session "
                "(docs/SEMANTICS.md, \"Sessions\")", report["events_without_session"],
            )
        if ratio > args.max_bad_ratio:
            LOG.error("site-events report %s", json.dumps(report))
            raise TooManyBadLines(
                f"{bad} of {lines} lines ({ratio:.2%}) in {args.events} are malformed JSON, above "
                f"--max-bad-ratio {args.max_bad_ratio}; nothing was written. First: {report['malformed_sample']}"
            )

        # The folder read brings `day` back as a partition column: the tables need only the
        # events' own columns.
        staged = spark.read.parquet(run_folder("events")).drop(DAY_FOLDER)
        per_student = events_per_student(staged, students).cache()
        unknown = F.col("student_id").isNotNull() & F.col("_student_key").isNull()
        report["unknown_students"] = int(per_student.where(unknown).agg(F.sum("_events")).first()[0] or 0)

        rows = {"events": report["lines"] - report["malformed_lines"]}

        def stage(spec: Aggregate) -> None:
            # Aggregates are small: one file each. Their row counts (for the markers) are
            # observed while writing, not counted by another job.
            written = Observation(spec.folder)
            table = aggregate(staged, per_student, spec).coalesce(1).observe(written, F.count(F.lit(1)).alias("rows"))
            table.write.parquet(run_folder(spec.folder))
            rows[spec.folder] = int(written.get["rows"])

        # Each aggregate is a small job, mostly fixed costs and a one-task final stage: run
        # side by side, they keep the cores busy. Spark schedules jobs from several threads.
        with ThreadPoolExecutor(len(AGGREGATES), thread_name_prefix="aggregate") as pool:
            for done in [pool.submit(stage, spec) for spec in AGGREGATES]:
                done.result()
        per_student.unpersist()
        mark = step("aggregate", mark)
        # Every table is computed: still holding the lease, switch each to this run (one
        # object written whole), then mark it complete.
        lease.confirm()
        previous = {}
        # What each table names now, to put the switched tables back if a switch fails: the
        # base's tables and markers then name one run (crates/etl/src/publish.rs, `switch_all`).
        was = {t: (files.read_text(f"{out}/{t}/{MANIFEST}"), files.read_text(f"{out}/{t}/{SUCCESS}")) for t in tables}
        try:
            for table in tables:
                previous[table] = manifest_runs(was[table][0] or "")
                switched.append(table)
                files.write_text(f"{out}/{table}/{MANIFEST}",
                                 manifest(base, table, args.run_id, files.data_files(run_folder(table))))
                files.write_text(f"{out}/{table}/{SUCCESS}", marker(args.run_id, table, rows[table]))
        except Exception:
            for table in list(switched):
                try:
                    for name, body in ((SUCCESS, was[table][1]), (MANIFEST, was[table][0])):
                        path = f"{out}/{table}/{name}"
                        if files.read_text(path) == body:
                            continue  # never written (the write that failed)
                        if body is None:
                            files.delete(path)
                        else:
                            files.write_text(path, body)
                    switched.remove(table)
                except Exception as e:  # the table keeps this run's files, which it names
                    LOG.error("could not put table %s back to the previous run: %s", table, e)
            raise
        mark = step("publish", mark)
        # Older runs go; the one each manifest named until now stays for the queries that
        # read it, and goes at the next run. So do the folders of the layout before manifests.
        for table in tables:
            keep = {MANIFEST_FOLDER, SUCCESS, f"run={args.run_id}"} | {f"run={r}" for r in previous[table]}
            for name in files.children(f"{out}/{table}"):
                if name not in keep:
                    files.delete(f"{out}/{table}/{name}")
        step("remove older runs", mark)
        report["tables"] = tables
        report["run"] = args.run_id
    finally:
        files.set_success_markers(True)
        # A run that did not switch a table leaves nothing of itself in it.
        for table in tables:
            if table not in switched:
                files.delete(run_folder(table))
                files.delete_if_empty(f"{out}/{table}")
    report["seconds"] = round(time.monotonic() - started, 1)
    report["step_seconds"] = steps
    LOG.info("site-events report %s", json.dumps(report))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return report


class LeaseError(RuntimeError):
    """Base b's lease is another run's: this run did nothing, or stopped before switching."""


LEASE = "_runs/lease.json"


class BaseLease:
    """Base b's lease as the job holds it (the format of crates/etl/src/lease.rs, `LeaseBody`)."""

    # A run by hand on a local folder holds it this long (a killed one frees it then).
    LOCAL_HOLD_SECONDS = 3600

    def __init__(self, files: "Files", out: str, run_id: str):
        self.files, self.key, self.run = files, f"{out}/{LEASE}", run_id
        qualified = files.qualified(self.key)
        self.local = qualified[len("file:"):] if qualified.startswith("file:") else None

    def _read(self) -> dict | None:
        text = self.files.read_text(self.key)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    def _write(self, body: dict) -> None:
        text = json.dumps(body, separators=(",", ":"))
        if self.local is None:
            self.files.write_text(self.key, text)
            return
        import os
        import tempfile
        folder = os.path.dirname(self.local)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".lease.json.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, self.local)

    def _locked(self):
        """The lock the Rust code's local conditional writes take (`flock` of
        `.lease.json.lock` beside the lease); nothing on S3."""
        import contextlib
        if self.local is None:
            return contextlib.nullcontext()
        import fcntl
        import os
        os.makedirs(os.path.dirname(self.local), exist_ok=True)

        @contextlib.contextmanager
        def held():
            with open(os.path.join(os.path.dirname(self.local), ".lease.json.lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return held()

    @staticmethod
    def _host() -> str:
        import socket
        return socket.gethostname()

    @classmethod
    def holder_gone(cls, holder: str) -> bool:
        """A holder `... (pid N on HOST)` of this machine whose process is gone (killed): its
        lease is free at once (crates/etl/src/lease.rs, `local_holder_ended`)."""
        import os
        m = re.search(r"\(pid (\d+) on ([^)]*)\)", holder or "")
        return bool(m) and m.group(2) == cls._host() and int(m.group(1)) != os.getpid() \
            and os.path.exists("/proc/self") and not os.path.exists(f"/proc/{m.group(1)}")

    def take(self) -> None:
        import os
        with self._locked():
            current = self._read()
            if current and current.get("run") == self.run and not current.get("released"):
                return  # handed to this run by the EMR starter
            free = current is None or current.get("released") or time.time() >= current.get("expires", 0) \
                or self.holder_gone(current.get("holder"))
            if self.local is None:
                raise LeaseError(
                    f"{self.key} does not name run {self.run}: on S3 the EMR starter takes base b's lease for "
                    f"the run it starts; start the job through the stage's EMR topic (`deployer trigger spark`)")
            if not free:
                raise LeaseError(
                    f"base b is being built by run {current.get('run')} ({current.get('holder')}, since "
                    f"{current.get('taken')}); this run did nothing")
            self._write({"run": self.run, "holder": f"spark job (pid {os.getpid()} on {self._host()})",
                         "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "expires": int(time.time()) + self.LOCAL_HOLD_SECONDS, "released": False})

    def confirm(self) -> None:
        """Before switching a table: the lease still names this run."""
        with self._locked():
            current = self._read()
            if not current or current.get("run") != self.run or current.get("released"):
                raise LeaseError(
                    f"run {self.run} lost base b's lease to run {(current or {}).get('run')}: it switched no table")

    def release(self) -> None:
        with self._locked():
            current = self._read()
            if current and current.get("run") == self.run and not current.get("released"):
                current.update(released=True, expires=int(time.time()))
                self._write(current)


def record_outcome(spark: SparkSession, args: argparse.Namespace, report: dict | None, error: str | None) -> None:
    """Writes the run's outcome into its run record, `<output>/_runs/<run>.json` (the EMR
    starter wrote it as the run started; crates/etl/src/runs.rs, `RunRecord`), where
    `deployer trigger spark --wait` and `deployer runs` read it."""
    files = Files(spark)
    key = f"{args.output.rstrip('/')}/_runs/{args.run_id}.json"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        record = json.loads(files.read_text(key) or "null") or {}
    except ValueError:
        record = {}
    record.setdefault("format_version", 1)
    record.update(run=args.run_id, base="b", ended=now, retry=False)
    record.setdefault("engine", "spark job")
    record.setdefault("started", now)
    record.setdefault("expires", 0)
    record["state"] = "failed" if error else "succeeded"
    record["report"] = report
    record["error"] = error
    try:
        files.write_text(key, json.dumps(record, indent=2))
    except Exception as e:  # the outcome is in the log either way
        LOG.warning("could not write the run record %s: %s", key, e)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("site-events").getOrCreate()
    try:
        report = run(spark, args)
        record_outcome(spark, args, report, None)
    except TooManyBadLines as e:
        LOG.error("%s", e)
        record_outcome(spark, args, None, str(e))
        return 2
    except LeaseError as e:
        LOG.error("%s", e)
        record_outcome(spark, args, None, str(e))
        return 3
    except Exception as e:
        record_outcome(spark, args, None, f"{type(e).__name__}: {e}")
        raise
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
