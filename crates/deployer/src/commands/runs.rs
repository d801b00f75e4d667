//! `deployer runs --stage S`: the stage's recent runs of each base, from their run records
//! ([`etl::runs`]): state, engine, start and end, rows, and the error of a failed run.

use etl::runs::{RunRecord, RunState};
use stack_model::pipeline::outputs;
use stack_model::warehouse::Base;

use crate::aws::Aws;
use crate::cli::{BaseArg, Global, RunsArgs, RunsFormat};
use crate::cloudformation::status::{output, stack_outputs};
use crate::run_records;

pub async fn run(global: &Global, args: &RunsArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let bucket = output(&outs, outputs::WAREHOUSE_BUCKET)?;
    let bases: &[Base] = match args.base {
        Some(BaseArg::A) => &[Base::A],
        Some(BaseArg::B) => &[Base::B],
        None => &[Base::A, Base::B],
    };
    let mut runs = Vec::new();
    for base in bases {
        runs.extend(run_records::list(&aws, bucket, *base, args.limit).await?);
    }
    match args.format {
        RunsFormat::Json => crate::output::print_json(&serde_json::json!({
            "stage": c.stage.as_str(),
            "runs": runs,
        }))?,
        RunsFormat::Table => print!("{}", table(&runs)),
    }
    Ok(())
}

/// Rows of the base's tables a run published, or what stopped it.
fn outcome(r: &RunRecord) -> String {
    if let Some(e) = &r.error {
        let retry = if r.retry { " (retried)" } else { "" };
        return format!("{e}{retry}");
    }
    let Some(report) = &r.report else {
        return String::new();
    };
    // Base a's report lists its tables; base b's counts its rows by table.
    if let Some(tables) = report["tables"]
        .as_array()
        .filter(|t| t.iter().all(|t| t.is_object()))
    {
        return tables
            .iter()
            .map(|t| format!("{} {}", t["table"].as_str().unwrap_or("?"), t["rows"]))
            .collect::<Vec<_>>()
            .join(", ");
    }
    match report["rows"].as_object() {
        Some(rows) => rows
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        None => String::new(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".into();
    }
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            let state = match r.state {
                RunState::Running if r.live(now()) => "running",
                RunState::Running => "killed",
                RunState::Succeeded => "succeeded",
                RunState::Failed => "failed",
            };
            [
                r.base.clone(),
                r.run.clone(),
                state.into(),
                r.engine.clone(),
                format!("{} .. {}", r.started, r.ended.as_deref().unwrap_or("")),
                outcome(r),
            ]
        })
        .collect();
    let header = [
        "BASE",
        "RUN",
        "STATE",
        "ENGINE",
        "STARTED .. ENDED",
        "ROWS / ERROR",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(5) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i < 5 {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                s.push_str(cell);
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
