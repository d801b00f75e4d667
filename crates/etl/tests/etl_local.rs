//! The ETL end to end on local folders (the same code path as S3 but the storage): the
//! reference fixtures, re-runs, failures midway, and every kind of bad input.
//!
//! Relies on: the local-folder storage only. S3 is exercised by the emulator test
//! (`tests/e2e/test_etl_lambda.py`).

use std::fs;
use std::path::{Path, PathBuf};

use arrow_array::{Array, StringArray};
use etl::error::EtlError;
use etl::json_array::ArrayReader;
use etl::run::{run, Options};
use etl::storage::{FaultyDir, LocalDir, Storage};
use etl::warehouse::DataFormat;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("PDCASE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn reference() -> PathBuf {
    let p = shared().join("fixtures/reference");
    assert!(
        p.is_dir(),
        "the shared fixtures are missing at {}",
        p.display()
    );
    p
}

/// A source folder holding the reference inputs as `a/<entity>.json`.
fn source_from_reference() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("a")).unwrap();
    for e in fs::read_dir(reference().join("inputs/a")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.path().join("a").join(e.file_name())).unwrap();
    }
    dir
}

/// Records of a JSON array, each as (names in order, values).
fn ordered_records(bytes: &[u8]) -> Vec<Vec<(String, Value)>> {
    let mut out = Vec::new();
    ArrayReader::new(bytes, "expected")
        .for_each(|e| {
            out.push(
                e.record
                    .fields
                    .iter()
                    .map(|(n, v)| (n.to_string(), serde_json::from_str(v.get()).unwrap()))
                    .collect(),
            );
            Ok(())
        })
        .unwrap();
    out
}

fn ndjson_records(path: &Path) -> Vec<Vec<(String, Value)>> {
    let text = fs::read_to_string(path).unwrap();
    let array = format!("[{}]", text.lines().collect::<Vec<_>>().join(","));
    ordered_records(array.as_bytes())
}

fn parquet_rows(path: &Path) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let file = fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for r in 0..batch.num_rows() {
            rows.push(
                (0..batch.num_columns())
                    .map(|c| {
                        let col = batch
                            .column(c)
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .unwrap();
                        (!col.is_null(r)).then(|| col.value(r).to_owned())
                    })
                    .collect(),
            );
        }
    }
    (names, rows)
}

const PAIRS: [(&str, &str); 4] = [
    ("students", "denormalizedStudents.json"),
    ("follows", "denormalizedFollows.json"),
    ("sessions", "parsedSessions.json"),
    ("subscriptions", "parsedSubscriptions.json"),
];

fn opts(format: DataFormat, run_id: &str) -> Options {
    Options {
        run_id: run_id.into(),
        workers: 2,
        ..Options::new(format)
    }
}

/// The one data file of base-a `table` in the warehouse folder `wh`, as its manifest names it
/// (a reader never lists the table's folder: it also holds the previous run's file).
fn table_file(wh: &Path, table: &str) -> PathBuf {
    let manifest =
        fs::read_to_string(wh.join(format!("a/{table}/_symlink_format_manifest/manifest")))
            .unwrap_or_else(|e| panic!("{table}'s manifest: {e}"));
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines.len(), 1, "{table}: one file per run: {lines:?}");
    PathBuf::from(lines[0].strip_prefix("file:").expect("a file: URI"))
}

#[test]
fn ndjson_output_equals_every_reference_output_field_for_field_in_order() {
    let src = source_from_reference();
    let wh = tempfile::tempdir().unwrap();
    let report = run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Ndjson, "r1"),
    )
    .unwrap();
    for (table, expected) in PAIRS {
        let want = ordered_records(&fs::read(reference().join("outputs").join(expected)).unwrap());
        let got = ndjson_records(&table_file(wh.path(), table));
        assert_eq!(got, want, "table {table} against {expected}");
        let rows = report
            .tables
            .iter()
            .find(|t| t.table == table)
            .unwrap()
            .rows;
        assert_eq!(rows as usize, want.len());
    }
}

