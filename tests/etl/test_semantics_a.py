"""Base a on exports built for docs/SEMANTICS.md's rules ("Joins", "Colliding names"): the ETL
(`deployer invoke etl --local`) against the plain-Python expectation of tests/expected_a.py.

Relies on: the local-folder storage and DuckDB (PyPI) to read the Parquet back.
"""
import json

import duckdb
import pytest

from conftest import table_file, run
from expected_a import ENTITIES, as_columns, tables

# Dimensions with fields beyond Id and Name, some named as the facts' fields; facts whose own
# fields collide with renamed and joined ones, in both orders, and a repeated key.
EXPORTS = {
    "courses": [
        {"Id": 1, "Area": "Exatas", "Name": "Math", "Course": "shadow", "Date": "course date"},
        {"Id": 2, "Name": "Law", "University": "not the student's"},
    ],
    "universities": [{"Id": "1", "Name": "UFRJ", "City": "not the student's", "State": "XX"}],
    "subjects": [
        {"Id": 1, "Area": "Exatas", "Name": "Algebra", "StudentId": "not a student", "Date": "subject date"},
        {"Id": 2, "Name": "Civil Law", "Level": 3, "Subject": "own name field"},
    ],
    "students": [
        {"Id": "1", "Course": "own, before", "CourseId": 1, "Date": "own, before", "RegisteredDate": "2019",
         "UniversityId": 1, "City": "Rio", "State": "RJ"},
        {"Id": "2", "CourseId": 2, "Course": "own, after", "RegisteredDate": "2019", "Date": "own, after",
         "University": "own", "UniversityId": "1"},
        {"Id": "3", "Nick": "a", "Id": "4", "CourseId": 99},
    ],
    "student_follow_subject": [
        {"StudentId": "1", "SubjectId": 1, "FollowDate": "2019-01-01"},
        {"FollowDate": "2019-02-02", "SubjectId": 1, "StudentId": "2"},
        {"StudentId": "3", "SubjectId": 2, "FollowDate": "2019-03-03"},
    ],
    "sessions": [{"StudentId": "1", "SessionStartTime": "t", "StudentClient": "Web", "Extra": 1}],
    "subscriptions": [{"StudentId": "1", "PaymentDate": "d", "PlanType": "Anual", "PlanType ": "x"}],
}


def write_exports(folder):
    (folder / "a").mkdir(parents=True)
    for entity in ENTITIES:
        text = json.dumps(EXPORTS[entity])
        if entity == "students":
            # A repeated key, which json.dumps of a dict cannot write.
            text = text.replace('"Id": "3", "Nick": "a"', '"Id": "3", "Nick": "a", "Id": "4"', 1)
        (folder / "a" / f"{entity}.json").write_text(text)
    inputs = {e: json.loads((folder / "a" / f"{e}.json").read_text()) for e in ENTITIES}
    return tables(inputs)


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_joins_and_colliding_names_match_the_expectation(deployer, tmp_path, fmt):
    expected = write_exports(tmp_path / "src")
    wh = tmp_path / "wh"
    r = run([deployer, "invoke", "etl", "--local", "--source", tmp_path / "src", "--warehouse", wh, "--table-format", fmt])
    assert r.returncode == 0, r.stderr
    # The rules, seen in the expectation itself, so that a wrong expectation fails too.
    students = expected["students"]
    assert students[0] == {"Id": "1", "Course": "Math", "Date": "2019", "University": "UFRJ", "City": "Rio", "State": "RJ"}
    assert students[1]["Course"] == "own, after" and students[1]["University"] == "UFRJ"
    assert students[2] == {"Id": "4", "Nick": "a"}
    assert expected["follows"][1]["StudentId"] == "2" and expected["follows"][1]["Date"] == "subject date"
    assert expected["follows"][2]["Subject"] == "own name field" and expected["follows"][2]["Level"] == 3
    for table, rows in expected.items():
        if fmt == "ndjson":
            lines = table_file(wh, table).read_text().splitlines()
            # Pairs as written, so a name written twice would show (a dict would hide it).
            got = [json.loads(line, object_pairs_hook=list) for line in lines]
            assert got == [list(row.items()) for row in rows], table
        else:
            got = duckdb.sql(f"SELECT * FROM read_parquet('{table_file(wh, table)}', hive_partitioning = false)").fetchall()
            assert got == [as_columns(table, row) for row in rows], table
