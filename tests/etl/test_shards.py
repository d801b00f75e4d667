"""Base a with each export cut into spans (`deployer invoke etl --local --shards N`, issue 29),
read by one process's threads (`--engine function`) or as the sharded protocol (`--engine
sharded`: a plan, one worker per span writing its part and a report, a publisher reading the
reports): the same tables row for row in the same order, and the same refusal (file, line,
column, record), as the export read whole (`--shards 1`), with spans small enough that their
boundaries fall on every record: inside a record, inside a string, on the last byte.

Relies on: the local-folder storage, the debug build of the deployer, and DuckDB (PyPI) to read
the Parquet parts back in their manifest's order.
"""
import json
import shutil

import duckdb
import pytest

from conftest import SHARED, run
from expected_a import ENTITIES, generate

TABLES = ["students", "follows", "sessions", "subscriptions"]


def table_parts(warehouse, table):
    """The files a table's manifest names, in its order (the rows' order)."""
    manifest = warehouse / "a" / table / "_symlink_format_manifest" / "manifest"
    return [line[len("file:"):] for line in manifest.read_text().splitlines()]


ENGINES = ["function", "sharded"]


def etl(deployer, src, wh, shards, fmt="ndjson", engine="function"):
    return run([deployer, "invoke", "etl", "--source", src, "--warehouse", wh, "--table-format", fmt,
                "--shards", str(shards), "--engine", engine])


def ndjson_tables(wh):
    """Each table's lines, its parts concatenated in the manifest's order, and its part count."""
    out = {}
    for t in TABLES:
        parts = table_parts(wh, t)
        out[t] = ("".join(open(p).read() for p in parts), len(parts))
    return out


def spans_equal_whole(deployer, src, tmp_path, shard_counts, fmt="ndjson", engine="function"):
    """Runs whole (one process, each export whole) and with each shard count on `engine`;
    asserts the tables are equal; returns the largest part count seen per table (so a test
    can say it split)."""
    whole = tmp_path / "whole"
    r = etl(deployer, src, whole, 1, fmt)
    assert r.returncode == 0, r.stderr
    expected = read_tables(whole, fmt)
    most = {t: 1 for t in TABLES}
    for n in shard_counts:
        wh = tmp_path / f"shards-{n}"
        r = etl(deployer, src, wh, n, fmt, engine)
        assert r.returncode == 0, r.stderr
        assert not (wh / "a" / "_runs" / report_run(r)).exists(), "a sharded run's plan and reports are removed"
        report = json.loads(r.stdout)
        got = read_tables(wh, fmt)
        for t in TABLES:
            assert got[t][0] == expected[t][0], f"{t} with --shards {n}"
            most[t] = max(most[t], got[t][1])
        rows = {t["table"]: t["rows"] for t in report["tables"]}
        assert rows == {t: len(expected[t][0]) if fmt == "parquet" else expected[t][0].count("\n") for t in TABLES}
        shutil.rmtree(wh)
    return most


def report_run(r):
    return json.loads(r.stdout)["run"]


def read_tables(wh, fmt):
    if fmt == "ndjson":
        return ndjson_tables(wh)
    out = {}
    for t in TABLES:
        parts = table_parts(wh, t)
        files = ", ".join(f"'{p}'" for p in parts)
        # file_row_number and filename keep each part's own order; parts in manifest order.
        order = {p: i for i, p in enumerate(parts)}
        rows = duckdb.sql(f"SELECT * EXCLUDE (filename, file_row_number), filename, file_row_number "
                          f"FROM read_parquet([{files}], filename = true, file_row_number = true, "
                          f"hive_partitioning = false)").fetchall()
        rows.sort(key=lambda r: (order[r[-2]], r[-1]))
        out[t] = ([r[:-2] for r in rows], len(parts))
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_the_reference_fixtures_give_the_same_tables_at_every_cut(deployer, tmp_path, engine):
    src = SHARED / "fixtures" / "reference" / "inputs"
    size = max(p.stat().st_size for p in (src / "a").glob("*.json"))
    most = spans_equal_whole(deployer, src, tmp_path, [2, 3, 7, size], engine=engine)
    # A span per record: each table has as many parts as the reference has records.
    assert most == {"students": 3, "follows": 4, "sessions": 3, "subscriptions": 4}, most


@pytest.mark.parametrize("fmt,engine", [("ndjson", "function"), ("parquet", "function"), ("parquet", "sharded")])
def test_generated_data_gives_the_same_tables_split_or_whole(deployer, tmp_path, fmt, engine):
    src, _ = generate(SHARED / "bench" / "gen.py", tmp_path / "gen", 400, 11)
    most = spans_equal_whole(deployer, src, tmp_path, [2, 5, 3000], fmt, engine)
    assert all(n > 100 for n in most.values()), most


def pretty(rows):
    return json.dumps(rows, indent=2, ensure_ascii=False)


def exports_with(tmp_path, name, text):
    """The reference exports with `name` replaced by `text` (bytes or str)."""
    src = tmp_path / name.replace(".json", "")
    shutil.copytree(SHARED / "fixtures" / "reference" / "inputs", src)
    data = text.encode() if isinstance(text, str) else text
    (src / "a" / name).write_bytes(data)
    return src


SESSIONS = [{"StudentId": str(i), "SessionStartTime": f"2019-01-01 00:00:{i:02}", "StudentClient": "Web, \"app\""}
            for i in range(12)]