#[test]
fn parquet_output_holds_the_reference_values_by_column() {
    let src = source_from_reference();
    let wh = tempfile::tempdir().unwrap();
    run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Parquet, "r1"),
    )
    .unwrap();
    for (table, expected) in PAIRS {
        let want = ordered_records(&fs::read(reference().join("outputs").join(expected)).unwrap());
        let (names, rows) = parquet_rows(&table_file(wh.path(), table));
        let contract: Vec<&str> = etl::warehouse::table(table)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, contract);
        assert_eq!(rows.len(), want.len());
        for (row, record) in rows.iter().zip(&want) {
            for (name, value) in names.iter().zip(row) {
                let expected = record
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                if name == "extra" {
                    // The fixtures have no fields beyond the contract.
                    assert_eq!(value, &None, "{table}.extra");
                } else {
                    assert_eq!(value, &expected, "{table}.{name}");
                }
            }
        }
    }
}

/// Sessions and subscriptions are written from their picked fields without a row: the Parquet
/// columns must hold what the NDJSON rows (built field by field) hold, for absent fields,
/// nulls, numbers, escapes, duplicate keys and fields read by serde_json (nested values).
#[test]
fn picked_tables_write_in_parquet_what_their_ndjson_rows_hold() {
    let src = write_source(&[
        (
            "sessions.json",
            r#"[{"StudentId": "1", "SessionStartTime": "t1", "StudentClient": "Web"},
                {"StudentId": 2, "StudentClient": null},
                {"SessionStartTime": "t\"3", "StudentId": "3", "Extra": {"a": [1]}},
                {"StudentId": "4", "StudentClient": "A", "StudentClient": 5, "SessionStartTime": 1.5}]"#,
        ),
        (
            "subscriptions.json",
            r#"[{"StudentId": "1", "PlanType": "Anual"}, {"StudentId": "2", "PaymentDate": "d"}]"#,
        ),
    ]);
    let (pq, nd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_on(src.path(), pq.path(), DataFormat::Parquet, "r1");
    run_on(src.path(), nd.path(), DataFormat::Ndjson, "r1");
    for (table, rows_expected) in [("sessions", 4), ("subscriptions", 2)] {
        let (names, rows) = parquet_rows(&table_file(pq.path(), table));
        let records = ndjson_records(&table_file(nd.path(), table));
        assert_eq!(rows.len(), rows_expected, "{table}");
        assert_eq!(records.len(), rows_expected, "{table}");
        for (row, record) in rows.iter().zip(&records) {
            let from_ndjson: Vec<Option<String>> = names
                .iter()
                .map(|n| {
                    record
                        .iter()
                        .find(|(k, _)| k == n)
                        .and_then(|(_, v)| match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                })
                .collect();
            assert_eq!(row, &from_ndjson, "{table}");
        }
    }
    let (_, sessions) = parquet_rows(&table_file(pq.path(), "sessions"));
    assert_eq!(
        sessions[2],
        [Some("3".to_owned()), Some("t\"3".to_owned()), None]
    );
    assert_eq!(
        sessions[3],
        [
            Some("4".to_owned()),
            Some("1.5".to_owned()),
            Some("5".to_owned())
        ]
    );
}

/// docs/SEMANTICS.md, "Formats": min/max statistics for the time columns only; the time and
/// id columns prefix-coded (never length-coded, which Spark 3.5 misreads) without
/// compression; every other column snappy. Relies on the parquet crate's reader of the files this run wrote
/// (nothing AWS-specific).
#[test]
fn parquet_files_keep_statistics_for_time_columns_and_prefix_coding_for_times_and_ids() {
    use parquet::basic::{Compression, Encoding};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let src = source_from_reference();
    let wh = tempfile::tempdir().unwrap();
    run_on(src.path(), wh.path(), DataFormat::Parquet, "r1");
    let (mut time_columns, mut ids) = (0, 0);
    for (table, _) in PAIRS {
        let file = table_file(wh.path(), table);
        let reader = SerializedFileReader::new(fs::File::open(&file).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let name = column.column_path().string();
                let min_max = column
                    .statistics()
                    .and_then(|s| Some((s.min_bytes_opt()?.to_vec(), s.max_bytes_opt()?.to_vec())));
                let prefix_coded = column.encodings().any(|e| e == Encoding::DELTA_BYTE_ARRAY);
                let length_coded = column
                    .encodings()
                    .any(|e| e == Encoding::DELTA_LENGTH_BYTE_ARRAY);
                if name == "Id" || name == "StudentId" {
                    ids += 1;
                    assert_eq!(min_max, None, "{table}.{name}");
                    assert!(prefix_coded && !length_coded, "{table}.{name}");
                    assert_eq!(
                        column.compression(),
                        Compression::UNCOMPRESSED,
                        "{table}.{name}"
                    );
                } else if name == "Date" || name == "StartTime" {
                    time_columns += 1;
                    let (min, max) = min_max.unwrap_or_else(|| panic!("{table}.{name}"));
                    assert!(min <= max, "{table}.{name}");
                    assert!(prefix_coded && !length_coded, "{table}.{name}");
                    assert_eq!(
                        column.compression(),
                        Compression::UNCOMPRESSED,
                        "{table}.{name}"
                    );
                } else {
                    assert_eq!(min_max, None, "{table}.{name}");
                    assert!(!prefix_coded && !length_coded, "{table}.{name}");
                    assert_eq!(column.compression(), Compression::SNAPPY, "{table}.{name}");
                }
            }
        }
    }
    assert_eq!(time_columns, 4, "one time column per table");
    assert_eq!(ids, 4, "one id column per table");
}

