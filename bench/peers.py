#!/usr/bin/env python3
"""Base a against what a data engineer would try instead on one machine (issue 29, part 1):
DuckDB, Polars, chDB (ClickHouse in process) and DataFusion, pinned in
bench/requirements-peers.txt, each written the fastest way its documentation allows, each
producing the same four tables as snappy Parquet.

    python3 -m venv ~/.cache/pdcase/bench-peers
    ~/.cache/pdcase/bench-peers/bin/pip install -r bench/requirements-peers.txt
    ~/.cache/pdcase/bench-peers/bin/python bench/peers.py --students 1000000 \\
        --deployer "$CARGO_TARGET_DIR/release/deployer"

How each peer is written (all cores; every peer reads a JSON array on one thread per file, so
the four tables are written side by side, each in its own thread):
- DuckDB: one `COPY (SELECT ...) TO ... (FORMAT parquet)` per table, each on its own cursor.
- Polars: `read_json` with the exports' schema given (no inference), left joins on the ids as
  text, `write_parquet`; one thread per table (Polars releases the GIL).
- chDB: one query per table over `file(..., JSONEachRow)` (which reads a JSON array) with
  `join_use_nulls = 1` (a missing match is NULL, as in SQL), `INTO OUTFILE ... FORMAT Parquet`;
  one thread per table.
- DataFusion: each export as an external table with its schema given and
  `format.newline_delimited false` (a JSON array; range scans off, which it requires), one
  `COPY (SELECT ...) TO ... STORED AS PARQUET` per table, each in its own thread.

Before timing, each peer's tables are checked equal to the ETL's on the same data, row sets
compared (sorted), every column but the ETL's `extra`. What no peer implements (docs/
SEMANTICS.md): the `extra` column (fields outside the contract, kept as JSON), the last
duplicate id of a dimension winning, colliding names (`Id`, `id`), the refusal of bad input
with its file, line and column, the run's report counts, the manifests and markers that make a
publish atomic. On the generated data none of these changes a row.

Runs alternate (ETL, then each peer) `--repeat` times; wall time from the parent, CPU and peak
RSS from the child's rusage; ratios of medians.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLES = ["students", "follows", "sessions", "subscriptions"]

# The exports' columns, each `str` or `int`: every peer gets them (no inference pass, which
# would also read the dates as timestamps in DuckDB and chDB), in its own dialect.
EXPORTS = {
    "students": [("Id", "str"), ("RegisteredDate", "str"), ("State", "str"), ("City", "str"),
                 ("UniversityId", "int"), ("CourseId", "int"), ("SignupSource", "str")],
    "courses": [("Id", "int"), ("Name", "str")],
    "universities": [("Id", "int"), ("Name", "str")],
    "subjects": [("Id", "int"), ("Name", "str")],
    "student_follow_subject": [("StudentId", "str"), ("SubjectId", "int"), ("FollowDate", "str")],
    "sessions": [("StudentId", "str"), ("SessionStartTime", "str"), ("StudentClient", "str")],
    "subscriptions": [("StudentId", "str"), ("PaymentDate", "str"), ("PlanType", "str")],
}

COMMON = f"EXPORTS = {EXPORTS!r}\n" + r"""
import sys, threading
src, out = sys.argv[1] + "/a", sys.argv[2]
def side_by_side(jobs):
    ts = [threading.Thread(target=j) for j in jobs]
    [t.start() for t in ts]
    [t.join() for t in ts]
"""

DUCKDB = COMMON + r"""
import duckdb
con = duckdb.connect()
COLUMNS = {name: "{" + ", ".join(f"{c}: '{'BIGINT' if t == 'int' else 'VARCHAR'}'" for c, t in cols) + "}"
           for name, cols in EXPORTS.items()}
def j(name):
    return f"read_json('{src}/{name}.json', format='array', columns={COLUMNS[name]})"
