//! The function engine of base b on local folders: what it refuses, and that a refusal or a
//! failure leaves every published table as it was. (The equivalence of its tables with the
//! Spark job's is tests/spark/test_engines.py; the deployed function, tests/e2e.)

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etl::handlers::site_events::{run as handler_run, SiteEventsContext, SiteEventsSettings};
use etl::site_events::{fit, run, Options, SiteEventsError};
use etl::storage::LocalDir;
use etl::warehouse::DataFormat;

fn shared() -> PathBuf {
    std::env::var_os("PDCASE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// A source with the reference sample's events and a warehouse with the ETL's students table.
fn folders() -> (tempfile::TempDir, tempfile::TempDir) {
    let src = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    let inputs = shared().join("fixtures/reference/inputs");
    for dir in ["a", "b"] {
        fs::create_dir_all(src.path().join(dir)).unwrap();
        for f in fs::read_dir(inputs.join(dir)).unwrap() {
            let f = f.unwrap().path();
            fs::copy(&f, src.path().join(dir).join(f.file_name().unwrap())).unwrap();
        }
    }
    let opts = etl::run::Options::new(DataFormat::Parquet);
    etl::run::run(&LocalDir::new(src.path()), &LocalDir::new(wh.path()), &opts).unwrap();
    (src, wh)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                // The runs' bookkeeping (the lease each run takes and releases) is not data.
                if p.file_name().is_some_and(|n| n != "_runs") {
                    stack.push(p);
                }
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn context(src: &Path, wh: &Path) -> SiteEventsContext {
    let env = |n: &str| -> Option<String> {
        match n {
            "STAGE" => Some("alice".into()),
            "SOURCE_BUCKET" | "WAREHOUSE_BUCKET" => Some("unused".into()),
            _ => None,
        }
    };
    SiteEventsContext {
        source: std::sync::Arc::new(LocalDir::new(src)),
        warehouse: std::sync::Arc::new(LocalDir::new(wh)),
        settings: SiteEventsSettings::from_env(&env).unwrap(),
        failures: None,
    }
}

#[test]
fn input_too_large_for_the_function_is_refused_before_anything_is_written() {
    let (src, wh) = folders();
    let ctx = context(src.path(), wh.path());
    run(&*ctx.source, &*ctx.warehouse, &Options::new("r1".into())).unwrap();
    let before = snapshot(wh.path());
    // A function with 50 ms of work left past its margin can process a few megabytes: grow
    // the 2.6 kB of events past that.
    let limits = fit::Limits {
        memory_mb: 2048,
        remaining: fit::MARGIN + Duration::from_millis(50),
    };
    let (capacity, bound) = fit::capacity(limits);
    assert_eq!(bound, fit::Bound::Time);
    let sample = fs::read(src.path().join("b/part-0000.json")).unwrap();
    let copies = capacity as usize / sample.len() + 1;
    let big: Vec<u8> = sample
        .iter()
        .copied()
        .cycle()
        .take(sample.len() * copies)
        .collect();
    fs::write(src.path().join("b/part-0001.json"), big).unwrap();
    let e = handler_run(&ctx, limits, "r2".into()).unwrap_err();
    assert!(matches!(e, SiteEventsError::TooLarge(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("set `base_b_engine: emr` for stage alice"),
        "{text}"
    );
    assert!(text.contains("lambda.timeout_seconds"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(snapshot(wh.path()), before, "the warehouse is untouched");

    // With the whole timeout, the same input fits and is published.
    let roomy = fit::Limits {
        memory_mb: 2048,
        remaining: Duration::from_secs(900),
    };
    let report = handler_run(&ctx, roomy, "r3".into()).unwrap();
    assert_eq!(report.lines, 4 * (copies as u64 + 1));
}

#[test]
fn too_many_bad_lines_publish_nothing_and_keep_the_previous_run() {
    let (src, wh) = folders();
    let (source, warehouse) = (LocalDir::new(src.path()), LocalDir::new(wh.path()));
    run(&source, &warehouse, &Options::new("r1".into())).unwrap();
    let before = snapshot(wh.path());
    let mut lines = fs::read_to_string(src.path().join("b/part-0000.json")).unwrap();
    lines.push_str("{broken\nnot json\n");
    fs::write(src.path().join("b/part-0000.json"), lines).unwrap();
    let e = run(&source, &warehouse, &Options::new("r2".into())).unwrap_err();
    match &e {
        SiteEventsError::TooManyBadLines { report, .. } => {
            assert_eq!((report.malformed_lines, report.lines), (2, 6));
            assert_eq!(report.malformed_sample.len(), 2);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("nothing was written"), "{e}");
    assert_eq!(snapshot(wh.path()), before, "r2 left nothing, r1 is whole");
}

#[test]
fn a_run_id_names_one_run() {
    let (src, wh) = folders();
    let (source, warehouse) = (LocalDir::new(src.path()), LocalDir::new(wh.path()));
    run(&source, &warehouse, &Options::new("r1".into())).unwrap();
    let before = snapshot(wh.path());
    let e = run(&source, &warehouse, &Options::new("r1".into())).unwrap_err();
    assert!(matches!(e, SiteEventsError::RunExists(_)), "{e}");
    assert_eq!(snapshot(wh.path()), before);
    let e = run(&source, &warehouse, &Options::new("r/1".into())).unwrap_err();
    assert!(matches!(e, SiteEventsError::BadRunId(_)), "{e}");
}

#[test]
fn each_run_keeps_the_previous_one_and_removes_older_ones() {
    let (src, wh) = folders();
    let (source, warehouse) = (LocalDir::new(src.path()), LocalDir::new(wh.path()));
    for r in ["r1", "r2", "r3"] {
        run(&source, &warehouse, &Options::new(r.into())).unwrap();
    }
    for table in ["events", "events-by-city", "sessions-by-campaign"] {
        let mut names: Vec<String> = fs::read_dir(wh.path().join("b").join(table))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["_SUCCESS", "_symlink_format_manifest", "run=r2", "run=r3"],
            "{table}"
        );
        let manifest = fs::read_to_string(
            wh.path()
                .join("b")
                .join(table)
                .join("_symlink_format_manifest/manifest"),
        )
        .unwrap();
        assert!(
            manifest.lines().all(|l| l.contains("/run=r3/")) && !manifest.is_empty(),
            "{manifest}"
        );
    }
}

#[test]
fn no_students_table_is_named() {
    let (src, _) = folders();
    let empty = tempfile::tempdir().unwrap();
    let e = run(
        &LocalDir::new(src.path()),
        &LocalDir::new(empty.path()),
        &Options::new("r1".into()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("run the ETL (base a) first"), "{e}");
    assert!(snapshot(empty.path()).is_empty());
}

/// docs/SEMANTICS.md (`event_date`): each `events` file carries min/max statistics for its
/// typed columns (a reader skips the file by its date), none for its text columns.
#[test]
fn events_files_keep_statistics_for_typed_columns_only() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (src, wh) = folders();
    run(
        &LocalDir::new(src.path()),
        &LocalDir::new(wh.path()),
        &Options::new("r1".into()),
    )
    .unwrap();
    let files: Vec<PathBuf> = snapshot(&wh.path().join("b/events/run=r1"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let reader = SerializedFileReader::new(fs::File::open(&file).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let name = column.column_path().string();
                let has_min_max = column
                    .statistics()
                    .is_some_and(|s| s.min_bytes_opt().is_some());
                let typed = ["event_time", "event_date", "nth"].contains(&name.as_str());
                if typed {
                    assert!(has_min_max, "{name} in {}", file.display());
                } else if column.column_descr().physical_type() == parquet::basic::Type::BYTE_ARRAY
                {
                    assert!(!has_min_max, "{name} in {}", file.display());
                }
            }
        }
    }
}
