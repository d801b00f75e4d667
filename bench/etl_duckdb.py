#!/usr/bin/env python3
"""Benchmark: the Rust ETL against DuckDB producing the same four base-a tables as Parquet.

    python bench/etl_duckdb.py --students 100000 1000000 [--data DIR] [--deployer BIN]

Data comes from ../shared/bench/gen.py (generated once per size under --data). Each tool runs
as its own process, the two alternating, in the same run: wall time from the parent, peak
RSS from the child's rusage (ru_maxrss; the largest of the runs). The ratio is the median of
each pair's ratio. DuckDB gets the same joins written as a user would
write them (read_json over the arrays, left joins on the ids' text, snappy Parquet); it is not
asked to keep input order or to let the last duplicate id win, which the ETL does.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PDCASE_SHARED", ROOT.parent / "shared"))

DUCKDB_SCRIPT = r"""
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
def j(name):
    return f"read_json('{src}/a/{name}.json', format='array')"
def copy(sql, table):
    con.execute(f"COPY ({sql}) TO '{out}/{table}.parquet' (FORMAT parquet, COMPRESSION snappy)")
copy(f'''SELECT s.Id::VARCHAR AS Id, s.RegisteredDate::VARCHAR AS Date, s.State, s.City,
                u.Name AS University, c.Name AS Course, s.SignupSource
         FROM {j("students")} s
         LEFT JOIN {j("courses")} c ON s.CourseId::VARCHAR = c.Id::VARCHAR
         LEFT JOIN {j("universities")} u ON s.UniversityId::VARCHAR = u.Id::VARCHAR''', "students")
copy(f'''SELECT f.StudentId::VARCHAR AS StudentId, sub.Name AS Subject, f.FollowDate::VARCHAR AS Date
         FROM {j("student_follow_subject")} f
         LEFT JOIN {j("subjects")} sub ON f.SubjectId::VARCHAR = sub.Id::VARCHAR''', "follows")
copy(f'''SELECT StudentId::VARCHAR AS StudentId, SessionStartTime::VARCHAR AS StartTime,
                StudentClient AS Client FROM {j("sessions")}''', "sessions")
copy(f'''SELECT StudentId::VARCHAR AS StudentId, PaymentDate::VARCHAR AS Date, PlanType AS Type
         FROM {j("subscriptions")}''', "subscriptions")
"""


def measure(cmd):
    """Runs cmd; (wall seconds, peak RSS MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed:\n{err}")
    return wall, usage.ru_maxrss / 1024


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def warm(paths):
    """Reads each file once, so that no timed run reads it from disk (the benches' inputs fit
    in this machine's page cache)."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def dataset(data: Path, n: int) -> Path:
    d = data / f"students-{n}"
    if not (d / "a" / "students.json").exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen.py"), "--students", str(n),
                        "--out", str(d), "--only", "a", "--jobs", "2"], check=True,
                       stdout=subprocess.DEVNULL)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "pdcase-bench")
    ap.add_argument("--deployer", default=os.environ.get("DEPLOYER_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/pdcase/target")) / "release/deployer"))
    ap.add_argument("--repeat", type=int, default=3, help="pairs of runs; medians are reported")
    args = ap.parse_args()
    import duckdb  # noqa: F401  (fail early when the venv lacks it)

    rows = []
    for n in args.students:
        src = dataset(args.data, n)
        size = sum(f.stat().st_size for f in (src / "a").iterdir()) / 2**20
        # The tools alternate, ETL then DuckDB, `repeat` times: a slow spell of the machine
        # then slows both runs of a pair rather than all the runs of one tool. The ratio
        # reported is the median of the pairs' ratios; times are medians, RSS the largest.
        warm((src / "a").iterdir())
        runs = {"etl": [], "duckdb": []}
        for _ in range(args.repeat):
            for tool in ("etl", "duckdb"):
                out = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-"))
                try:
                    if tool == "etl":
                        cmd = [args.deployer, "invoke", "etl", "--local", "--source", str(src),
                               "--warehouse", str(out)]
                    else:
                        cmd = [sys.executable, "-c", DUCKDB_SCRIPT, str(src), str(out)]
                    runs[tool].append(measure(cmd))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
        ratios = sorted(e[0] / d[0] for e, d in zip(runs["etl"], runs["duckdb"]))
        ew, er = median(r[0] for r in runs["etl"]), max(r[1] for r in runs["etl"])
        dw, dr = median(r[0] for r in runs["duckdb"]), max(r[1] for r in runs["duckdb"])
        rows.append(dict(students=n, input_mib=round(size), etl_s=round(ew, 2), etl_rss_mib=round(er),
                         duckdb_s=round(dw, 2), duckdb_rss_mib=round(dr),
                         time_ratio=round(median(ratios), 3),
                         pair_ratios=[round(r, 3) for r in ratios]))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print("| students | input MiB | ETL s | ETL peak RSS MiB | DuckDB s | DuckDB peak RSS MiB | ETL/DuckDB time |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['students']:,} | {r['input_mib']} | {r['etl_s']} | {r['etl_rss_mib']} | {r['duckdb_s']} | "
              f"{r['duckdb_rss_mib']} | {r['time_ratio']} |")


if __name__ == "__main__":
    main()