SQL = {
 "students": f'''SELECT s.Id::VARCHAR AS Id, s.RegisteredDate::VARCHAR AS Date, s.State, s.City,
        u.Name AS University, c.Name AS Course, s.SignupSource
      FROM {j("students")} s
      LEFT JOIN {j("courses")} c ON s.CourseId::VARCHAR = c.Id::VARCHAR
      LEFT JOIN {j("universities")} u ON s.UniversityId::VARCHAR = u.Id::VARCHAR''',
 "follows": f'''SELECT f.StudentId::VARCHAR AS StudentId, sub.Name AS Subject, f.FollowDate::VARCHAR AS Date
      FROM {j("student_follow_subject")} f
      LEFT JOIN {j("subjects")} sub ON f.SubjectId::VARCHAR = sub.Id::VARCHAR''',
 "sessions": f'''SELECT StudentId::VARCHAR AS StudentId, SessionStartTime::VARCHAR AS StartTime,
        StudentClient AS Client FROM {j("sessions")}''',
 "subscriptions": f'''SELECT StudentId::VARCHAR AS StudentId, PaymentDate::VARCHAR AS Date, PlanType AS Type
      FROM {j("subscriptions")}''',
}
def copy(table):
    con.cursor().execute(f"COPY ({SQL[table]}) TO '{out}/{table}.parquet' (FORMAT parquet, COMPRESSION snappy)")
side_by_side([lambda t=t: copy(t) for t in SQL])
"""

POLARS = COMMON + r"""
import polars as pl
S = pl.String
def read(name):
    schema = {c: pl.Int64 if t == "int" else S for c, t in EXPORTS[name]}
    return pl.read_json(f"{src}/{name}.json", schema=schema)
def dim(name):
    return read(name).select(pl.col("Id").cast(S), pl.col("Name"))
def students():
    s = read("students")
    c, u = dim("courses").rename({"Name": "Course"}), dim("universities").rename({"Name": "University"})
    s = (s.with_columns(pl.col("CourseId").cast(S), pl.col("UniversityId").cast(S))
          .join(c, left_on="CourseId", right_on="Id", how="left", maintain_order="left")
          .join(u, left_on="UniversityId", right_on="Id", how="left", maintain_order="left"))
    s.select("Id", pl.col("RegisteredDate").alias("Date"), "State", "City", "University", "Course",
             "SignupSource").write_parquet(f"{out}/students.parquet", compression="snappy")
def follows():
    f = read("student_follow_subject")
    sub = dim("subjects").rename({"Name": "Subject"})
    (f.with_columns(pl.col("SubjectId").cast(S))
      .join(sub, left_on="SubjectId", right_on="Id", how="left", maintain_order="left")
      .select("StudentId", "Subject", pl.col("FollowDate").alias("Date"))
      .write_parquet(f"{out}/follows.parquet", compression="snappy"))
def sessions():
    (read("sessions")
      .select("StudentId", pl.col("SessionStartTime").alias("StartTime"), pl.col("StudentClient").alias("Client"))
      .write_parquet(f"{out}/sessions.parquet", compression="snappy"))
def subscriptions():
    (read("subscriptions")
      .select("StudentId", pl.col("PaymentDate").alias("Date"), pl.col("PlanType").alias("Type"))
      .write_parquet(f"{out}/subscriptions.parquet", compression="snappy"))
side_by_side([students, follows, sessions, subscriptions])
"""

CHDB = COMMON + r"""
import chdb
STRUCTURE = {name: ", ".join(f"{c} Nullable({'Int64' if t == 'int' else 'String'})" for c, t in cols)
             for name, cols in EXPORTS.items()}
def f(name):
    return f"file('{src}/{name}.json', 'JSONEachRow', '{STRUCTURE[name]}')"
