//! `deployer query --stage S "SQL"`: runs the SQL in the stage's Athena work group and Glue
//! database, waits, and prints the rows as a table (default), JSON or CSV.
//!
//! Athena runs a query with the caller's permissions: the identity needs the `Query*`,
//! `ReadStageCatalog`, `ReadWarehouseForQueries` and `WriteQueryResults` statements of
//! `deployer policy` (and the stage key on a hardened stage).

use std::time::Duration;

use anyhow::Context;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};

use crate::aws::Aws;
use crate::cli::{Global, QueryArgs, QueryFormat};
use crate::cloudformation::status::{output, stack_outputs};
use crate::errors::Explained;
use stack_model::pipeline::outputs;

/// A query's result: column names and rows (`None`: SQL NULL).
#[derive(Debug, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

pub async fn run(global: &Global, args: &QueryArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let database = output(&outs, outputs::DATABASE)?;
    let workgroup = output(&outs, outputs::WORKGROUP)?;
    let athena = aws_sdk_athena::Client::new(&aws.conf);
    let rows = query(&athena, database, workgroup, &args.sql).await?;
    let text = match args.format {
        QueryFormat::Table => table(&rows),
        QueryFormat::Json => json(&rows)?,
        QueryFormat::Csv => csv(&rows)?,
    };
    print!("{text}");
    Ok(())
}

/// Starts the query, waits for it to end, and reads every page of its results.
pub async fn query(
    athena: &aws_sdk_athena::Client,
    database: &str,
    workgroup: &str,
    sql: &str,
) -> anyhow::Result<Rows> {
    let id = athena
        .start_query_execution()
        .query_string(sql)
        .query_execution_context(QueryExecutionContext::builder().database(database).build())
        .work_group(workgroup)
        .send()
        .await
        .map_err(|e| crate::aws::failed("starting the query", e))?
        .query_execution_id
        .context("Athena returned no query execution id")?;
    // Athena's queries take from a fraction of a second to minutes: poll quickly at first.
    let mut wait = Duration::from_millis(100);
    let mut progress = crate::progress::Progress::start(format!("query {id}"));
    loop {
        let execution = athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| crate::aws::failed(format!("waiting for query {id}"), e))?;
        let status = execution
            .query_execution()
            .and_then(|q| q.status())
            .context("Athena returned no status")?;
        match status.state() {
            Some(QueryExecutionState::Succeeded) => break,
            Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                return Err(anyhow::Error::new(Explained::new(
                    format!(
                        "query {id} {}: {}",
                        status
                            .state()
                            .map(|s| s.as_str().to_ascii_lowercase())
                            .unwrap_or_default(),
                        // One line: an engine's reason can span several.
                        status
                            .state_change_reason()
                            .unwrap_or("no reason given")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    format!("check the SQL against the stage's tables (database {database}; `SHOW TABLES` lists them)"),
                )));
            }
            other => progress.tick(other.map_or("waiting", |s| s.as_str())),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    let mut pages = athena
        .get_query_results()
        .query_execution_id(&id)
        .into_paginator()
        .send();
    let mut first_page = true;
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::aws::failed(format!("reading the results of query {id}"), e))?;
        let Some(set) = page.result_set() else {
            continue;
        };
        if first_page {
            columns = set
                .result_set_metadata()
                .map(|m| {
                    m.column_info()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut page_rows: Vec<Vec<Option<String>>> = set
            .rows()
            .iter()
            .map(|r| {
                r.data()
                    .iter()
                    .map(|d| d.var_char_value().map(str::to_owned))
                    .collect()
            })
            .collect();
        // A SELECT's first row repeats the column names (Athena user guide, "Working with
        // query results"); statements such as SHOW TABLES have none.
        let header: Vec<Option<String>> = columns.iter().cloned().map(Some).collect();
        if first_page && !columns.is_empty() && page_rows.first() == Some(&header) {
            page_rows.remove(0);
        }
        rows.extend(page_rows);
        first_page = false;
    }
    Ok(Rows { columns, rows })
}

/// Columns padded to their widest value, ` | ` between them, a `-+-` rule under the header:
/// the form README command 1 prints. Written here because a table crate's borders and
/// padding differ from it, and this is a dozen lines.
pub fn table(r: &Rows) -> String {
    let cell = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &r.rows {
        for (i, v) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell(v).chars().count());
            }
        }
    }
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        format!("{}\n", padded.join(" | ").trim_end())
    };
    let mut out = line(r.columns.clone());
    out.push_str(&format!(
        "{}\n",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    ));
    for row in &r.rows {
        out.push_str(&line(row.iter().map(cell).collect()));
    }
    if r.rows.is_empty() {
        out.push_str("(no rows)\n");
    }
    out
}

/// One JSON object per row, keyed by column name; NULL is `null`, every value text (as
/// Athena returns them).
pub fn json(r: &Rows) -> anyhow::Result<String> {
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = r
        .rows
        .iter()
        .map(|row| {
            r.columns
                .iter()
                .zip(row)
                .map(|(c, v)| {
                    (
                        c.clone(),
                        v.clone()
                            .map(serde_json::Value::String)
                            .unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect()
        })
        .collect();
    Ok(format!(
        "{}\n",
        crate::output::json(&serde_json::json!({ "rows": objects }))?
    ))
}

/// RFC 4180 CSV with a header row; NULL is an empty field.
pub fn csv(r: &Rows) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&r.columns)?;
    for row in &r.rows {
        w.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows {
            columns: vec!["city".into(), "events".into()],
            rows: vec![
                vec![Some("Rio de Janeiro".into()), Some("4".into())],
                vec![None, Some("12".into())],
                vec![Some("São \"Paulo\", SP".into()), Some("1".into())],
            ],
        }
    }

    #[test]
    fn the_table_pads_columns_and_rules_the_header() {
        let text = table(&rows());
        let lines: Vec<&str> = text.lines().collect();
        // The widest city is `São "Paulo", SP`: 15 characters (not bytes).
        assert_eq!(lines[0], format!("{:<15} | events", "city"));
        assert_eq!(lines[1], format!("{}-+-{}", "-".repeat(15), "-".repeat(6)));
        assert_eq!(lines[2], format!("{:<15} | 4", "Rio de Janeiro"));
        assert_eq!(lines[3], format!("{} | 12", " ".repeat(15)));
        assert_eq!(lines[4], "São \"Paulo\", SP | 1");
        let empty = Rows {
            columns: vec!["a".into()],
            rows: vec![],
        };
        assert_eq!(table(&empty), "a\n-\n(no rows)\n");
    }

    #[test]
    fn json_keeps_nulls_and_csv_quotes_what_needs_it() {
        let j: serde_json::Value = serde_json::from_str(&json(&rows()).unwrap()).unwrap();
        assert_eq!(j["format_version"], crate::output::FORMAT_VERSION);
        assert_eq!(j["rows"][1]["city"], serde_json::Value::Null);
        assert_eq!(j["rows"][0]["events"], "4");
        assert_eq!(
            csv(&rows()).unwrap(),
            "city,events\nRio de Janeiro,4\n,12\n\"São \"\"Paulo\"\", SP\",1\n"
        );
    }
}
