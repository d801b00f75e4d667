"""README command 1 (`scripts/local-pipeline`), as CI runs it: the whole pipeline on this
machine. The wrapper's installs and builds are what scripts/test already did; this runs the
pipeline script itself with the same pieces.

Relies on: MiniStack (CloudFormation, Lambda, SNS, S3, Glue catalog, Athena via DuckDB) and
local PySpark for the Spark job (EMR is metadata only in the emulator).
"""
import subprocess
import sys

from conftest import ROOT


def test_the_local_pipeline_runs_end_to_end_and_prints_both_bases(deployer, package, tmp_path):
    venv = subprocess.run([str(ROOT / "scripts" / "setup-emulator")], capture_output=True, text=True, check=True).stdout.strip()
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "local_pipeline.py"), "--deployer", str(deployer),
         "--bootstrap", package["lambda"]["bootstrap"], "--emulator-venv", venv, "--state", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "ETL run " in out and "published students, follows, sessions, subscriptions" in out
    # The students table, joined as the reference says (student 3 has no course or university).
    assert "1  | 2019-01-01 11:00:00.000 | Rio de Janeiro | Rio de Janeiro | University 1 | Course 1 | Facebook" in out
    assert "3  | 2019-01-03 11:00:00.000 | Rio de Janeiro | Rio de Janeiro |              |          | Google" in out
    # Base b, written by the Spark job and read through Athena.
    assert "Rio de Janeiro | 4" in out
    assert "Website     | 3" in out
    assert "teardown --stage alice --yes" in out