SQL = {
 "students": f'''SELECT toString(s.Id) AS Id, s.RegisteredDate AS Date, s.State AS State, s.City AS City,
        u.Name AS University, c.Name AS Course, s.SignupSource AS SignupSource
      FROM {f("students")} AS s
      LEFT JOIN {f("courses")} AS c ON toString(s.CourseId) = toString(c.Id)
      LEFT JOIN {f("universities")} AS u ON toString(s.UniversityId) = toString(u.Id)''',
 "follows": f'''SELECT toString(fo.StudentId) AS StudentId, sub.Name AS Subject, fo.FollowDate AS Date
      FROM {f("student_follow_subject")} AS fo
      LEFT JOIN {f("subjects")} AS sub ON toString(fo.SubjectId) = toString(sub.Id)''',
 "sessions": f'''SELECT toString(StudentId) AS StudentId, SessionStartTime AS StartTime, StudentClient AS Client
      FROM {f("sessions")}''',
 "subscriptions": f'''SELECT toString(StudentId) AS StudentId, PaymentDate AS Date, PlanType AS Type
      FROM {f("subscriptions")}''',
}
SETTINGS = ("SETTINGS join_use_nulls = 1, input_format_json_read_numbers_as_strings = 0, "
            "output_format_parquet_compression_method = 'snappy', output_format_parquet_string_as_string = 1")
def copy(table):
    chdb.query(f"{SQL[table]} INTO OUTFILE '{out}/{table}.parquet' TRUNCATE FORMAT Parquet {SETTINGS}")
side_by_side([lambda t=t: copy(t) for t in SQL])
"""

DATAFUSION = COMMON + r"""
import datafusion
SCHEMAS = {name: ", ".join(f'"{c}" {"BIGINT" if t == "int" else "VARCHAR"}' for c, t in cols)
           for name, cols in EXPORTS.items()}
SQL = {
 "students": '''SELECT s."Id", s."RegisteredDate" AS "Date", s."State", s."City", u."Name" AS "University",
        c."Name" AS "Course", s."SignupSource"
      FROM students s LEFT JOIN courses c ON CAST(s."CourseId" AS VARCHAR) = CAST(c."Id" AS VARCHAR)
      LEFT JOIN universities u ON CAST(s."UniversityId" AS VARCHAR) = CAST(u."Id" AS VARCHAR)''',
 "follows": '''SELECT f."StudentId", sub."Name" AS "Subject", f."FollowDate" AS "Date"
      FROM student_follow_subject f LEFT JOIN subjects sub ON CAST(f."SubjectId" AS VARCHAR) = CAST(sub."Id" AS VARCHAR)''',
 "sessions": 'SELECT "StudentId", "SessionStartTime" AS "StartTime", "StudentClient" AS "Client" FROM sessions',
 "subscriptions": 'SELECT "StudentId", "PaymentDate" AS "Date", "PlanType" AS "Type" FROM subscriptions',
}
def context():
    ctx = datafusion.SessionContext()
    # A JSON array cannot be scanned by byte ranges (DataFusion says so and refuses).
    ctx.sql("SET datafusion.optimizer.repartition_file_scans = false").collect()
    for name, schema in SCHEMAS.items():
        ctx.sql(f"CREATE EXTERNAL TABLE {name} ({schema}) STORED AS JSON LOCATION '{src}/{name}.json' "
                "OPTIONS ('format.newline_delimited' 'false')").collect()
    return ctx
ctx = context()
def copy(table):
    ctx.sql(f"COPY ({SQL[table]}) TO '{out}/{table}.parquet' STORED AS PARQUET "
            "OPTIONS ('format.compression' 'snappy')").collect()
