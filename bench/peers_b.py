#!/usr/bin/env python3
"""Base b against what a data engineer would try instead on one machine (issue 29, part 1): the
site-events function's code (`deployer invoke site-events --local`) against DuckDB, Polars, chDB
and DataFusion (pinned in bench/requirements-peers.txt), each written the fastest way its
documentation allows, each writing the `events` table (Parquet, one folder per date, the date
kept in the files) and the seven aggregates from the same NDJSON events and students table.

    ~/.cache/pdcase/bench-peers/bin/python bench/peers_b.py --students 100000 \\
        --deployer "$CARGO_TARGET_DIR/release/deployer"

How each peer is written (NDJSON is read on every core by each of them):
- DuckDB: `read_json` with every key's type given (text, as docs/SEMANTICS.md reads them), the
  derived events in a temporary table, then the events `COPY ... (PARTITION_BY (event_date))`
  and the seven aggregates, each `COPY` on its own cursor, side by side.
- Polars: `scan_ndjson` with the schema given, the derived events collected once, then
  `sink_parquet(PartitionBy(..., include_key=True))`, then the aggregates in one `collect_all`
  (Polars runs each step on every core; eight threads of steps side by side were slower).
- chDB: `file(..., JSONEachRow)` with the structure given and numbers and booleans read as
  text, the derived events in a `Memory` table of a session, then `INSERT INTO FUNCTION file(...)
  PARTITION BY` and one `INTO OUTFILE` per aggregate (each query uses every core).
- DataFusion: the events as an external NDJSON table (`nth` and `device_new` typed as JSON holds
  them: its reader will not read a boolean as text), the derived events cached in memory, then
  `COPY ... PARTITIONED BY` and one `COPY` per aggregate, side by side.

Before timing, each peer's eight tables are checked equal to the function's on the same data:
sorted row sets, every column (the events' timestamps compared as UTC instants). What no peer
implements (docs/SEMANTICS.md, base b): malformed lines counted, sampled and refused above a
share (the generated events hold none), a key given twice (its last value), a top-level array
of events, numbers and booleans as Jackson writes them, Spark's strict time formats and
`try_cast` rules, distinct sessions as 128-bit hashes, the run's report, the manifests, markers
and lease of an atomic publish.

Runs alternate (function, then each peer) `--repeat` times; wall time from the parent, CPU and
peak RSS from the child's rusage; ratios of medians.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import alternate, measure  # noqa: E402

RENAMED = {
    "page_name": ["Page Name", "PageName"],
    "page_category": ["Page Category", "PageCategory"],
    "page_category_1": ["Page Category 1", "PageCategory1"],
    "page_category_2": ["Page Category 2", "PageCategory2"],
    "page_category_3": ["Page Category 3", "PageCategory3"],
    "last_accessed_url": ["Last Accessed Url", "LastAccessedUrl"],
    "first_accessed_page": ["first-accessed-page", "firstAccessedPage"],
}
PLAIN = ["at", "browser", "carrier", "country", "custom_1", "custom_2", "custom_3", "custom_4",
         "device_new", "install_uuid", "language", "library_ver", "model", "name", "nth", "os_ver",
         "platform", "session_uuid", "type", "user_type", "uuid"]
MARKETING = ["marketing_source", "marketing_medium", "marketing_campaign"]
KEY = "studentId_clientType"
SOURCE_KEYS = PLAIN + MARKETING + [KEY] + [k for keys in RENAMED.values() for k in keys]
EVENT_COLUMNS = ["at", "event_time"] + PLAIN[1:] + list(RENAMED) + MARKETING + ["student_id", "client_type", "event_date"]
AGGREGATES = {
    "events-by-city": (["city"], "events"),
    "events-by-state": (["state"], "events"),
    "sessions-by-campaign": (MARKETING, "events"),
    "events-by-pagename": (["page_name"], "visits"),
    "events-by-client-type": (["client_type"], "events"),
    "events-by-university": (["custom_1"], "events"),
    "events-by-course": (["custom_2"], "events"),
}
TABLES = ["events", *AGGREGATES]

COMMON = (f"RENAMED = {RENAMED!r}\nPLAIN = {PLAIN!r}\nMARKETING = {MARKETING!r}\nKEY = {KEY!r}\n"
          f"SOURCE_KEYS = {SOURCE_KEYS!r}\nEVENT_COLUMNS = {EVENT_COLUMNS!r}\nAGGREGATES = {AGGREGATES!r}\n") + r"""
import os, sys, threading
src, students, out = sys.argv[1:4]
EVENTS = os.path.join(src, "b", "part-*.json")
FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d%H:%M:%S"]
def q(c):
    return '"' + c + '"'
