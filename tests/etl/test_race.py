"""Issue 26: two runs of one base started together; a run killed mid-write.

Runs scripts/race.py (the script the figures of docs/BENCHMARKS.md come from) with a few
rounds, within CI's time: base a's ETL and base b's function engine through `deployer invoke
--local`, and base b's Spark job with local PySpark, each into a local warehouse folder. Relies
on the local file system's lock (`flock`) standing for S3's conditional writes (the same
lease code runs against the emulator in tests/e2e/test_runs.py) and on nothing AWS-specific.
"""
import json
import subprocess
import sys

from conftest import ROOT


def race(tmp_path, engines: str, rounds: int) -> list[dict]:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "race.py"), "--rounds", str(rounds), "--engines",
                        engines, "--kill", "--students", "3000", "--work", str(tmp_path)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout[r.stdout.index("\n[") + 1:])


def test_two_etl_and_site_events_runs_at_once_leave_each_base_whole(deployer, tmp_path):
    for result in race(tmp_path, "etl,site-events", 3):
        # Every round: both ran (the second waited for the lease) or one was refused, naming
        # the other; the base whole after them and after a run alone; a killed run's lease
        # freed for the next, which left the base whole and removed the killed run's files.
        assert result["both ran"] + result["one refused"] == result["rounds"], result
        assert result["violations"] == 0 and result["after"] == result["rounds"], result
        assert result["killed mid-write"] and result["after kill"], result


def test_two_spark_jobs_at_once_leave_base_b_whole(deployer, spark, tmp_path):
    (result,) = race(tmp_path, "spark", 1)
    # Run by hand on a local folder, the second job is refused at once (it does not wait).
    assert result["both ran"] + result["one refused"] == 1, result
    assert result["violations"] == 0 and result["after"] == 1, result
    assert result["killed mid-write"] and result["after kill"], result