/// Prefix-coded time columns read back as written, over several pages of times in no order
/// (long and short shared prefixes, four fractional digits, NULLs, non-ASCII text).
/// Relies on the parquet crate's reader (nothing AWS-specific).
#[test]
fn time_columns_read_back_as_written_across_pages() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut state: u64 = 7;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let times: Vec<Option<String>> = (0..120_000)
        .map(|i| match next() % 50 {
            0 => None,
            1 => Some(format!("día {i}")),
            r => Some(format!(
                "2019-{:02}-{:02} {:02}:{:02}:{:02}.{:0w$}",
                1 + next() % 12,
                1 + next() % 28,
                next() % 24,
                next() % 60,
                next() % 60,
                next() % 1000,
                w = 3 + usize::from(r % 2 == 0)
            )),
        })
        .collect();
    let records: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let time = t.as_ref().map_or("null".to_owned(), |t| format!("\"{t}\""));
            format!(r#"{{"StudentId": "{i}", "SessionStartTime": {time}, "StudentClient": "W"}}"#)
        })
        .collect();
    let src = write_source(&[("sessions.json", &format!("[{}]", records.join(",\n")))]);
    let wh = tempfile::tempdir().unwrap();
    run_on(src.path(), wh.path(), DataFormat::Parquet, "r1");
    let file = table_file(wh.path(), "sessions");
    let reader = SerializedFileReader::new(fs::File::open(&file).unwrap()).unwrap();
    let chunk = reader.metadata().row_group(0).column(1);
    assert_eq!(chunk.column_path().string(), "StartTime");
    // Pages end at 1 MiB (the writer's default): more than two of them.
    assert!(
        chunk.uncompressed_size() > 2 << 20,
        "{}",
        chunk.uncompressed_size()
    );
    let (names, rows) = parquet_rows(&file);
    let at = names.iter().position(|n| n == "StartTime").unwrap();
    let read: Vec<Option<String>> = rows.into_iter().map(|mut r| r.swap_remove(at)).collect();
    assert_eq!(read.len(), times.len());
    assert!(
        read == times,
        "the time column differs from what was written"
    );
}

/// Runs the ETL from folder `src` into folder `wh`, which must succeed.
fn run_on(src: &Path, wh: &Path, format: DataFormat, run_id: &str) {
    run(
        &LocalDir::new(src),
        &LocalDir::new(wh),
        &opts(format, run_id),
    )
    .unwrap();
}

fn write_source(files: &[(&str, &str)]) -> tempfile::TempDir {
    let src = source_from_reference();
    for (name, body) in files {
        fs::write(src.path().join("a").join(name), body).unwrap();
    }
    src
}

