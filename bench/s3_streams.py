#!/usr/bin/env python3
"""What one process reads from the local S3 stand-in (MiniStack, TLS and IAM on, as the tests
start it) with 1, 2, 4 and 8 ranged GETs of one object side by side (issue 29, part 4: a
span is one ranged `GetObject`, so a function reading several spans reads several streams).

    "$(scripts/setup-python)/bin/python" bench/s3_streams.py --mb 256 --repeat 3

Each round reads the whole object once per stream count, alternated; MB/s is the object's size
over the wall time of the slowest stream. With `--etl`, each round also reads it through the
ETL's own span reader (`crates/etl/src/storage/prefetch.rs`, the release example `span_read`)
with each count of ranged GETs in flight, one reader, as one span of a run reads. This measures the emulator (one Python process), not
S3: S3's own figure for one connection is what the issue cites (about 80 MB/s from a Lambda
function), and S3's guide says parallel byte-range fetches raise a client's throughput ("Use
Byte-Range Fetches", Amazon S3 performance guidelines).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import start_emulator  # noqa: E402


def read_ranges(s3, bucket, key, size, streams):
    bounds = [size * i // streams for i in range(streams + 1)]
    errors = []

    def one(start, end):
        try:
            body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
            n = 0
            while chunk := body.read(1 << 20):
                n += len(chunk)
            assert n == end - start, (n, end - start)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(a, b)) for a, b in zip(bounds, bounds[1:])]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--etl", help="the release `span_read` example binary: time the ETL's reader too")
    ap.add_argument("--depths", type=int, nargs="+", default=[0, 1, 2, 4, 8],
                    help="with --etl: ranged GETs in flight (0: one GET streamed)")
    args = ap.parse_args()
    em = start_emulator(Path(tempfile.mkdtemp(prefix="s3-streams-")))
    try:
        s3 = em.client("s3")
        s3.create_bucket(Bucket="streams")
        size = args.mb << 20
        path = Path(tempfile.mkdtemp()) / "object"
        path.write_bytes(os.urandom(size))
        s3.upload_file(str(path), "streams", "object")
        path.unlink()
        times = {n: [] for n in args.streams}
        etl = {n: [] for n in args.depths}
        for _ in range(args.repeat):
            for n in args.streams:
                times[n].append(read_ranges(s3, "streams", "object", size, n))
            for n in args.depths if args.etl else []:
                out = subprocess.run([args.etl, "streams", "object", str(size), str(n)], env=em.env(),
                                     capture_output=True, text=True, check=True)
                etl[n].append(float(out.stdout))
        print(f"{args.mb} MiB object, {args.repeat} alternated rounds, medians")
        print("| ranged GETs side by side | wall s | MB/s | each round (s) |")
        print("|---:|---:|---:|---|")
        for n in args.streams:
            m = statistics.median(times[n])
            print(f"| {n} | {m:.2f} | {size / 1e6 / m:.0f} | {', '.join(f'{t:.2f}' for t in times[n])} |")
        if args.etl:
            print("\nThe ETL's span reader, one reader, this many ranged GETs of 8 MiB in flight "
                  "(0: one GET streamed, the reader before stop 36):")
            print("| in flight | wall s | MB/s | each round (s) |")
            print("|---:|---:|---:|---|")
            for n in args.depths:
                m = statistics.median(etl[n])
                print(f"| {n} | {m:.2f} | {size / 1e6 / m:.0f} | {', '.join(f'{t:.2f}' for t in etl[n])} |")
    finally:
        em.stop()


if __name__ == "__main__":
    main()
