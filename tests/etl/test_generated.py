"""The ETL (`deployer invoke etl --local`) on generated data with its dirt (unmatched and null
keys, orphans, accented names, null fields), against the plain-Python expectation.

Relies on: the local-folder storage, the release-equivalent code path (debug build), and
DuckDB (PyPI) to read the Parquet back.
"""
import json

import duckdb
import pytest

from conftest import table_file, SHARED, run
from expected_a import CONTRACT, as_columns, generate



@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate(SHARED / "bench" / "gen.py", tmp_path_factory.mktemp("gen"), 3000, 7)


def test_ndjson_output_equals_the_expectation_row_for_row(deployer, generated, tmp_path):
    src, expected = generated
    r = run([deployer, "invoke", "etl", "--local", "--source", src, "--warehouse", tmp_path, "--table-format", "ndjson"])
    assert r.returncode == 0, r.stderr
    for table, rows in expected.items():
        lines = table_file(tmp_path, table).read_text().splitlines()
        got = [json.loads(line) for line in lines]
        assert len(got) == len(rows), table
        for i, (g, e) in enumerate(zip(got, rows)):
            assert list(g.items()) == list(e.items()), f"{table} row {i}"


def test_parquet_output_equals_the_expectation_and_a_rerun_adds_nothing(deployer, generated, tmp_path):
    src, expected = generated
    for _ in range(2):
        r = run([deployer, "invoke", "etl", "--local", "--source", src, "--warehouse", tmp_path])
        assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {t["table"]: t["rows"] for t in report["tables"]} == {t: len(rows) for t, rows in expected.items()}
    for table, rows in expected.items():
        # What a reader of the table sees: the file its manifest names, one run's; the first
        # run's file is still in the folder, for the queries that read it.
        path = table_file(tmp_path, table)
        runs = sorted(p.name for p in (tmp_path / "a" / table).iterdir() if p.name.startswith("run="))
        assert len(runs) == 2 and path.parent.name == f"run={report['run']}", (runs, path)
        got = duckdb.sql(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()
        want = [as_columns(table, row) for row in rows]
        assert got == want, table
        cols = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()]
        assert cols[: len(CONTRACT[table])] == CONTRACT[table]