#[test]
fn joins_match_keys_by_text_keep_unmatched_rows_and_let_the_last_duplicate_win() {
    let src = write_source(&[
        (
            "courses.json",
            r#"[{"Id": 1, "Name": "Old", "Area": "x"}, {"Id": "1", "Name": "New", "Area": "Exatas"}, {"Id": 2, "Name": null}]"#,
        ),
        (
            "students.json",
            r#"[
  {"Id": 10, "RegisteredDate": "2019-01-01 11:00:00.0000", "CourseId": "1", "UniversityId": 99, "Nick": "z\u00e9"},
  {"Id": "11", "CourseId": null, "UniversityId": "1"},
  {"Id": "12", "CourseId": 2}
]"#,
        ),
    ]);
    let wh = tempfile::tempdir().unwrap();
    run_on(src.path(), wh.path(), DataFormat::Ndjson, "r1");
    let got = fs::read_to_string(table_file(wh.path(), "students")).unwrap();
    assert_eq!(
        got,
        concat!(
            r#"{"Id":10,"Date":"2019-01-01 11:00:00.0000","Course":"New","Nick":"z\u00e9"}"#,
            "\n",
            r#"{"Id":"11","University":"University 1"}"#,
            "\n",
            r#"{"Id":"12","Course":null}"#,
            "\n",
        )
    );
    run_on(src.path(), wh.path(), DataFormat::Parquet, "r2");
    let (_, rows) = parquet_rows(&table_file(wh.path(), "students"));
    assert_eq!(rows[0][0].as_deref(), Some("10"));
    assert_eq!(rows[0][5].as_deref(), Some("New"));
    assert_eq!(rows[0][7].as_deref(), Some(r#"{"Nick":"z\u00e9"}"#));
    assert_eq!(rows[1][4].as_deref(), Some("University 1"));
    assert_eq!(rows[2][5], None);
    // Switching format: the manifest names the new format's file alone.
    assert!(table_file(wh.path(), "students")
        .to_string_lossy()
        .ends_with("run=r2/data.parquet"));
}

/// docs/SEMANTICS.md, "Joins": a course or university gives only its `Name`; a subject gives
/// every field but `Id`, in its record's order. "Colliding names": one field per name, at its
/// first place, holding the value written last, as the original's object spread did; a
/// subject never replaces the follow's own `StudentId`.
#[test]
fn dimensions_merge_their_fields_and_colliding_names_keep_the_later_value() {
    let src = write_source(&[
        (
            "courses.json",
            r#"[{"Id": 1, "Area": "Exatas", "Name": "Math", "Course": "shadow", "Date": "course date"}]"#,
        ),
        (
            "universities.json",
            r#"[{"Id": 1, "Name": "UFRJ", "City": "not the student's"}]"#,
        ),
        (
            "students.json",
            r#"[
  {"Id": "1", "Course": "own, before", "CourseId": 1, "Date": "own, before", "RegisteredDate": "2019", "UniversityId": 1, "City": "Rio"},
  {"Id": "2", "CourseId": 1, "Course": "own, after", "RegisteredDate": "2019", "Date": "own, after"},
  {"Id": "3", "Nick": "a", "Id": "4", "Nick": "b"}
]"#,
        ),
        (
            "subjects.json",
            r#"[{"Id": 1, "Area": "Exatas", "Name": "Algebra", "StudentId": "not a student", "Date": "subject date"}]"#,
        ),
        (
            "student_follow_subject.json",
            r#"[
  {"StudentId": "1", "SubjectId": 1, "FollowDate": "2019-01-01"},
  {"FollowDate": "2019-02-02", "SubjectId": 1, "StudentId": "2"}
]"#,
        ),
    ]);
    let wh = tempfile::tempdir().unwrap();
    run_on(src.path(), wh.path(), DataFormat::Ndjson, "r1");
    let students = fs::read_to_string(table_file(wh.path(), "students")).unwrap();
    assert_eq!(
        students.lines().collect::<Vec<_>>(),
        [
            r#"{"Id":"1","Course":"Math","Date":"2019","University":"UFRJ","City":"Rio"}"#,
            r#"{"Id":"2","Course":"own, after","Date":"own, after"}"#,
            r#"{"Id":"4","Nick":"b"}"#,
        ]
    );
    let follows = fs::read_to_string(table_file(wh.path(), "follows")).unwrap();
    assert_eq!(
        follows.lines().collect::<Vec<_>>(),
        [
            r#"{"StudentId":"1","Area":"Exatas","Subject":"Algebra","Date":"2019-01-01"}"#,
            r#"{"Date":"subject date","Area":"Exatas","Subject":"Algebra","StudentId":"2"}"#,
        ]
    );
    run_on(src.path(), wh.path(), DataFormat::Parquet, "r2");
    let (names, rows) = parquet_rows(&table_file(wh.path(), "students"));
    let at = |n: &str| names.iter().position(|c| c == n).unwrap();
    assert_eq!(rows[0][at("Course")].as_deref(), Some("Math"));
    assert_eq!(rows[0][at("City")].as_deref(), Some("Rio"));
    assert_eq!(
        rows[0][at("extra")],
        None,
        "no course field leaks into extra"
    );
    assert_eq!(rows[1][at("Course")].as_deref(), Some("own, after"));
    assert_eq!(rows[2][at("extra")].as_deref(), Some(r#"{"Nick":"b"}"#));
    let (names, rows) = parquet_rows(&table_file(wh.path(), "follows"));
    let at = |n: &str| names.iter().position(|c| c == n).unwrap();
    assert_eq!(rows[0][at("StudentId")].as_deref(), Some("1"));
    assert_eq!(rows[1][at("Date")].as_deref(), Some("subject date"));
    assert_eq!(
        rows[1][at("extra")].as_deref(),
        Some(r#"{"Area":"Exatas"}"#)
    );
}

fn keys_under(dir: &Path) -> Vec<String> {
    let mut keys = LocalDir::new(dir).list("").unwrap();
    keys.sort();
    keys
}

/// A rerun adds no rows: each table is its manifest's one file. The previous run's files stay
/// for the queries reading them until the next run removes them.
#[test]
fn a_rerun_replaces_the_snapshot_instead_of_adding_rows() {
    let src = source_from_reference();
    let wh = tempfile::tempdir().unwrap();
    let (s, w) = (LocalDir::new(src.path()), LocalDir::new(wh.path()));
    for run_id in ["r1", "r2", "r3"] {
        run(&s, &w, &opts(DataFormat::Parquet, run_id)).unwrap();
    }
    for (table, expected) in PAIRS {
        let want = ordered_records(&fs::read(reference().join("outputs").join(expected)).unwrap());
        assert_eq!(
            parquet_rows(&table_file(wh.path(), table)).1.len(),
            want.len(),
            "{table}"
        );
        let marker: Value = serde_json::from_slice(
            &fs::read(wh.path().join(format!("a/{table}/_SUCCESS"))).unwrap(),
        )
        .unwrap();
        assert_eq!(marker["run"], "r3");
        assert_eq!(
            marker["object"],
            format!("a/{table}/_symlink_format_manifest/manifest")
        );
        // r3's file and r2's (the manifest named it until now); r1's is gone.
        let runs: Vec<String> = w
            .list(&format!("a/{table}/run="))
            .unwrap()
            .into_iter()
            .map(|k| k.split('/').nth(2).unwrap().to_owned())
            .collect();
        assert_eq!(runs, ["run=r2", "run=r3"], "{table}");
    }
    // The lease is released, and names the last run.
    let lease = etl::lease::read(&w, etl::warehouse::Base::A)
        .unwrap()
        .unwrap();
    assert!(lease.run == "r3" && lease.released, "{lease:?}");
}

/// Every object of the warehouse folder but the runs' bookkeeping (the lease, which every
/// run takes and releases, refused or not), with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    keys_under(dir)
        .into_iter()
        .filter(|k| !k.contains("/_runs/"))
        .map(|k| {
            let body = fs::read(dir.join(&k)).unwrap();
            (k, body)
        })
        .collect()
}

#[test]
fn a_write_failure_on_the_third_table_leaves_the_previous_snapshot_intact() {
    let src = source_from_reference();
    let wh = tempfile::tempdir().unwrap();
    run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Parquet, "r1"),
    )
    .unwrap();
    let before = snapshot(wh.path());
    // New input, so a published second run would differ.
    fs::write(
        src.path().join("a/sessions.json"),
        r#"[{"StudentId": "9", "SessionStartTime": "t", "StudentClient": "Android"}]"#,
    )
    .unwrap();
    // The third object stream fails.
    let failing = FaultyDir::new(wh.path()).failing_create(3);
    let mut o = opts(DataFormat::Parquet, "r2");
    o.workers = 1;
    let err = run(&LocalDir::new(src.path()), &failing, &o).unwrap_err();
    assert!(matches!(err, EtlError::Write { .. }), "{err}");
    assert!(err.to_string().contains("injected: disk full"), "{err}");
    assert_eq!(failing.creates(), 3, "stopped at the third table");
    assert_eq!(
        snapshot(wh.path()),
        before,
        "published objects, markers and no staging left"
    );
}

