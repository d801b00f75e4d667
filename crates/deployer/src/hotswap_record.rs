//! The record a hotswap leaves (`hotswap/<stack>.json` in the stage's artifacts bucket): the
//! artifacts the functions run, which the stack's parameters no longer name. `deploy` writes
//! and clears it, `diff` shows it, `gc` keeps what it names.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::aws::Aws;

/// What the functions run after a hotswap, which the stack's parameters no longer say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub lambda_code_key: String,
    pub spark_job_key: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

impl Record {
    /// What the functions run, as the stage stack's parameters would name it.
    pub fn parameters(&self, bucket: &str) -> Vec<(String, String)> {
        crate::stage_stack::stack_parameters(bucket, &self.lambda_code_key, &self.spark_job_key)
    }
}

/// Where the records live in the artifacts bucket.
pub const RECORD_PREFIX: &str = "hotswap/";

fn record_key(stack: &str) -> String {
    format!("{RECORD_PREFIX}{stack}.json")
}

/// The bytes of `key`, if it exists.
async fn fetch(aws: &Aws, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => Ok(Some(
            o.body
                .collect()
                .await
                .with_context(|| format!("reading s3://{bucket}/{key}"))?
                .to_vec(),
        )),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(crate::aws::failed(
            format!("reading s3://{bucket}/{key}"),
            e,
        )),
    }
}

/// The record stored at `key` (any stack's), if it is one.
pub async fn read_key(aws: &Aws, bucket: &str, key: &str) -> anyhow::Result<Option<Record>> {
    Ok(fetch(aws, bucket, key)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The record of `stack`, if its functions run hotswapped artifacts.
pub async fn read(aws: &Aws, bucket: &str, stack: &str) -> anyhow::Result<Option<Record>> {
    let key = record_key(stack);
    let Some(bytes) = fetch(aws, bucket, &key).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
        format!("s3://{bucket}/{key} is not a hotswap record: delete it and deploy again")
    })?))
}

pub async fn write(aws: &Aws, bucket: &str, stack: &str, r: &Record) -> anyhow::Result<()> {
    let key = record_key(stack);
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(serde_json::to_vec_pretty(r)?.into())
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("writing s3://{bucket}/{key}"), e))?;
    Ok(())
}

pub async fn forget(aws: &Aws, bucket: &str, stack: &str) -> anyhow::Result<()> {
    let key = record_key(stack);
    aws.s3
        .delete_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("deleting s3://{bucket}/{key}"), e))?;
    Ok(())
}
