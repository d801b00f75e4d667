//! Adopting what a forced teardown of a protected stage left behind.
//!
//! A protected stage retains its data when its stack goes (`teardown --force`): the buckets
//! and their TLS-only policies, the Glue database, the log groups, and on hardened stages the
//! KMS key and its alias. A later first deploy of the stage would fail creating them again
//! under the same names. Instead, `deploy` finds each one that exists and adopts it into the
//! new stack with an import change set (CloudFormation user guide, "Import AWS resources into
//! a CloudFormation stack": a change set of type `IMPORT` whose template holds only the
//! resources imported, each with a `DeletionPolicy`, and names each by its identifier), then
//! creates the rest with the usual update. A bucket is adopted only when it carries the stage's
//! `Stage` tag (a bucket of that name made by someone else is left alone, and the create fails
//! on its name); the other names (database, log groups, key alias) are the stage's own by
//! their stage-specific names.

use std::collections::BTreeSet;

use aws_sdk_cloudformation::types::{ChangeSetStatus, ChangeSetType, ResourceToImport};
use serde_json::{json, Value};

use crate::aws::{failed, Aws};
use crate::cloudformation::apply::{refused, wait_settled, ApplyError};
use crate::cloudformation::change_set::{self, TemplateSource};
use crate::cloudformation::status::StackState;

/// A retained resource of the template that exists, and how CloudFormation names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub logical_id: String,
    pub resource_type: String,
    /// The identifier's properties and values (`BucketName`, `KeyId`...).
    pub identifier: Vec<(String, String)>,
}

/// A `Fn::Sub` text of pseudo parameters only (the retained resources' names), resolved.
fn sub(v: &Value, account: &str, region: &str) -> Option<String> {
    let text = v.as_str().or_else(|| v["Fn::Sub"].as_str())?;
    let out = text
        .replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region);
    (!out.contains("${")).then_some(out)
}

/// The template's resources a stack deletion retains.
fn retained(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| crate::stage_stack::is_retained(&v["DeletionPolicy"]))
                .map(|(id, v)| (id.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The retained resources of `template` that exist in the stage's account and region.
pub async fn find(
    aws: &Aws,
    template: &Value,
    account: &str,
    region: &str,
) -> anyhow::Result<Vec<Found>> {
    let resources = retained(template);
    let name_of = |id: &str| -> Option<String> {
        sub(
            &template["Resources"][id]["Properties"]["BucketName"],
            account,
            region,
        )
    };
    let glue = aws_sdk_glue::Client::new(&aws.conf);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws.conf);
    let sqs = aws_sdk_sqs::Client::new(&aws.conf);
    let mut found = Vec::new();
    for (id, r) in &resources {
        let p = &r["Properties"];
        let ty = r["Type"].as_str().unwrap_or_default();
        let identifier = match ty {
            "AWS::S3::Bucket" => {
                let Some(name) = sub(&p["BucketName"], account, region) else {
                    continue;
                };
                match aws.s3.head_bucket().bucket(&name).send().await {
                    Ok(_) => {}
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                        continue
                    }
                    Err(e) => return Err(failed(format!("looking for bucket {name}"), e)),
                }
                // Only the stage's own: a bucket of that name someone else made is left alone,
                // and the create then fails on its name, as it should.
                if !stage_tagged_bucket(aws, &name, template, id).await? {
                    continue;
                }
                vec![("BucketName".to_owned(), name)]
            }
            "AWS::S3::BucketPolicy" => {
                let Some(bucket) = p["Bucket"]["Ref"].as_str().and_then(name_of) else {
                    continue;
                };
                match aws.s3.get_bucket_policy().bucket(&bucket).send().await {
                    Ok(_) => vec![("Bucket".to_owned(), bucket)],
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                        continue
                    }
                    Err(e) => {
                        return Err(failed(format!("reading the policy of bucket {bucket}"), e))
                    }
                }
            }
            "AWS::Glue::Database" => {
                let Some(name) = p["DatabaseInput"]["Name"].as_str() else {
                    continue;
                };
                match glue.get_database().name(name).send().await {
                    Ok(_) => vec![("DatabaseName".to_owned(), name.to_owned())],
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_entity_not_found_exception()) =>
                    {
                        continue
                    }
                    Err(e) => return Err(failed(format!("looking for Glue database {name}"), e)),
                }
            }
            "AWS::Logs::LogGroup" => {
                let Some(name) = p["LogGroupName"].as_str() else {
                    continue;
                };
                let out = logs
                    .describe_log_groups()
                    .log_group_name_prefix(name)
                    .send()
                    .await
                    .map_err(|e| failed(format!("looking for log group {name}"), e))?;
                if !out
                    .log_groups()
                    .iter()
                    .any(|g| g.log_group_name() == Some(name))
                {
                    continue;
                }
                vec![("LogGroupName".to_owned(), name.to_owned())]
            }
            "AWS::SQS::Queue" => {
                let Some(name) = p["QueueName"].as_str() else {
                    continue;
                };
                match sqs.get_queue_url().queue_name(name).send().await {
                    Ok(out) => vec![(
                        "QueueUrl".to_owned(),
                        out.queue_url().unwrap_or_default().to_owned(),
                    )],
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_queue_does_not_exist()) =>
                    {
                        continue
                    }
                    Err(e) => return Err(failed(format!("looking for queue {name}"), e)),
                }
            }
            "AWS::KMS::Alias" => {
                let Some(alias) = p["AliasName"].as_str() else {
                    continue;
                };
                match key_of(aws, alias).await? {
                    Some(_) => vec![("AliasName".to_owned(), alias.to_owned())],
                    None => continue,
                }
            }
            "AWS::KMS::Key" => {
                // Found by the alias the template gives it (retained with it).
                let alias = resources.iter().find_map(|(_, a)| {
                    (a["Type"] == "AWS::KMS::Alias"
                        && a["Properties"]["TargetKeyId"]["Ref"] == json!(id))
                    .then(|| a["Properties"]["AliasName"].as_str().map(str::to_owned))
                    .flatten()
                });
                let Some(alias) = alias else { continue };
                match key_of(aws, &alias).await? {
                    Some(key) => vec![("KeyId".to_owned(), key)],
                    None => continue,
                }
            }
            _ => continue,
        };
        found.push(Found {
            logical_id: id.clone(),
            resource_type: ty.to_owned(),
            identifier,
        });
    }
    Ok(closed(template, found))
}