side_by_side([lambda t=t: copy(t) for t in SQL])
"""

PEERS = {"duckdb": DUCKDB, "polars": POLARS, "chdb": CHDB, "datafusion": DATAFUSION}


def measure(cmd):
    """Runs cmd; (wall s, CPU s, peak RSS MiB)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{cmd[:4]} failed:\n{err.read().decode(errors='replace')[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def etl_tables(out: Path) -> dict:
    """The ETL's tables in a local warehouse, through their manifests."""
    found = {}
    for t in TABLES:
        manifest = out / "a" / t / "_symlink_format_manifest" / "manifest"
        found[t] = [line.removeprefix("file:") for line in manifest.read_text().splitlines()]
    return found


def check_equal(peer: str, peer_out: Path, etl_out: Path):
    """The peer's tables hold the ETL's rows (every column but `extra`), as sorted row sets."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for table, files in etl_tables(etl_out).items():
        etl = pa.concat_tables(pq.read_table(f) for f in files)
        etl = etl.drop_columns([c for c in etl.column_names if c == "extra"])
        got = pq.read_table(peer_out / f"{table}.parquet")
        if got.column_names != etl.column_names:
            sys.exit(f"{peer} {table}: columns {got.column_names}, the ETL's {etl.column_names}")
        got = got.cast(etl.schema)
        keys = [(c, "ascending") for c in etl.column_names]
        a, b = etl.sort_by(keys), got.sort_by(keys)
        if a.num_rows != b.num_rows or not a.equals(b):
            diff = next((i for i in range(min(a.num_rows, b.num_rows)) if a.slice(i, 1).to_pylist() != b.slice(i, 1).to_pylist()), None)
            sys.exit(f"{peer} {table}: {b.num_rows} rows against the ETL's {a.num_rows}; first differing row {diff}: "
                     f"{b.slice(diff or 0, 1).to_pylist()} against {a.slice(diff or 0, 1).to_pylist()}")
    print(f"{peer}: tables equal to the ETL's", flush=True)


def alternate(ours: str, peers: list, run, repeat: int, prefix: str, title: str, header: dict):
    """Runs `ours` then each peer, `repeat` times over, each in a fresh output folder; prints
    every run (JSON) and a table of medians with the ratio of ours to each, and to the
    fastest peer."""
    tools = [ours, *peers]
    runs = {t: [] for t in tools}
    for _ in range(repeat):
        for tool in tools:
            out = Path(tempfile.mkdtemp(prefix=f"{prefix}{tool}-"))
            try:
                runs[tool].append(run(tool, out))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    med = {t: (statistics.median(r[0] for r in runs[t]), statistics.median(r[1] for r in runs[t]),
               max(r[2] for r in runs[t])) for t in tools}
    fastest = min(peers, key=lambda p: med[p][0])
    print(json.dumps({**header, "runs": {t: [[round(x, 2) for x in r] for r in runs[t]] for t in tools}}))
    print()
    print(f"{title}, {repeat} alternated runs, medians")
    print(f"| engine | wall s | CPU s | peak RSS MiB | {ours} / engine wall |")
    print("|---|---:|---:|---:|---:|")
    for t in tools:
        w, c, r = med[t]
        print(f"| {t} | {w:.2f} | {c:.2f} | {r:.0f} | {med[ours][0] / w:.2f} |")
    print(f"\nfastest peer: {fastest}; {ours} at {med[ours][0] / med[fastest][0]:.2f}x its wall time")


def main():
    if sys.argv[1:2] == ["--check"]:
        # In a process of its own: pyarrow's memory must not count in the runs' peak RSS (a
        # child's ru_maxrss starts from what it shares with its parent).
        return check_equal(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=1_000_000)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "pdcase-bench")
    ap.add_argument("--deployer", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", nargs="+", default=list(PEERS))
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from etl_duckdb import dataset, warm

    src = dataset(args.data, args.students)
    size = sum(f.stat().st_size for f in (src / "a").iterdir())
    warm((src / "a").iterdir())

    def run(tool, out):
        if tool == "etl":
            return measure([args.deployer, "invoke", "etl", "--local", "--source", str(src), "--warehouse", str(out)])
        return measure([sys.executable, "-c", PEERS[tool], str(src), str(out)])

    # Equal first: each peer's output against the ETL's, on this very data.
    etl_out = Path(tempfile.mkdtemp(prefix="peers-etl-"))
    run("etl", etl_out)
    for peer in args.peers:
        out = Path(tempfile.mkdtemp(prefix=f"peers-{peer}-"))
        run(peer, out)
        subprocess.run([sys.executable, __file__, "--check", peer, str(out), str(etl_out)], check=True)
        shutil.rmtree(out)
    shutil.rmtree(etl_out)

    alternate("etl", args.peers, run, args.repeat, "peers-",
              f"base a, {args.students:,} students ({size / 1e6:,.0f} MB of JSON arrays)",
              {"students": args.students, "input_mb": round(size / 1e6)})

if __name__ == "__main__":
    main()