def side_by_side(jobs):
    errors = []
    def guarded(j):
        try:
            j()
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=guarded, args=(j,)) for j in jobs]
    for t in threads: t.start()
    for t in threads: t.join()
    if errors:
        raise errors[0]
# The SQL peers' derived events and aggregates, in each one's spelling of a few functions.
def derive_sql(strptime, split, contains, coalesce="coalesce", cast_bool="TRY_CAST({} AS BOOLEAN)", cast_int="TRY_CAST({} AS BIGINT)", source="raw"):
    k = q(KEY)
    cols = {c: q(c) for c in PLAIN}
    cols["device_new"] = cast_bool.format(q("device_new"))
    cols["nth"] = cast_int.format(q("nth"))
    cols["event_time"] = coalesce + "(" + ", ".join(strptime.format(q("at"), f) for f in FORMATS) + ")"
    for o, keys in RENAMED.items():
        cols[o] = coalesce + "(" + ", ".join(q(x) for x in keys) + ")"
    for m in MARKETING:
        cols[m] = q(m)
    cols["student_id"] = split.format(k, 1)
    cols["client_type"] = "CASE WHEN " + contains.format(k) + " THEN " + split.format(k, 2) + " END"
    cols["event_date"] = "CAST(" + cols["event_time"] + " AS DATE)"
    return "SELECT " + ", ".join(cols[c] + " AS " + q(c) for c in EVENT_COLUMNS) + " FROM " + source
def aggregate_sql(name, students_table, concat):
    keys, count = AGGREGATES[name]
    if keys in (["city"], ["state"]):
        col = keys[0].capitalize()
        return ("SELECT s." + q(col) + " AS " + q(keys[0]) + ", CAST(SUM(p.n) AS BIGINT) AS " + q(count) +
                " FROM (SELECT student_id, COUNT(*) AS n FROM e GROUP BY student_id) p JOIN " + students_table +
                " s ON s." + q("Id") + " = p.student_id GROUP BY s." + q(col))
    group = ", ".join(q(c) for c in keys)
    if name == "sessions-by-campaign":
        session = concat.format(q("uuid"), q("session_uuid"))
        return ("SELECT " + group + ", NULLIF(COUNT(DISTINCT " + session + "), 0) AS sessions, COUNT(*) AS events"
                " FROM e GROUP BY " + group)
    return "SELECT " + group + ", COUNT(*) AS " + q(count) + " FROM e GROUP BY " + group
"""

DUCKDB = COMMON + r"""
import duckdb
con = duckdb.connect()
columns = "{" + ", ".join("'" + c + "': 'VARCHAR'" for c in SOURCE_KEYS) + "}"
raw = "read_json('" + EVENTS + "', format = 'newline_delimited', columns = " + columns + ")"
con.execute("CREATE TABLE e AS " + derive_sql("try_strptime({}, '{}')", "split_part({}, '@', {})", "contains({}, '@')", source=raw))
con.execute("CREATE TABLE students AS SELECT * FROM read_parquet('" + students + "')")
def copy(sql, to, extra=""):
    cur = con.cursor()
    return lambda: cur.execute("COPY (" + sql + ") TO '" + to + "' (FORMAT parquet, COMPRESSION snappy" + extra + ")")
jobs = [copy("SELECT * FROM e", os.path.join(out, "events"), ", PARTITION_BY (event_date), WRITE_PARTITION_COLUMNS true")]
jobs += [copy(aggregate_sql(n, "students", "({} || chr(0) || {})"), os.path.join(out, n + ".parquet")) for n in AGGREGATES]
side_by_side(jobs)
"""

POLARS = COMMON + r"""
import polars as pl
S = pl.String
raw = pl.scan_ndjson(EVENTS, schema={c: S for c in SOURCE_KEYS})
k = pl.col(KEY)
t = pl.coalesce([pl.col("at").str.strptime(pl.Datetime("us"), f, strict=False) for f in FORMATS])
bools = {"t": True, "true": True, "y": True, "yes": True, "1": True, "f": False, "false": False, "n": False, "no": False, "0": False}
derived = {c: pl.col(c) for c in PLAIN}
derived["device_new"] = pl.col("device_new").str.strip_chars().str.to_lowercase().replace_strict(bools, default=None, return_dtype=pl.Boolean)
derived["nth"] = pl.col("nth").str.strip_chars().cast(pl.Int64, strict=False)
derived["event_time"] = t
for o, keys in RENAMED.items():
    derived[o] = pl.coalesce([pl.col(x) for x in keys])
for m in MARKETING:
    derived[m] = pl.col(m)