/// Whether bucket `name` carries the `Stage` tag the template gives resource `id`.
async fn stage_tagged_bucket(
    aws: &Aws,
    name: &str,
    template: &Value,
    id: &str,
) -> anyhow::Result<bool> {
    let want = template["Resources"][id]["Properties"]["Tags"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["Key"] == "Stage"))
        .and_then(|t| t["Value"].as_str())
        .map(str::to_owned);
    let Some(want) = want else { return Ok(false) };
    match aws.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .any(|t| t.key() == "Stage" && t.value() == want)),
        // No tags at all: not the stage's.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
        Err(e) => Err(failed(format!("reading the tags of bucket {name}"), e)),
    }
}

/// The id of the key `alias` names, from the list of aliases (ListAliases takes no resource;
/// DescribeKey by alias is authorized through `kms:ResourceAliases`, which an alias that does
/// not exist cannot match). A key pending deletion keeps its alias until deleted: its import
/// then fails, naming it, with nothing else changed.
async fn key_of(aws: &Aws, alias: &str) -> anyhow::Result<Option<String>> {
    let kms = aws_sdk_kms::Client::new(&aws.conf);
    let mut pages = kms.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed("listing the KMS aliases", e))?;
        if let Some(key) = page
            .aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id())
        {
            return Ok(Some(key.to_owned()));
        }
    }
    Ok(None)
}

