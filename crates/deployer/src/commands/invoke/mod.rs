//! `deployer invoke <function>`: the real handler code, run in this process (its only mode;
//! `--local` is still accepted and changes nothing). A deployed function is started with
//! `deployer trigger`.
//!
//! With `--source DIR --warehouse DIR` the ETL (base a) or the site-events engine (base b)
//! reads and writes local folders laid out as the buckets are; with `--warehouse DIR` alone
//! the table refresher says, per base, whether it would start the crawler. Nothing touches
//! AWS. With `--stage S` instead, see [`on_stage`].

mod on_stage;

use anyhow::{bail, Context};
use etl::snapshot::{decide, read_markers};
use etl::storage::LocalDir;
use etl::warehouse::{Base, DataFormat};

use crate::cli::{EtlEngineArg, FunctionArg, Global, InvokeArgs, TableFormatArg};

pub fn run(global: &Global, args: &InvokeArgs) -> anyhow::Result<()> {
    let stage_format = match &args.stage {
        Some(stage) => Some(global.stage_config(stage)?.table_format),
        None => None,
    };
    let format = match args.table_format {
        Some(TableFormatArg::Parquet) => DataFormat::Parquet,
        Some(TableFormatArg::Ndjson) => DataFormat::Ndjson,
        None => stage_format.unwrap_or_default(),
    };
    match (args.function, &args.source, &args.warehouse) {
        (FunctionArg::Etl, Some(source), Some(warehouse)) => {
            folder("--source", source, "")?;
            std::fs::create_dir_all(warehouse)
                .with_context(|| format!("--warehouse {}", warehouse.display()))?;
            let opts = etl_options(args, format);
            let (source, warehouse) = (LocalDir::new(source), LocalDir::new(warehouse));
            let report = match args.engine {
                EtlEngineArg::Function => etl::run::run(&source, &warehouse, &opts),
                EtlEngineArg::Sharded => etl::sharded::run_local(&source, &warehouse, &opts),
            }
            .context("the ETL failed; the warehouse folder's published tables are unchanged")?;
            crate::output::print_json(&report)
        }
        (FunctionArg::Etl, None, None) => match &args.stage {
            Some(stage) => crate::runtime().block_on(on_stage::invoke_etl_on_stage(global, stage, args)),
            None => bail!("give the folders to run on (--source DIR --warehouse DIR) or a deployed stage (--stage S)"),
        },
        (FunctionArg::Etl, _, _) => bail!("give both folders: --source DIR --warehouse DIR"),
        (FunctionArg::SiteEvents, Some(source), Some(warehouse)) => {
            site_events_on_folders(args, format, source, warehouse)
        }
        (FunctionArg::SiteEvents, _, _) => {
            bail!("give both folders: --source DIR (holding b/part-*.json) --warehouse DIR (holding the students table)")
        }
        (FunctionArg::TableRefresher, None, Some(warehouse)) => refresher_on_folder(warehouse),
        (FunctionArg::EmrStarter, None, None) => {
            crate::runtime().block_on(on_stage::invoke_starter_on_stage(global, stage_of(args)?))
        }
        (FunctionArg::TableRefresher, None, None) => {
            crate::runtime().block_on(on_stage::invoke_refresher_on_stage(global, stage_of(args)?))
        }
        (FunctionArg::TableRefresher, Some(_), _) => {
            bail!("the table refresher reads only the warehouse: give --warehouse DIR, without --source")
        }
        (_, _, _) => bail!("--source/--warehouse folders are for the etl, site-events and table-refresher functions only"),
    }
}

/// The ETL's options: `--shards` as the split, else spans sized to this machine.
pub(super) fn etl_options(args: &InvokeArgs, format: DataFormat) -> etl::run::Options {
    let mut opts = etl::run::Options::new(format);
    if let Some(n) = args.shards {
        opts.split = etl::run::Split::Pieces(n as usize);
    }
    opts
}

/// Base b on local folders: the function engine's code, publishing under `<warehouse>/b/`.
fn site_events_on_folders(
    args: &InvokeArgs,
    students_format: DataFormat,
    source: &std::path::Path,
    warehouse: &std::path::Path,
) -> anyhow::Result<()> {
    folder("--source", source, "")?;
    folder(
        "--warehouse",
        warehouse,
        " (it holds the students table, a/students/)",
    )?;
    if !(0.0..=1.0).contains(&args.max_bad_ratio) {
        bail!(
            "--max-bad-ratio {}: a share between 0 and 1",
            args.max_bad_ratio
        );
    }
    let mut opts =
        etl::site_events::Options::new(args.run_id.clone().unwrap_or_else(etl::run::new_run_id));
    opts.max_bad_ratio = args.max_bad_ratio;
    opts.manifest_base = args.manifest_base.clone();
    opts.students_format = students_format;
    let report = etl::site_events::run(&LocalDir::new(source), &LocalDir::new(warehouse), &opts)
        .context("base b failed; the warehouse folder's published tables are unchanged")?;
    crate::output::print_json(&report)
}

/// The refresher's decision for each base of a local warehouse folder, as JSON lines; no
/// crawler is started (there is none here). Prints what the deployed function would do.
fn refresher_on_folder(warehouse: &std::path::Path) -> anyhow::Result<()> {
    folder("--warehouse", warehouse, "")?;
    let storage = LocalDir::new(warehouse);
    for base in [Base::A, Base::B] {
        let markers = read_markers(&storage, base)
            .with_context(|| format!("reading the markers under {}", warehouse.display()))?;
        println!("{}", crate::output::json_line(&decide(base, &markers))?);
    }
    Ok(())
}

/// Refuses an option's path that is not a folder; `hint` says what it should hold.
fn folder(option: &str, path: &std::path::Path, hint: &str) -> anyhow::Result<()> {
    if !path.is_dir() {
        bail!("{option} {}: not a folder{hint}", path.display());
    }
    Ok(())
}

fn stage_of(args: &InvokeArgs) -> anyhow::Result<&str> {
    args.stage
        .as_deref()
        .context("this function calls AWS services (EMR, Glue): give the deployed stage to run against (--stage S)")
}