derived["student_id"] = k.str.split("@").list.get(0, null_on_oob=True)
derived["client_type"] = pl.when(k.str.contains("@", literal=True)).then(k.str.split("@").list.get(1, null_on_oob=True))
derived["event_date"] = t.dt.date()
e = raw.select([derived[c].alias(c) for c in EVENT_COLUMNS]).collect()
students_df = pl.read_parquet(students)
def agg(name):
    keys, count = AGGREGATES[name]
    if keys in (["city"], ["state"]):
        col = keys[0].capitalize()
        per = e.lazy().group_by("student_id").agg(pl.len().alias("n"))
        j = per.join(students_df.lazy().select(pl.col("Id"), pl.col(col).alias(keys[0])), left_on="student_id", right_on="Id", how="inner")
        return j.group_by(keys[0]).agg(pl.col("n").sum().cast(pl.Int64).alias(count))
    if name == "sessions-by-campaign":
        # As the Spark job does it: a group per session, then the sessions per campaign.
        per = e.lazy().group_by(keys + ["uuid", "session_uuid"]).agg(pl.len().alias("n"))
        known = (pl.col("uuid").is_not_null() & pl.col("session_uuid").is_not_null()).sum()
        return per.group_by(keys).agg(pl.when(known > 0).then(known).cast(pl.Int64).alias("sessions"), pl.col("n").sum().cast(pl.Int64).alias("events"))
    return e.lazy().group_by(keys).agg(pl.len().cast(pl.Int64).alias(count))
# Polars runs each operation on every core: its jobs one after the other (eight threads of
# them side by side took 20 s and 7.8 GB against 12 s), the aggregates in one collect_all.
e.lazy().sink_parquet(pl.PartitionBy(os.path.join(out, "events"), key="event_date", include_key=True), compression="snappy", mkdir=True)
for name, df in zip(AGGREGATES, pl.collect_all([agg(n) for n in AGGREGATES])):
    df.write_parquet(os.path.join(out, name + ".parquet"), compression="snappy")
"""

CHDB = COMMON + r"""
from chdb import session
s = session.Session()
structure = ", ".join("`" + c + "` Nullable(String)" for c in SOURCE_KEYS)
raw = "file('" + EVENTS + "', JSONEachRow, '" + structure + "')"
derived = derive_sql("parseDateTime64BestEffortOrNull({}, 6, 'UTC')", "if({0} IS NULL, NULL, splitByChar('@', assumeNotNull({0}))[{1}])", "position({}, '@') > 0", source=raw)
# Functions that differ: a time in one of three forms (the ETL's are the first), Bool casts.
derived = derived.replace('TRY_CAST("device_new" AS BOOLEAN)', "accurateCastOrNull(\"device_new\", 'Bool')").replace('TRY_CAST("nth" AS BIGINT)', "toInt64OrNull(\"nth\")")
derived = derived.replace('"', '`')
settings = " SETTINGS input_format_json_read_bools_as_strings = 1, input_format_json_read_numbers_as_strings = 1"
s.query("CREATE DATABASE IF NOT EXISTS b")
s.query("CREATE TABLE b.e ENGINE = Memory AS " + derived + settings)
s.query("CREATE TABLE b.students ENGINE = Memory AS SELECT * FROM file('" + students + "', Parquet)")
out_events = os.path.join(out, "events")
os.makedirs(out_events, exist_ok=True)
s.query("INSERT INTO FUNCTION file('" + out_events + "/event_date={_partition_id}/data.parquet', Parquet) PARTITION BY event_date SELECT " + ", ".join("`" + c + "`" for c in EVENT_COLUMNS) + " FROM b.e SETTINGS output_format_parquet_compression_method = 'snappy'")
for n in AGGREGATES:
    sql = aggregate_sql(n, "b.students", "concat({}, char(0), {})").replace('"', '`').replace("FROM e GROUP", "FROM b.e GROUP")
    s.query(sql + " INTO OUTFILE '" + os.path.join(out, n + ".parquet") + "' FORMAT Parquet SETTINGS join_use_nulls = 1, output_format_parquet_compression_method = 'snappy'")
"""

DATAFUSION = COMMON + r"""
import datafusion
import pyarrow as pa
ctx = datafusion.SessionContext(datafusion.SessionConfig().with_target_partitions(os.cpu_count() or 2))
types = {c: pa.string() for c in SOURCE_KEYS}
types["device_new"] = pa.bool_()
types["nth"] = pa.int64()
ctx.register_json("raw", EVENTS.replace("part-*.json", ""), schema=pa.schema(list(types.items())), file_extension=".json")
derived = derive_sql("to_timestamp({}, '{}')", "split_part({}, '@', {})", "strpos({}, '@') > 0",
                     cast_bool="{}", cast_int="{}")