/// The logical ids a value references (`Ref`, `Fn::GetAtt`).
fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("Ref").and_then(Value::as_str) {
                out.insert(r.to_owned());
            }
            if let Some(g) = m.get("Fn::GetAtt").and_then(|g| g[0].as_str()) {
                out.insert(g.to_owned());
            }
            m.values().for_each(|x| references(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// Only what an import template can hold: a resource whose properties reference another
/// resource of the template is imported only when that one is too (otherwise it is left to
/// the update, which creates it after what it references).
fn closed(template: &Value, mut found: Vec<Found>) -> Vec<Found> {
    let all: BTreeSet<String> = template["Resources"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    loop {
        let ids: BTreeSet<String> = found.iter().map(|f| f.logical_id.clone()).collect();
        let before = found.len();
        found.retain(|f| {
            let mut refs = BTreeSet::new();
            references(&template["Resources"][&f.logical_id], &mut refs);
            refs.iter()
                .filter(|r| all.contains(*r))
                .all(|r| ids.contains(r))
        });
        if found.len() == before {
            return found;
        }
    }
}

/// The import change set's template: the rendered template's parameters and the found
/// resources, without outputs (they may name resources not imported yet).
pub fn import_template(template: &Value, found: &[Found]) -> Value {
    let mut t = template.clone();
    let keep: BTreeSet<&str> = found.iter().map(|f| f.logical_id.as_str()).collect();
    if let Some(r) = t["Resources"].as_object_mut() {
        r.retain(|id, _| keep.contains(id.as_str()));
    }
    if let Some(o) = t.as_object_mut() {
        o.remove("Outputs");
    }
    t
}

/// Imports `found` into the new stack `stack` (as `role_arn`); on success the stack exists,
/// holding them.
pub async fn import(
    aws: &Aws,
    stack: &str,
    template: &Value,
    found: &[Found],
    parameters: &[(String, String)],
    role_arn: &str,
) -> Result<(), ApplyError> {
    let body =
        serde_json::to_string(&import_template(template, found)).map_err(anyhow::Error::from)?;
    let to_import: Vec<ResourceToImport> = found
        .iter()
        .map(|f| {
            ResourceToImport::builder()
                .resource_type(&f.resource_type)
                .logical_resource_id(&f.logical_id)
                .set_resource_identifier(Some(f.identifier.iter().cloned().collect()))
                .build()
        })
        .collect();
    let name = change_set::unique_name("deployer-import");
    let id = change_set::create(
        &aws.cfn,
        &change_set::Request {
            stack,
            name: &name,
            kind: ChangeSetType::Import,
            template: &TemplateSource::Body(body),
            parameters,
            // An import changes no tags (CloudFormation refuses it): the update that follows
            // gives the stack its tags.
            tags: &[],
            import: &to_import,
            role_arn: Some(role_arn),
        },
    )
    .await?;
    let cs = change_set::wait(&aws.cfn, stack, &id).await?;
    if cs.status() == Some(&ChangeSetStatus::Failed) {
        change_set::delete(&aws.cfn, stack, &id).await;
        return Err(refused(&aws.cfn, stack, &id, &cs).await);
    }
    aws.cfn
        .execute_change_set()
        .change_set_name(&id)
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| failed(format!("executing the import change set for {stack}"), e))?;
    match wait_settled(&aws.cfn, stack, None).await? {
        StackState::Ready(status) if status == "IMPORT_COMPLETE" => Ok(()),
        other => Err(ApplyError::Refused(format!(
            "importing what the forced teardown of {stack} left ended {other:?}; nothing else was changed: see `deployer info` and the stack's events"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_imported_only_with_what_it_references() {
        let t = json!({"Resources": {
            "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain"},
            "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {
                "BucketName": {"Fn::Sub": "b-${AWS::AccountId}-${AWS::Region}"},
                "BucketEncryption": {"K": {"Fn::GetAtt": ["Key", "Arn"]}}}},
            "Policy": {"Type": "AWS::S3::BucketPolicy", "DeletionPolicy": "Retain", "Properties": {"Bucket": {"Ref": "Bucket"}}},
            "Function": {"Type": "AWS::Lambda::Function", "Properties": {}},
        }, "Outputs": {"X": {"Value": {"Ref": "Function"}}}});
        let f = |id: &str, ty: &str| Found {
            logical_id: id.into(),
            resource_type: ty.into(),
            identifier: vec![],
        };
        let all = vec![
            f("Bucket", "AWS::S3::Bucket"),
            f("Policy", "AWS::S3::BucketPolicy"),
        ];
        // The key was not found: the bucket, which names it, waits for the update, and the
        // policy with it.
        assert!(closed(&t, all.clone()).is_empty());
        let with_key = [all, vec![f("Key", "AWS::KMS::Key")]].concat();
        assert_eq!(closed(&t, with_key.clone()).len(), 3);
        let it = import_template(&t, &with_key);
        assert!(it.get("Outputs").is_none());
        assert_eq!(it["Resources"].as_object().unwrap().len(), 3);
        assert_eq!(
            sub(
                &t["Resources"]["Bucket"]["Properties"]["BucketName"],
                "1",
                "r"
            )
            .as_deref(),
            Some("b-1-r")
        );
        assert_eq!(retained(&t).len(), 3);
    }
}
