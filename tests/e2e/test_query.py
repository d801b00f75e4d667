"""Issue 14, part 5: `deployer query --stage S "SQL"` on a deployed stage, as its deploy
identity: rows as a table, JSON or CSV; a failed query explained.

Relies on: MiniStack with IAM enforced (CloudFormation, Glue catalog, Athena over DuckDB) and
the patch athena-query-workgroup-arn. README command 1 (tests/e2e/test_local_pipeline.py)
prints its tables through `deployer query` too.
"""
import csv
import io
import json

import pytest

from conftest import messages, ROOT, run

STAGE = "e2equery"


@pytest.fixture(scope="module")
def deployed(deployer, emulator, package):
    emulator.reset()
    env = emulator.env(STAGE)
    r = run([deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"]],
            env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    return env


SQL = "SELECT 1 AS one, CAST(NULL AS VARCHAR) AS nothing, 'a,b \"c\"' AS text"


def query(deployer, env, *args):
    return run([deployer, "query", "--stage", STAGE, *args], env=env, cwd=ROOT, timeout=120)


def test_rows_print_as_a_table_json_and_csv(deployer, deployed):
    r = query(deployer, deployed, SQL)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split(" | ") == ["one", "nothing", "text"]
    assert set(lines[1]) <= {"-", "+"}
    assert lines[2].split(" | ")[0].strip() == "1" and lines[2].endswith('a,b "c"')

    r = query(deployer, deployed, SQL, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1
    assert doc["rows"] == [{"one": "1", "nothing": None, "text": 'a,b "c"'}]

    r = query(deployer, deployed, SQL, "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert list(csv.reader(io.StringIO(r.stdout))) == [["one", "nothing", "text"], ["1", "", 'a,b "c"']]


def test_a_declared_table_without_data_has_no_rows(deployer, deployed):
    r = query(deployer, deployed, "SELECT city, events FROM events_by_city")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "(no rows)"


def test_a_failed_query_says_why_and_what_to_do(deployer, deployed):
    r = query(deployer, deployed, "SELECT * FROM no_such_table")
    assert r.returncode == 1
    lines = messages(r.stderr)
    assert lines[0].startswith("error: query ") and " failed: " in lines[0], lines
    assert "no_such_table" in lines[0].lower(), lines
    assert lines[1].startswith("  to do: check the SQL against the stage's tables (database pdcase_e2equery_warehouse"), lines
