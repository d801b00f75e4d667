"""The Spark job reads the base-a `students` table on EMR (Spark 3.5 on emr-7.5.0), and any
Spark user may read the others: Spark reads every column of what the ETL writes, the
prefix-coded time and id columns included (docs/SEMANTICS.md, "Formats"), as DuckDB reads
it. (Length-coded ids, DELTA_LENGTH_BYTE_ARRAY, failed here: Spark 3.5 misread them past its
first batch of 4,096 values, SPARK-52240.)

Relies on: real PySpark (3.5.2, the Spark of emr-7.5.0, its vectorized Parquet reader on, as
by default) and the real ETL (`deployer invoke etl --local`) on generated data. Not checked
here: Athena's own reader (Trino), which nothing here runs.
"""

import duckdb

from conftest import table_file, SHARED, run
from expected_a import generate


def rows_sorted(rows):
    """Rows in one order whatever the reader's: NULLs first in each column."""
    return sorted(rows, key=lambda r: [(v is not None, v or "") for v in r])


def test_spark_reads_every_column_of_the_etl_parquet_as_duckdb_does(spark, deployer, tmp_path):
    src, expected = generate(SHARED / "bench" / "gen.py", tmp_path / "gen", 3000, 11)
    wh = tmp_path / "wh"
    r = run([deployer, "invoke", "etl", "--local", "--source", src, "--warehouse", wh])
    assert r.returncode == 0, r.stderr
    for table, rows in expected.items():
        path = table_file(wh, table)
        frame = spark.read.parquet(str(path))
        by_spark = [tuple(row) for row in frame.collect()]
        by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()
        assert len(by_spark) == len(rows), table
        assert frame.columns == [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)").fetchall()]
        assert rows_sorted(by_spark) == rows_sorted(by_duckdb), table
        time_column = "StartTime" if table == "sessions" else "Date"
        assert frame.where(f"{time_column} IS NOT NULL").count() > 0, table
        id_column = "Id" if table == "students" else "StudentId"
        assert frame.where(f"{id_column} IS NOT NULL").count() == len(rows), table
