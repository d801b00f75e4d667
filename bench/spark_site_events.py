#!/usr/bin/env python3
"""The base-b Spark job against the original plan, on the same generated data, in local[2].

    python bench/spark_site_events.py --students 100000 --data /tmp/bench-b   # with the venv's python

The original plan (SYSTEM.md): one scan of the events JSON per output table, JSON output. The
schema is inferred (the original passed none), and the original's code is not at hand, so it is
measured both ways it could have been written, in the same run:

- `original`: each table reads the events with `spark.read.json` again (inference + scan per
  table: 16 passes over the JSON);
- `original-one-read`: one `spark.read.json` (one inference pass), then one scan per table as
  each write re-evaluates the DataFrame (9 passes).

Each renames, splits `studentId_clientType` with `split(...)[1]`, joins the students and writes
JSON. This job: one scan with an explicit schema, Parquet output, aggregates from the staged
events. `floor` only parses every event and writes it as Parquet: what any job that must
publish the events table pays at least, so `original / floor` bounds the reachable ratio.
All read the same students table (Parquet) and run in a fresh JVM with the same
settings; wall time is measured around each whole process.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GEN = ROOT.parent / "shared" / "bench" / "gen.py"
JOB = ROOT / "crates" / "etl" / "spark" / "site_events.py"

SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "6g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def session(name):
    from pyspark.sql import SparkSession

    b = SparkSession.builder.appName(name)
    for k, v in SPARK_CONF.items():
        b = b.config(k, v)
    s = b.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    return s


RENAMES = {
    "Page Name": "page_name", "Page Category": "page_category", "Page Category 1": "page_category_1",
    "Page Category 2": "page_category_2", "Page Category 3": "page_category_3",
    "Last Accessed Url": "last_accessed_url", "first-accessed-page": "first_accessed_page",
}


def original_tables(load, students, output):
    """The original's eight tables, each from `load()` (the events as one DataFrame)."""
    from pyspark.sql import functions as F

    def with_students():
        s = load().sparkSession.read.parquet(students).select(
            F.col("Id").alias("student_id"), F.col("City").alias("city"), F.col("State").alias("state"))
        return load().join(s, "student_id")

    def write(df, folder):
        df.write.mode("overwrite").json(f"{output}/{folder}")

    write(load(), "events")
    write(with_students().groupBy("city").agg(F.count("*").alias("events")), "events-by-city")
    write(with_students().groupBy("state").agg(F.count("*").alias("events")), "events-by-state")
    write(load().groupBy("marketing_source", "marketing_medium", "marketing_campaign").agg(F.count("*").alias("sessions")),
          "sessions-by-campaign")
    write(load().groupBy("page_name").agg(F.count("*").alias("visits")), "events-by-pagename")
    write(load().groupBy("client_type").agg(F.count("*").alias("events")), "events-by-client-type")
    write(load().groupBy("custom_1").agg(F.count("*").alias("events")), "events-by-university")
    write(load().groupBy("custom_2").agg(F.count("*").alias("events")), "events-by-course")


def original(events, students, output, one_read=False):
    from pyspark.sql import functions as F

    spark = session("original-plan")

    def read():
        df = spark.read.json(events)
        for old, new in RENAMES.items():
            df = df.withColumnRenamed(old, new)
        parts = F.split(F.col("studentId_clientType"), "@")
        return df.withColumn("student_id", parts[0]).withColumn("client_type", parts[1])

    if one_read:
        once = read()
        original_tables(lambda: once, students, output)
    else:
        original_tables(read, students, output)
    spark.stop()


def job(events, students, output, job_file=JOB):
    import importlib.util
    import logging

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    spec = importlib.util.spec_from_file_location("site_events", job_file)
    site_events = importlib.util.module_from_spec(spec)
    sys.modules["site_events"] = site_events  # dataclasses look their module up there
    spec.loader.exec_module(site_events)

    spark = session("site-events")
    site_events.run(spark, site_events.parse_args(["--events", events, "--students", students, "--output", output]))
    spark.stop()


def floor(events, output):
    """A lower bound for any job of this shape: parse every event with the job's schema and write
    them as Parquet, nothing else (no derived columns, report, aggregates or publishing)."""
    sys.path.insert(0, str(JOB.parent))
    import site_events

    spark = session("floor")
    spark.conf.set("spark.sql.parquet.compression.codec", "zstd")
    spark.read.schema(site_events.SOURCE_SCHEMA).json(events).write.mode("overwrite").parquet(output)
    spark.stop()


PLANS = ["original", "original-one-read", "floor", "job"]


def prepare(data: Path, n: int):
    if not (data / "b").exists():
        subprocess.run([sys.executable, str(GEN), "--students", str(n), "--out", str(data), "--jobs", "2"], check=True)
    students = data / "students.parquet"
    if not students.exists():
        spark = session("prepare")
        spark.read.json(str(data / "a" / "students.json"), multiLine=True).write.parquet(str(students))
        spark.stop()
    return str(data / "b"), str(students)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=100_000)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", choices=PLANS + ["job-before"], help=argparse.SUPPRESS)
    ap.add_argument("--plans", default=",".join(PLANS),
                    help="comma-separated plans to run, in order (default: all); `job-before` runs --before")
    ap.add_argument("--before", type=Path,
                    help="another version of site_events.py (e.g. `git show HEAD~1:crates/etl/spark/site_events.py`) "
                         "to run as plan `job-before`, to compare two versions of the job in one run")
    args = ap.parse_args()
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    events, students = prepare(args.data, args.students)
    if args.run:
        out = str(args.data / f"out-{args.run}")
        if args.run == "job":
            job(events, students, out)
        elif args.run == "job-before":
            job(events, students, out, args.before)
        elif args.run == "floor":
            floor(events, out)
        else:
            original(events, students, out, one_read=args.run == "original-one-read")
        return
    lines = sum(1 for p in Path(events).glob("part-*.json") for _ in open(p, "rb"))
    print(f"{args.students} students, {lines} events, {du(Path(events)) / 1e6:.0f} MB of NDJSON, local[2]")
    times = {}
    plans = args.plans.split(",")
    if "job-before" in plans and not args.before:
        ap.error("plan job-before needs --before FILE")
    for plan in plans:
        start = time.perf_counter()
        extra = ["--before", str(args.before)] if plan == "job-before" else []
        subprocess.run([sys.executable, __file__, "--students", str(args.students), "--data", str(args.data),
                        "--run", plan, *extra], check=True)
        times[plan] = time.perf_counter() - start
        size = du(args.data / f"out-{plan}")
        print(f"{plan:<17} {times[plan]:7.1f} s   output {size / 1e6:7.1f} MB", flush=True)
    for plan in ("original", "original-one-read"):
        if plan in times and "job" in times and "floor" in times:
            print(f"speed-up: {times[plan] / times['job']:.2f}x ({plan} / job); "
                  f"at most {times[plan] / times['floor']:.2f}x for any job that parses and writes every event")
    if "job-before" in times and "job" in times:
        print(f"job / job-before: {times['job'] / times['job-before']:.3f}")


if __name__ == "__main__":
    main()