def refusals():
    """(export, bytes) pairs each refused, with the fault in the middle and at the ends."""
    good = pretty(SESSIONS)
    middle = good.index('"StudentId": "6"')
    last = good.rindex('"StudentId"')
    return {
        "malformed in the middle": ("sessions.json", good[:middle] + '"StudentId" "6"' + good[middle + 16:]),
        "a record that is not an object": ("sessions.json", good[:middle - 6] + "7,\n  " + good[middle - 6:]),
        "invalid UTF-8 in the middle": ("sessions.json", good[:middle].encode() + b'"X": "\xff",' + good[middle:].encode()),
        "missing key in the last record": ("sessions.json", good[:last] + '"Student"' + good[last + 11:]),
        "a null key in the middle": ("students.json", pretty([{"Id": "1"}, {"Id": None}, {"Id": "3"}])),
        "trailing comma": ("sessions.json", good[:-2] + ",\n]"),
        "content after the array": ("sessions.json", good + "\n  ,\n  {}"),
        "cut short inside a record": ("sessions.json", good[:last + 8]),
        "cut character at the end": ("sessions.json", good.encode()[:-2] + b"\xc3"),
        "a missing comma between records": ("sessions.json", good[:middle - 6].rstrip()[:-1] + "\n  " + good[middle - 6:]),
    }


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", list(refusals()))
def test_a_bad_export_is_refused_alike_at_every_cut(deployer, tmp_path, case, engine):
    name, text = refusals()[case]
    src = exports_with(tmp_path, name, text)
    whole = etl(deployer, src, tmp_path / "whole", 1)
    assert whole.returncode != 0, case
    first = [l for l in whole.stderr.splitlines() if "bad input" in l]
    assert first and name in first[0], whole.stderr
    size = (src / "a" / name).stat().st_size
    for n in (2, 3, 5, size):
        r = etl(deployer, src, tmp_path / f"wh{n}", n, engine=engine)
        assert r.returncode == whole.returncode, (case, n, r.stderr)
        assert [l for l in r.stderr.splitlines() if "bad input" in l] == first, (case, n)
        # Nothing published, and nothing of the run left: parts, plan, reports.
        left = sorted(str(p.relative_to(tmp_path / f"wh{n}")) for p in (tmp_path / f"wh{n}").rglob("*") if p.is_file())
        assert left == ["a/_runs/.lease.json.lock", "a/_runs/lease.json"], (case, n, left)


def test_a_nested_object_laid_out_as_a_record_is_read_whole_and_right(deployer, tmp_path):
    # A record whose nested list holds an object at the records' own indentation after `,`:
    # a span may start there; the tiling check sees the span before it end elsewhere, and the
    # export is read again whole.
    rows = pretty(SESSIONS[:4])
    nested = rows.replace('"StudentClient": "Web, \\"app\\""\n  },\n  {\n    "StudentId": "2"',
                          '"StudentClient": [1,\n  {"x": 2}]\n  },\n  {\n    "StudentId": "2"', 1)
    assert nested != rows
    src = exports_with(tmp_path, "sessions.json", nested)
    size = (src / "a" / "sessions.json").stat().st_size
    most = spans_equal_whole(deployer, src, tmp_path, [size])
    # Read whole: one part, where the other exports split into one per record.
    assert most["sessions"] == 1 and most["students"] == 3, most


def test_the_sharded_engine_refuses_an_export_its_spans_did_not_tile(deployer, tmp_path):
    # A shard cannot read the whole export again: the publisher refuses the run, naming the
    # export and the bytes, and says what reads it whole.
    rows = pretty(SESSIONS[:4])
    nested = rows.replace('"StudentClient": "Web, \\"app\\""\n  },\n  {\n    "StudentId": "2"',
                          '"StudentClient": [1,\n  {"x": 2}]\n  },\n  {\n    "StudentId": "2"', 1)
    src = exports_with(tmp_path, "sessions.json", nested)
    size = (src / "a" / "sessions.json").stat().st_size
    r = etl(deployer, src, tmp_path / "wh", size, engine="sharded")
    assert r.returncode != 0
    assert "did not tile it" in r.stderr and "sessions.json" in r.stderr and "base_a_engine: function" in r.stderr, r.stderr
    assert not (tmp_path / "wh" / "a" / "sessions").exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_semantics_exports_pretty_printed_give_the_same_tables_at_every_cut(deployer, tmp_path, engine):
    # tests/etl/test_semantics_a.py's exports (joins, colliding names, a key written twice, a
    # nested value), pretty-printed so that they split: the rows of docs/SEMANTICS.md's rules
    # do not depend on where the cuts fall.
    from test_semantics_a import EXPORTS

    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    for entity in ENTITIES:
        rows = [dict(r, Nested={"list": [1, {"x": "y"}]}) if entity == "students" else r for r in EXPORTS[entity]]
        text = pretty(rows)
        if entity == "students":
            # A repeated key, which json.dumps of a dict cannot write.
            text = text.replace('"Id": "3",\n    "Nick": "a",', '"Id": "3",\n    "Nick": "a",\n    "Id": "4",', 1)
            assert '"Id": "4"' in text
        (src / "a" / f"{entity}.json").write_text(text)
    size = max(p.stat().st_size for p in (src / "a").glob("*.json"))
    most = spans_equal_whole(deployer, src, tmp_path, [2, size], engine=engine)
    assert most["students"] == 3 and most["follows"] == 3, most
    whole = ndjson_tables(tmp_path / "whole")
    assert '"Id":"4","Nick":"a"' in whole["students"][0], whole["students"][0]
    # A nested value, pretty-printed over lines in the export, is one compact value in its row.
    assert whole["students"][0].count('"Nested":{"list":[1,{"x":"y"}]}') == 3, whole["students"][0]
