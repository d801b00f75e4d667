//! The stage's run records and message claims (written by the functions and the Spark job;
//! [`etl::runs`]), read from the warehouse bucket with the caller's credentials.

use anyhow::Context;
use etl::runs::RunRecord;
use stack_model::warehouse::{message_key, run_record_key, runs_folder, Base};

use crate::aws::Aws;

/// A small JSON object of the bucket, or `None` when there is none.
async fn get_json<T: serde::de::DeserializeOwned>(
    aws: &Aws,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<T>> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let bytes = out
                .body
                .collect()
                .await
                .with_context(|| format!("reading s3://{bucket}/{key}"))?
                .into_bytes();
            Ok(serde_json::from_slice(&bytes).ok())
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(crate::aws::failed(
            format!("reading s3://{bucket}/{key}"),
            e,
        )),
    }
}

/// The run a message's claim names, once a function has taken the message.
pub async fn claimed_run(
    aws: &Aws,
    bucket: &str,
    base: Base,
    message_id: &str,
) -> anyhow::Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Claim {
        run: String,
    }
    Ok(
        get_json::<Claim>(aws, bucket, &message_key(base, message_id))
            .await?
            .map(|c| c.run),
    )
}

/// The record of `run`.
pub async fn record(
    aws: &Aws,
    bucket: &str,
    base: Base,
    run: &str,
) -> anyhow::Result<Option<RunRecord>> {
    get_json(aws, bucket, &run_record_key(base, run)).await
}

/// The base's run records, newest first, at most `limit`.
pub async fn list(
    aws: &Aws,
    bucket: &str,
    base: Base,
    limit: usize,
) -> anyhow::Result<Vec<RunRecord>> {
    let folder = runs_folder(base);
    let mut keys = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&folder)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::aws::failed(format!("listing s3://{bucket}/{folder}"), e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .filter(|k| k.ends_with(".json") && !k.ends_with("/lease.json"))
                .map(str::to_owned),
        );
    }
    // Run ids begin with their start time: the last keys are the newest runs.
    keys.sort();
    let mut out = Vec::new();
    for key in keys.iter().rev().take(limit) {
        if let Some(r) = get_json::<RunRecord>(aws, bucket, key).await? {
            out.push(r);
        }
    }
    Ok(out)
}