# to_timestamp raises on text in another form: the ETL's (and these) are all the first form.
derived = derived.replace("coalesce(to_timestamp(\"at\", '%Y-%m-%d %H:%M:%S'), to_timestamp(\"at\", '%Y-%m-%dT%H:%M:%S'), to_timestamp(\"at\", '%Y-%m-%d%H:%M:%S'))", "to_timestamp(\"at\", '%Y-%m-%d %H:%M:%S')")
ctx.register_table("e", ctx.sql(derived).cache().into_view())
ctx.register_parquet("students", students)
def copy(sql, to, extra=""):
    return lambda: ctx.sql("COPY (" + sql + ") TO '" + to + "' STORED AS PARQUET " + extra).collect()
jobs = [copy("SELECT * FROM e", os.path.join(out, "events") + "/", "PARTITIONED BY (event_date) OPTIONS (execution.keep_partition_by_columns true, format.compression snappy)")]
jobs += [copy(aggregate_sql(n, "students", "({} || chr(0) || {})"), os.path.join(out, n + ".parquet"), "OPTIONS (format.compression snappy)") for n in AGGREGATES]
side_by_side(jobs)
"""

PEERS = {"duckdb": DUCKDB, "polars": POLARS, "chdb": CHDB, "datafusion": DATAFUSION}


def manifest_files(warehouse: Path, table: str) -> list[str]:
    manifest = warehouse / "b" / table / "_symlink_format_manifest" / "manifest"
    return [line.removeprefix("file:") for line in manifest.read_text().splitlines()]


def check_equal(peer: str, peer_out: Path, warehouse: Path):
    """The peer's eight tables hold the function's rows, as sorted row sets."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    for table in TABLES:
        ours = pa.concat_tables(pq.read_table(f) for f in manifest_files(warehouse, table))
        if table == "events":
            files = [str(p) for p in sorted((peer_out / "events").rglob("*.parquet"))]
            got = ds.dataset(files, format="parquet", partitioning=None).to_table()
        else:
            got = pq.read_table(peer_out / f"{table}.parquet")
        got = got.select(ours.column_names)
        got = pa.table([c.cast(f.type) for c, f in zip(got.columns, ours.schema)], schema=ours.schema)
        keys = [(c, "ascending") for c in ours.column_names]
        a, b = ours.sort_by(keys), got.sort_by(keys)
        if a.num_rows != b.num_rows or not a.equals(b):
            diff = next((i for i in range(min(a.num_rows, b.num_rows)) if a.slice(i, 1).to_pylist() != b.slice(i, 1).to_pylist()), 0)
            sys.exit(f"{peer} {table}: {b.num_rows} rows against the function's {a.num_rows}; first differing row {diff}: "
                     f"{b.slice(diff, 1).to_pylist()} against {a.slice(diff, 1).to_pylist()}")
    print(f"{peer}: the eight tables equal the function's", flush=True)


def main():
    if sys.argv[1:2] == ["--check"]:
        return check_equal(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "pdcase-bench")
    ap.add_argument("--deployer", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", nargs="+", default=list(PEERS))
    args = ap.parse_args()
    from etl_duckdb import warm
    from spark_site_events import prepare

    data = args.data / f"b-{args.students}"
    prepare(data, args.students)
    warehouse = data / "wh-peers"
    if not (warehouse / "a" / "students" / "_symlink_format_manifest").exists():
        subprocess.run([args.deployer, "invoke", "etl", "--local", "--source", str(data), "--warehouse",
                        str(warehouse)], check=True, stdout=subprocess.DEVNULL)
    (students,) = [f for f in (warehouse / "a" / "students" / "_symlink_format_manifest" / "manifest")
                   .read_text().replace("file:", "").split()]
    events = sorted((data / "b").glob("part-*.json"))
    size = sum(p.stat().st_size for p in events)
    warm(events)

    def run(tool, out):
        if tool == "function":
            shutil.rmtree(warehouse / "b", ignore_errors=True)
            return measure([args.deployer, "invoke", "site-events", "--local", "--source", str(data),
                            "--warehouse", str(warehouse)])
        return measure([sys.executable, "-c", PEERS[tool], str(data), students, str(out)])

    run("function", None)
    for peer in args.peers:
        out = Path(tempfile.mkdtemp(prefix=f"peers-b-{peer}-"))
        run(peer, out)
        subprocess.run([sys.executable, __file__, "--check", peer, str(out), str(warehouse)], check=True)
        shutil.rmtree(out)

    alternate("function", args.peers, run, args.repeat, "peers-b-",
              f"base b, {args.students:,} students ({size / 1e6:,.0f} MB of NDJSON events)",
              {"students": args.students, "input_mb": round(size / 1e6)})

if __name__ == "__main__":
    main()
