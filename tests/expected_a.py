"""The base-a transformation of SYSTEM.md in plain Python: the independent expectation the
ETL's output is checked against (dicts keep insertion order, as JS objects do)."""

import json
import subprocess
import sys
from pathlib import Path

ENTITIES = ["courses", "universities", "subjects", "students", "student_follow_subject", "sessions", "subscriptions"]


def generate(gen: Path, out: Path, students: int, seed: int):
    """Base-a exports from ../shared/bench/gen.py in `out`, and the tables expected of them."""
    subprocess.run([sys.executable, str(gen), "--students", str(students), "--out", str(out),
                    "--only", "a", "--seed", str(seed)], check=True, capture_output=True)
    inputs = {e: json.loads((out / "a" / f"{e}.json").read_text()) for e in ENTITIES}
    return out, tables(inputs)


def text_key(v):
    """A join key's text form (`"1"` matches `1`); None for null (no match)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ValueError(f"not a key: {v!r}")
    return str(v)


def index(rows):
    out = {}
    for r in rows:
        out[text_key(r["Id"])] = r  # the last duplicate wins
    return out


def merged(row, dim_row, as_name, others=False, key=None):
    """docs/SEMANTICS.md, "Joins" and "Colliding names": the dimension's `Name` as `as_name`,
    with `others` its fields but `Id` (and but the row's `key`), in the record's order; a name
    already in the row keeps its place and takes the later value (dict assignment, as a JS
    object)."""
    if dim_row is None:
        return
    for k, v in dim_row.items():
        if k == "Name":
            row[as_name] = v
        elif others and k not in ("Id", key):
            row[k] = v


def students(students, courses, universities):
    c, u = index(courses), index(universities)
    out = []
    for s in students:
        row = {}
        for k, v in s.items():
            if k == "CourseId":
                merged(row, c.get(text_key(v)), "Course")
            elif k == "UniversityId":
                merged(row, u.get(text_key(v)), "University")
            elif k == "RegisteredDate":
                row["Date"] = v
            else:
                row[k] = v
        out.append(row)
    return out


def follows(follows, subjects):
    idx = index(subjects)
    out = []
    for f in follows:
        row = {}
        for k, v in f.items():
            if k == "SubjectId":
                merged(row, idx.get(text_key(v)), "Subject", others=True, key="StudentId")
            elif k == "FollowDate":
                row["Date"] = v
            else:
                row[k] = v
        out.append(row)
    return out


def picked(rows, names):
    out = []
    for r in rows:
        row = {"StudentId": r["StudentId"]}
        for src, dst in names:
            if src in r:
                row[dst] = r[src]
        out.append(row)
    return out


def tables(inputs: dict) -> dict:
    """{table: rows} from {entity: rows} (the seven exports)."""
    return {
        "students": students(inputs["students"], inputs["courses"], inputs["universities"]),
        "follows": follows(inputs["student_follow_subject"], inputs["subjects"]),
        "sessions": picked(inputs["sessions"], [("SessionStartTime", "StartTime"), ("StudentClient", "Client")]),
        "subscriptions": picked(inputs["subscriptions"], [("PaymentDate", "Date"), ("PlanType", "Type")]),
    }


CONTRACT = {
    "students": ["Id", "Date", "State", "City", "University", "Course", "SignupSource"],
    "follows": ["StudentId", "Subject", "Date"],
    "sessions": ["StudentId", "StartTime", "Client"],
    "subscriptions": ["StudentId", "Date", "Type"],
}


def as_columns(table: str, row: dict) -> tuple:
    """A row as the Parquet table holds it: contract columns as text, then `extra`."""
    import json

    def text(v):
        if v is None or isinstance(v, str):
            return v
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

    cols = tuple(text(row.get(c)) for c in CONTRACT[table])
    if table in ("students", "follows"):
        rest = {k: v for k, v in row.items() if k not in CONTRACT[table]}
        cols += (json.dumps(rest, separators=(",", ":"), ensure_ascii=False) if rest else None,)
    return cols