/// Runs on a source whose `file` is replaced by `body`; returns the error text, and checks
/// nothing at all was written to the warehouse.
fn refused(file: &str, body: &[u8]) -> String {
    let src = source_from_reference();
    fs::write(src.path().join("a").join(file), body).unwrap();
    let wh = tempfile::tempdir().unwrap();
    // A previous snapshot that must survive.
    run(
        &LocalDir::new(source_from_reference().path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Parquet, "r1"),
    )
    .unwrap();
    let before = snapshot(wh.path());
    let err = run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Parquet, "r2"),
    )
    .unwrap_err();
    assert_eq!(snapshot(wh.path()), before, "nothing published for {file}");
    let text = err.to_string();
    let file_path = src.path().join("a").join(file).display().to_string();
    assert!(
        text.contains(&file_path),
        "the message names the file: {text}"
    );
    text.replace(&file_path, file)
}

#[test]
fn bad_inputs_are_refused_with_file_place_and_problem() {
    assert_eq!(
        refused(
            "students.json",
            b"[\n  {\"Id\": \"1\",\n   \"City\": \"Rio\"\n  ,\n]"
        ),
        "bad input: students.json:5:1 (record 0): malformed record: key must be a string"
    );
    assert_eq!(
        refused("courses.json", b"{\"Id\": 1, \"Name\": \"C\"}"),
        "bad input: courses.json:1:1: expected a JSON array of records, found an object (`{`)"
    );
    assert_eq!(
        refused("subjects.json", b"[ ]"),
        "bad input: subjects.json:1:3: empty array: the export holds no records"
    );
    assert_eq!(
        refused("student_follow_subject.json", b"[{\"StudentId\": \"1\", \"SubjectId\": 1},\n {\"StudentId\": \"2\", \"SubjectId\": [1]}]"),
        "bad input: student_follow_subject.json:2:34 (record 1): key field `SubjectId` must be a string, an integer or null, found an array"
    );
    assert_eq!(
        refused("students.json", b"[{\"Id\": {\"n\": 1}}]"),
        "bad input: students.json:1:9 (record 0): key field `Id` must be a string or an integer, found an object"
    );
    assert_eq!(
        refused(
            "sessions.json",
            b"[{\"StudentId\": \"1\"},\n {\"SessionStartTime\": \"2019-01-01\"}]"
        ),
        "bad input: sessions.json:2:2 (record 1): missing required field `StudentId`"
    );
    assert_eq!(
        refused(
            "subscriptions.json",
            b"[{\"StudentId\": \"1\", \"PlanType\": \"Anual\xE7\"}]"
        ),
        "bad input: subscriptions.json:1:39 (record 0): invalid UTF-8 (byte 0xE7): exports must be UTF-8 text"
    );
    assert_eq!(
        refused("universities.json", b"[{\"Id\": 1, \"Name\": \"U\"}"),
        "bad input: universities.json:1:24 (record 1): unexpected end of the document: the array (or a record in it) is not closed"
    );
}

#[test]
fn a_missing_export_is_named_and_nothing_is_written() {
    let src = source_from_reference();
    fs::remove_file(src.path().join("a/subscriptions.json")).unwrap();
    let wh = tempfile::tempdir().unwrap();
    let err = run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &opts(DataFormat::Parquet, "r1"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "missing input {}: the source must hold every `a/<entity>.json` export",
            src.path().join("a/subscriptions.json").display()
        )
    );
    assert_eq!(
        keys_under(wh.path()),
        ["a/_runs/lease.json"],
        "nothing but the released lease"
    );
}
