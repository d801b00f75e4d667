use super::{template, TABLE_FORMAT_ENV};
use crate::config::StageConfig;
use crate::warehouse::TABLES;

use crate::stage::StageName;
use crate::template::Format;

fn config(stage: &str, protected: bool) -> StageConfig {
    let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
    c.protected = protected;
    c
}

#[test]
fn renders_deterministically_in_both_formats() {
    for format in [Format::Json, Format::Yaml] {
        let a = template(&config("alice", false)).render(format).unwrap();
        let b = template(&config("alice", false)).render(format).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn has_every_resource_type_of_system_md() {
    let t = template(&config("alice", false));
    let types: std::collections::BTreeSet<_> = t.resource_types().map(|(_, ty)| ty).collect();
    for ty in [
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::IAM::Role",
        "AWS::IAM::InstanceProfile",
        "AWS::Glue::Database",
        "AWS::Glue::Crawler",
        "AWS::Glue::Table",
        "AWS::Logs::LogGroup",
        "AWS::Athena::WorkGroup",
    ] {
        assert!(types.contains(ty), "missing {ty}");
    }
    let tables = t
        .resource_types()
        .filter(|(_, ty)| *ty == "AWS::Glue::Table")
        .count();
    assert_eq!(tables, TABLES.len());
}

#[test]
fn protected_stage_retains_stateful_resources_only() {
    let v = template(&config("prod", true)).to_json().unwrap();
    let r = &v["Resources"];
    for id in [
        "SourceBucket",
        "WarehouseBucket",
        "JobsBucket",
        "GlueDatabase",
        "EtlLogGroup",
    ] {
        // Issue 12e: `Retain` kept named resources after a failed first create, so every
        // retry failed on names that already existed.
        assert_eq!(r[id]["DeletionPolicy"], "RetainExceptOnCreate", "{id}");
        assert_eq!(r[id]["UpdateReplacePolicy"], "Retain", "{id}");
    }
    assert!(r["EtlFunction"].get("DeletionPolicy").is_none());
    let v = template(&config("alice", false)).to_json().unwrap();
    assert_eq!(v["Resources"]["SourceBucket"]["DeletionPolicy"], "Delete");
}

#[test]
fn config_reaches_the_template() {
    let mut c = config("alice", false);
    c.lambda.memory_mb = 1024;
    c.emr.core_instance_count = 3;
    let v = template(&c).to_json().unwrap();
    let f = &v["Resources"]["EmrStarterFunction"]["Properties"];
    assert_eq!(f["MemorySize"], 1024);
    assert_eq!(
        f["Environment"]["Variables"]["EMR_CORE_INSTANCE_COUNT"],
        "3"
    );
    assert_eq!(
        f["Environment"]["Variables"]["EMR_RELEASE_LABEL"],
        "emr-7.5.0"
    );
}

#[test]
fn the_table_format_reaches_the_base_a_glue_tables_and_the_functions() {
    let mut c = config("alice", false);
    c.table_format = crate::warehouse::DataFormat::Ndjson;
    let v = template(&c).to_json().unwrap();
    let serde = |id: &str| {
        v["Resources"][id]["Properties"]["TableInput"]["StorageDescriptor"]["SerdeInfo"]
            ["SerializationLibrary"]
            .clone()
    };
    assert_eq!(serde("StudentsTable"), "org.openx.data.jsonserde.JsonSerDe");
    assert_eq!(
        serde("EventsTable"),
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
    let env = &v["Resources"]["EtlFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env[TABLE_FORMAT_ENV], "ndjson");
    let parquet = template(&config("alice", false)).to_json().unwrap();
    assert_eq!(
        parquet["Resources"]["StudentsTable"]["Properties"]["TableInput"]["StorageDescriptor"]
            ["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
}

#[test]
fn only_unscopable_actions_use_a_wildcard_resource() {
    let v = template(&config("alice", false)).to_json().unwrap();
    let mut wildcard_actions = std::collections::BTreeSet::new();
    for (_, r) in v["Resources"].as_object().unwrap() {
        if r["Type"] != "AWS::IAM::Role" {
            continue;
        }
        for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
            for s in p["PolicyDocument"]["Statement"].as_array().unwrap() {
                if s["Resource"].as_array().unwrap().iter().any(|r| r == "*") {
                    for a in s["Action"].as_array().unwrap() {
                        wildcard_actions.insert(a.as_str().unwrap().to_string());
                    }
                }
            }
        }
    }
    let expected: std::collections::BTreeSet<String> = [
        "elasticmapreduce:RunJobFlow",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(wildcard_actions, expected);
}

#[test]
fn every_taggable_resource_is_tagged() {
    let v = template(&config("alice", false)).to_json().unwrap();
    for (id, r) in v["Resources"].as_object().unwrap() {
        let untaggable = [
            "AWS::S3::BucketPolicy",
            "AWS::SNS::Subscription",
            "AWS::Lambda::Permission",
            "AWS::IAM::InstanceProfile",
            "AWS::Glue::Database",
            "AWS::Glue::Table",
        ];
        if untaggable.contains(&r["Type"].as_str().unwrap()) {
            continue;
        }
        let tags = &r["Properties"]["Tags"];
        let text = tags.to_string();
        assert!(
            text.contains("Stage") && text.contains("alice"),
            "{id} is not tagged: {tags}"
        );
    }
}
