use super::{template, TABLE_FORMAT_ENV};
use crate::config::{BaseBEngine, StageConfig};
use crate::warehouse::TABLES;

use crate::stage::StageName;
use crate::template::Format;

fn config(stage: &str, protected: bool) -> StageConfig {
    let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
    c.protected = protected;
    c
}

/// An unprotected stage whose base b runs on EMR (`base_b_engine: emr`).
fn emr(stage: &str) -> StageConfig {
    let mut c = config(stage, false);
    c.base_b_engine = BaseBEngine::Emr;
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
    let t = template(&emr("alice"));
    let types: std::collections::BTreeSet<_> = t.resource_types().map(|(_, ty)| ty).collect();
    for ty in [
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::IAM::Role",
        "AWS::EMRServerless::Application",
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

/// A stage on the function engine has base b's function on the EMR topic, and nothing of
/// EMR: no starter, roles, instance profile or network.
#[test]
fn the_function_engine_replaces_every_emr_part() {
    let v = template(&config("alice", false)).to_json().unwrap();
    let r = v["Resources"].as_object().unwrap();
    assert!(r.contains_key("SiteEventsFunction") && r.contains_key("SiteEventsSubscription"));
    let emr_parts: Vec<&String> = r
        .iter()
        .filter(|(id, res)| {
            (id.starts_with("Emr") && *id != "EmrTriggerTopic")
                || res["Type"].as_str().unwrap().starts_with("AWS::EC2::")
        })
        .map(|(id, _)| id)
        .collect();
    assert!(emr_parts.is_empty(), "{emr_parts:?}");
    let topic = &r["SiteEventsSubscription"]["Properties"]["TopicArn"];
    assert_eq!(topic["Ref"], "EmrTriggerTopic");
    let env = &r["SiteEventsFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env["PIPELINE_FUNCTION"], "site-events");
    // Its role reads the events and the students table and writes only base b.
    let role = r["SiteEventsRole"]["Properties"]["Policies"][0]["PolicyDocument"].to_string();
    for pattern in ["/b/*", "/a/students/*"] {
        assert!(role.contains(pattern), "{pattern} in {role}");
    }
    assert!(!role.contains("/a/*"), "no write to base a: {role}");
    let e = template(&emr("alice")).to_json().unwrap();
    assert!(e["Resources"].get("SiteEventsFunction").is_none());
    assert!(e["Resources"].get("EmrStarterFunction").is_some());
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
    let mut c = emr("alice");
    c.lambda.memory_mb = 1024;
    c.emr.max_vcpu = 48;
    c.emr.max_memory_gb = 192;
    c.emr.idle_stop_minutes = 30;
    let v = template(&c).to_json().unwrap();
    let f = &v["Resources"]["EmrStarterFunction"]["Properties"];
    assert_eq!(f["MemorySize"], 1024);
    let app = &v["Resources"]["EmrApplication"]["Properties"];
    assert_eq!(app["ReleaseLabel"], "emr-7.5.0");
    assert_eq!(app["MaximumCapacity"]["Cpu"], "48 vCPU");
    assert_eq!(app["MaximumCapacity"]["Memory"], "192 GB");
    assert_eq!(app["AutoStopConfiguration"]["IdleTimeoutMinutes"], 30);
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
    for c in [config("alice", false), emr("alice")] {
        let v = template(&c).to_json().unwrap();
        let expected = vec!["xray:PutTelemetryRecords", "xray:PutTraceSegments"];
        assert_eq!(wildcard_actions(&v), expected);
    }
}

fn wildcard_actions(v: &serde_json::Value) -> Vec<String> {
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
    wildcard_actions.into_iter().collect()
}

/// Issue 28, `tags:`: the user's tags reach every resource that carries the stage's.
#[test]
fn user_tags_reach_every_tagged_resource() {
    let mut c = emr("alice");
    c.tags.insert("team".into(), "data".into());
    let v = template(&c).to_json().unwrap();
    let mut tagged = 0;
    for (id, r) in v["Resources"].as_object().unwrap() {
        let tags = &r["Properties"]["Tags"];
        let text = tags.to_string();
        if text.contains("Stage") {
            tagged += 1;
            assert!(
                text.contains("team") && text.contains("data"),
                "{id}: {tags}"
            );
        }
    }
    assert!(tagged > 10, "{tagged}");
}

#[test]
fn every_taggable_resource_is_tagged() {
    let v = template(&config("alice", false)).to_json().unwrap();
    for (id, r) in v["Resources"].as_object().unwrap() {
        let untaggable = [
            "AWS::S3::BucketPolicy",
            "AWS::SNS::Subscription",
            "AWS::Lambda::Permission",
            // No Tags property (its schema): it is part of its function.
            "AWS::Lambda::EventInvokeConfig",
            "AWS::IAM::InstanceProfile",
            "AWS::Glue::Database",
            "AWS::Glue::Table",
            "AWS::EC2::SubnetRouteTableAssociation",
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

/// Issue 25: base b's Spark job runs on an EMR Serverless application with no network of the
/// stage's: no VPC, subnet, route table, endpoint, EMR service or EC2 role, instance profile
/// or EMR tag in any stage. Template only (the emulator runs no job).
#[test]
fn the_emr_engine_is_an_application_without_a_network() {
    let mut prod = emr("prod");
    prod.protected = true;
    prod.hardened = true;
    for c in [emr("alice"), prod] {
        let v = template(&c).to_json().unwrap();
        let r = v["Resources"].as_object().unwrap();
        for (id, resource) in r {
            let kind = resource["Type"].as_str().unwrap();
            assert!(
                !kind.starts_with("AWS::EC2::") && kind != "AWS::IAM::InstanceProfile",
                "{id}: {kind}"
            );
            assert!(
                !resource.to_string().contains(super::EMR_MANAGED_POLICY_TAG),
                "{id} carries EMR's managed-policy tag"
            );
        }
        for id in super::retired::LOGICAL_IDS {
            assert!(!r.contains_key(*id), "{id} is retired");
        }
        let app = &r["EmrApplication"]["Properties"];
        assert_eq!(app["Type"], "Spark");
        assert!(app["ReleaseLabel"].as_str().unwrap().starts_with("emr-7."));
        assert_eq!(app["AutoStartConfiguration"]["Enabled"], true);
        assert_eq!(app["AutoStopConfiguration"]["Enabled"], true);
        assert!(app.get("InitialCapacity").is_none(), "billed while idle");
        assert!(app.get("NetworkConfiguration").is_none());
        assert_eq!(
            app["MonitoringConfiguration"]["S3MonitoringConfiguration"]["LogUri"]["Fn::Sub"][0],
            "s3://${Bucket}/logs/"
        );
        let env = &r["EmrStarterFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["EMR_APPLICATION_ID"]["Ref"], "EmrApplication");
        assert_eq!(env["EMR_JOB_ROLE_ARN"]["Fn::GetAtt"][0], "EmrJobRole");
    }
    // A job that needs a VPC names it.
    let mut c = emr("alice");
    c.emr.network = Some(crate::config::EmrNetwork {
        subnet_ids: vec!["subnet-0123456789abcdef0".into()],
        security_group_ids: vec!["sg-0123456789abcdef0".into()],
    });
    let v = template(&c).to_json().unwrap();
    let n = &v["Resources"]["EmrApplication"]["Properties"]["NetworkConfiguration"];
    assert_eq!(n["SubnetIds"][0], "subnet-0123456789abcdef0");
    assert_eq!(n["SecurityGroupIds"][0], "sg-0123456789abcdef0");
}

/// The starter may start runs on its own application only, and pass the job role to EMR
/// Serverless only. Template only; the emulator checks StartJobRun against it
/// (tests/e2e/test_etl_lambda.py).
#[test]
fn the_starter_starts_runs_of_its_application_only() {
    let v = template(&emr("alice")).to_json().unwrap();
    let statements = v["Resources"]["EmrStarterRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let start = statements
        .iter()
        .find(|s| s["Sid"] == "StartJobRun")
        .unwrap();
    assert_eq!(start["Resource"][0]["Fn::GetAtt"][0], "EmrApplication");
    let text = serde_json::to_string(&statements).unwrap();
    assert!(!text.contains("elasticmapreduce:"), "{text}");
}

/// Issue 12c, on EMR Serverless: EMRFS lists and aborts multipart uploads; Hadoop probes a
/// folder's own key and its `_$folder$` marker; a hotswapped job (a new key under `spark/`)
/// is readable. Template only; the hotswapped read is checked in the emulator
/// (tests/e2e/test_hotswap.py).
#[test]
fn the_job_role_covers_what_emrfs_does() {
    let v = template(&emr("alice")).to_json().unwrap();
    let text = v["Resources"]["EmrJobRole"]["Properties"]["Policies"][0].to_string();
    for needed in [
        "s3:ListBucketMultipartUploads",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "${Arn}/b_$folder$",
        "\"${Arn}/b\"",
        "${Arn}/b/*",
        "${Arn}/spark/*",
        "${Arn}/logs/*",
    ] {
        assert!(text.contains(needed), "the EMR job role lacks {needed}");
    }
}

/// Issues 12j and 26: every table is read through its manifest (one object, replaced whole
/// by a run). Checks the template only: Athena's reading of the
/// manifest is exercised against the emulator (tests/e2e/test_manifest_switch.py).
#[test]
fn every_table_is_read_through_its_manifest() {
    let v = template(&config("alice", false)).to_json().unwrap();
    for t in crate::warehouse::TABLES {
        let sd = &v["Resources"][format!("{}Table", t.pascal_name())]["Properties"]["TableInput"]
            ["StorageDescriptor"];
        let location = sd["Location"]["Fn::Sub"].as_str().unwrap();
        let input = sd["InputFormat"].as_str().unwrap();
        // Both bases publish through manifests (issue 26): every table reads its manifest.
        assert_eq!(
            input, "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat",
            "{}",
            t.name
        );
        assert!(
            location.ends_with(&format!("/{}_symlink_format_manifest/", t.prefix())),
            "{}: {location}",
            t.name
        );
        // One manifest holds the whole table: no table is partitioned.
        let input =
            &v["Resources"][format!("{}Table", t.pascal_name())]["Properties"]["TableInput"];
        assert!(
            input["PartitionKeys"]
                .as_array()
                .is_none_or(|k| k.is_empty()),
            "{}",
            t.name
        );
    }
}

/// Issue 13: a hardened stage's buckets deliver access logs to its own log bucket, or to the
/// configured one; other stages keep none. Template only: the emulator stores the logging
/// configuration (patch bucket-logging) but delivers no logs.
#[test]
fn hardened_buckets_log_to_the_stage_log_bucket_or_the_configured_one() {
    let logging = |v: &serde_json::Value, id: &str| {
        v["Resources"][id]["Properties"]["LoggingConfiguration"].clone()
    };
    let alice = template(&config("alice", false)).to_json().unwrap();
    assert!(alice["Resources"].get("AccessLogsBucket").is_none());
    assert!(logging(&alice, "SourceBucket").is_null());

    let mut hardened = config("prod", true);
    hardened.hardened = true;
    let prod = template(&hardened).to_json().unwrap();
    for (id, prefix) in [
        ("SourceBucket", "source/"),
        ("JobsBucket", "jobs/"),
        ("WarehouseBucket", "warehouse/"),
    ] {
        let l = logging(&prod, id);
        assert_eq!(
            l["DestinationBucketName"]["Ref"], "AccessLogsBucket",
            "{id}"
        );
        assert_eq!(l["LogFilePrefix"], prefix, "{id}");
    }
    let logs = &prod["Resources"]["AccessLogsBucket"]["Properties"];
    // S3 refuses SSE-KMS default encryption on a log destination and advises against a log
    // bucket logging itself.
    assert_eq!(
        logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    assert!(logs["LoggingConfiguration"].is_null());
    let policy = &prod["Resources"]["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"];
    let delivery = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "AllowAccessLogDelivery")
        .unwrap();
    assert_eq!(
        delivery["Principal"]["Service"][0],
        "logging.s3.amazonaws.com"
    );
    assert_eq!(
        delivery["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"],
        "arn:${AWS::Partition}:s3:::pdcase-prod-*-${AWS::AccountId}-${AWS::Region}"
    );

    let mut c = hardened.clone();
    c.access_logs_bucket = Some("acme-s3-access-logs".into());
    let v = template(&c).to_json().unwrap();
    assert!(v["Resources"].get("AccessLogsBucket").is_none());
    let l = logging(&v, "WarehouseBucket");
    assert_eq!(l["DestinationBucketName"], "acme-s3-access-logs");
    assert_eq!(l["LogFilePrefix"], "pdcase-prod/warehouse/");
}

/// Issue 12d: the crawler rewrote the declared tables (projection parameters, types).
#[test]
fn the_crawler_only_logs_schema_changes_and_partitions_inherit_the_table() {
    let v = template(&config("alice", false)).to_json().unwrap();
    let p = &v["Resources"]["WarehouseCrawler"]["Properties"];
    assert_eq!(p["SchemaChangePolicy"]["UpdateBehavior"], "LOG");
    assert_eq!(p["SchemaChangePolicy"]["DeleteBehavior"], "LOG");
    let conf: serde_json::Value =
        serde_json::from_str(p["Configuration"].as_str().unwrap()).unwrap();
    assert_eq!(
        conf["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"],
        "InheritFromTable"
    );
}

/// Issue 12, part 4: what no emulator enforces, pinned. Each role is trusted by exactly one
/// service, and `iam:PassRole` names exactly the roles it passes, each only to its service.
#[test]
fn trust_principals_and_pass_role_targets_are_pinned() {
    let v = template(&emr("alice")).to_json().unwrap();
    let r = v["Resources"].as_object().unwrap();
    let trusted = |id: &str| -> Vec<String> {
        let doc = &r[id]["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        let statements = doc.as_array().unwrap();
        assert_eq!(statements.len(), 1, "{id}");
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!(["sts:AssumeRole"]),
            "{id}"
        );
        statements[0]["Principal"]["Service"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    for (role, service) in [
        ("EtlRole", "lambda.amazonaws.com"),
        ("EmrStarterRole", "lambda.amazonaws.com"),
        ("TableRefresherRole", "lambda.amazonaws.com"),
        ("CrawlerRole", "glue.amazonaws.com"),
        ("EmrJobRole", "emr-serverless.amazonaws.com"),
    ] {
        assert_eq!(trusted(role), [service], "{role}'s trust");
    }
    let roles: Vec<&String> = r
        .keys()
        .filter(|id| r[*id]["Type"] == "AWS::IAM::Role")
        .collect();
    assert_eq!(roles.len(), 5, "a new role needs its trust pinned here");

    // (role holding the permission) -> [(passed role's ARN, service it may be passed to)].
    let mut passes: Vec<(String, String, String)> = Vec::new();
    for id in &roles {
        for p in r[*id]["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for s in p["PolicyDocument"]["Statement"].as_array().unwrap() {
                if !s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "iam:PassRole")
                {
                    continue;
                }
                assert_eq!(s["Action"].as_array().unwrap().len(), 1, "PassRole alone");
                let to = s["Condition"]["StringEquals"]["iam:PassedToService"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}: PassRole without iam:PassedToService"))
                    .to_string();
                for res in s["Resource"].as_array().unwrap() {
                    let target = res
                        .get("Fn::GetAtt")
                        .map(|g| g[0].as_str().unwrap().to_string())
                        .or_else(|| res.get("Fn::Sub").map(|t| t.as_str().unwrap().to_string()))
                        .unwrap();
                    passes.push((id.to_string(), target, to.clone()));
                }
            }
        }
    }
    passes.sort();
    assert_eq!(
        passes,
        [(
            "EmrStarterRole".to_string(),
            "EmrJobRole".to_string(),
            "emr-serverless.amazonaws.com".to_string()
        )]
    );
}

/// The retired resources render as the last version before EMR Serverless rendered them (its
/// template for stage `upgrade`, kept for the upgrade's e2e test): the CloudFormation role's
/// delete permissions are computed from this rendering, so it must name what stages hold.
#[test]
fn the_retired_resources_are_those_earlier_stages_hold() {
    let held: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../tests/e2e/data/emr_on_ec2_stage_upgrade.json"
    ))
    .unwrap();
    let mut c = emr("upgrade");
    c.base_b_engine = BaseBEngine::Emr;
    let retired = super::retired::template(&c).to_json().unwrap();
    for id in super::retired::LOGICAL_IDS {
        assert_eq!(
            retired["Resources"][*id], held["Resources"][*id],
            "{id} renders otherwise than stages hold it"
        );
    }
    let held_emr: Vec<&String> = held["Resources"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|id| {
            id.starts_with("Emr")
                && ![
                    "EmrTriggerTopic",
                    "EmrStarterFunction",
                    "EmrStarterRole",
                    "EmrStarterLogGroup",
                ]
                .contains(&id.as_str())
                && !id.starts_with("EmrStarter")
        })
        .collect();
    assert_eq!(
        held_emr.len(),
        super::retired::LOGICAL_IDS.len(),
        "{held_emr:?}"
    );
}

/// Issue 26, part 3: every function retries a failed asynchronous invocation twice within an
/// hour, then sends it to the stage's failure queue, which it may also send to itself; the
/// queue is encrypted with the stage's key on hardened stages and by SQS otherwise.
#[test]
fn every_function_sends_its_last_failure_to_the_stages_failure_queue() {
    for hardened in [false, true] {
        let mut c = config("prod", hardened);
        c.hardened = hardened;
        let v = template(&c).to_json().unwrap();
        let resources = v["Resources"].as_object().unwrap();
        let functions: Vec<&String> = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
            .map(|(id, _)| id)
            .collect();
        assert!(functions.len() >= 3);
        for id in functions {
            let base = id.trim_end_matches("Function");
            let cfg = &resources[&format!("{base}InvokeConfig")]["Properties"];
            assert_eq!(cfg["FunctionName"], serde_json::json!({"Ref": id}));
            assert_eq!(cfg["Qualifier"], "$LATEST");
            assert_eq!(cfg["MaximumRetryAttempts"], 2);
            assert_eq!(cfg["MaximumEventAgeInSeconds"], 3600);
            assert_eq!(
                cfg["DestinationConfig"]["OnFailure"]["Destination"],
                serde_json::json!({"Fn::GetAtt": ["FailureQueue", "Arn"]})
            );
            let role = &resources[&format!("{base}Role")]["Properties"];
            let text = role["Policies"].to_string();
            assert!(
                text.contains("sqs:SendMessage") && text.contains("FailureQueue"),
                "{base}: {text}"
            );
            let env = &resources[id]["Properties"]["Environment"]["Variables"];
            assert_eq!(
                env["FAILURE_QUEUE_URL"],
                serde_json::json!({"Ref": "FailureQueue"})
            );
        }
        let queue = &resources["FailureQueue"]["Properties"];
        assert_eq!(queue["QueueName"], "pdcase-prod-failures");
        if hardened {
            assert_eq!(
                queue["KmsMasterKeyId"],
                serde_json::json!({"Fn::GetAtt": ["StageKey", "Arn"]})
            );
            assert!(queue.get("SqsManagedSseEnabled").is_none());
        } else {
            assert_eq!(queue["SqsManagedSseEnabled"], true);
            assert!(queue.get("KmsMasterKeyId").is_none());
        }
    }
}

/// The public logical ids name resources of the templates, of the types their docs say, and
/// the handles carry the same ids.
#[test]
fn the_public_ids_and_handles_name_the_templates_resources() {
    use super::{compose, ids};
    let mut hardened = emr("alice");
    hardened.hardened = true;
    let on_emr = compose(&hardened);
    let on_function = compose(&config("alice", false));
    let type_of = |s: &super::Stage, id: &str| s.template.type_of(id).map(str::to_owned);
    for (id, ty) in [
        (ids::SOURCE_BUCKET, "AWS::S3::Bucket"),
        (ids::JOBS_BUCKET, "AWS::S3::Bucket"),
        (ids::WAREHOUSE_BUCKET, "AWS::S3::Bucket"),
        (ids::ETL_TOPIC, "AWS::SNS::Topic"),
        (ids::EMR_TOPIC, "AWS::SNS::Topic"),
        (ids::DATABASE, "AWS::Glue::Database"),
        (ids::CRAWLER, "AWS::Glue::Crawler"),
        (ids::ETL_FUNCTION, "AWS::Lambda::Function"),
        (ids::ETL_LOG_GROUP, "AWS::Logs::LogGroup"),
        (ids::TABLE_REFRESHER_FUNCTION, "AWS::Lambda::Function"),
        (ids::FAILURE_QUEUE, "AWS::SQS::Queue"),
        (ids::WORKGROUP, "AWS::Athena::WorkGroup"),
    ] {
        for s in [&on_emr, &on_function] {
            assert_eq!(type_of(s, id).as_deref(), Some(ty), "{id}");
        }
    }
    assert_eq!(
        type_of(&on_function, ids::SITE_EVENTS_FUNCTION).as_deref(),
        Some("AWS::Lambda::Function")
    );
    assert_eq!(
        type_of(&on_emr, ids::EMR_STARTER_FUNCTION).as_deref(),
        Some("AWS::Lambda::Function")
    );
    assert_eq!(
        type_of(&on_emr, ids::EMR_APPLICATION).as_deref(),
        Some("AWS::EMRServerless::Application")
    );
    assert_eq!(
        type_of(&on_emr, ids::STAGE_KEY).as_deref(),
        Some("AWS::KMS::Key")
    );
    assert_eq!(type_of(&on_function, ids::STAGE_KEY), None);
    let h = &on_emr.handles;
    assert_eq!(h.etl_function.id(), ids::ETL_FUNCTION);
    assert_eq!(h.base_b_function.id(), ids::EMR_STARTER_FUNCTION);
    assert_eq!(
        on_function.handles.base_b_function.id(),
        ids::SITE_EVENTS_FUNCTION
    );
    assert_eq!(
        h.emr_application.as_ref().map(|a| a.id()),
        Some(ids::EMR_APPLICATION)
    );
    assert_eq!(h.key.as_ref().map(|k| k.id()), Some(ids::STAGE_KEY));
    assert_eq!(
        [
            h.source_bucket.id(),
            h.jobs_bucket.id(),
            h.warehouse_bucket.id(),
            h.database.id(),
            h.crawler.id(),
            h.failure_queue.id(),
            h.workgroup.id(),
            h.etl_topic.id(),
            h.emr_topic.id(),
            h.table_refresher_function.id()
        ],
        [
            ids::SOURCE_BUCKET,
            ids::JOBS_BUCKET,
            ids::WAREHOUSE_BUCKET,
            ids::DATABASE,
            ids::CRAWLER,
            ids::FAILURE_QUEUE,
            ids::WORKGROUP,
            ids::ETL_TOPIC,
            ids::EMR_TOPIC,
            ids::TABLE_REFRESHER_FUNCTION
        ]
    );
}

/// Issue 29: a `sharded` or `auto` stage holds base a's state machine, which invokes the ETL
/// function it was deployed with and reads its plans from the warehouse, and whose execution
/// role may start only this state machine's child executions; the ETL function is told the
/// engine and the state machine's ARN, and may start it. A `function` stage holds none of it.
#[test]
fn a_sharded_stage_holds_the_state_machine_the_etl_function_starts() {
    use crate::config::BaseAEngine;
    let mut c = config("alice", false);
    let plain = template(&c).to_json().unwrap();
    assert!(plain["Resources"]["EtlShardsStateMachine"].is_null());
    assert_eq!(
        plain["Resources"]["EtlFunction"]["Properties"]["Environment"]["Variables"]
            ["BASE_A_ENGINE"],
        "function"
    );
    for engine in [BaseAEngine::Sharded, BaseAEngine::Auto] {
        c.base_a_engine = engine;
        let t = template(&c).to_json().unwrap();
        let r = &t["Resources"];
        let sm = &r["EtlShardsStateMachine"]["Properties"];
        assert_eq!(sm["StateMachineName"], "pdcase-alice-etl-shards");
        assert_eq!(
            sm["DefinitionSubstitutions"]["EtlFunctionArn"],
            serde_json::json!({"Fn::GetAtt": ["EtlFunction", "Arn"]})
        );
        let map = &sm["Definition"]["States"]["Shards"];
        assert_eq!(
            map["ItemProcessor"]["ProcessorConfig"]["Mode"],
            "DISTRIBUTED"
        );
        assert_eq!(
            map["ItemReader"]["Parameters"]["Bucket"],
            "${WarehouseBucket}"
        );
        assert_eq!(
            map["Catch"][0]["Next"], "Publish",
            "the publisher always runs"
        );
        assert_eq!(sm["TracingConfiguration"]["Enabled"], true);
        let role = &r["EtlShardsRole"]["Properties"];
        assert_eq!(
            role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
            serde_json::json!(["states.amazonaws.com"])
        );
        let text = role["Policies"].to_string();
        assert!(
            text.contains("execution:pdcase-alice-etl-shards/*"),
            "{text}"
        );
        assert!(text.contains("a/_runs/*/plan.json"), "{text}");
        let env = &r["EtlFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["BASE_A_ENGINE"], engine.as_str());
        assert!(env["STATE_MACHINE_ARN"]
            .to_string()
            .contains("stateMachine:pdcase-alice-etl-shards"));
        let etl_policy = r["EtlRole"]["Properties"]["Policies"].to_string();
        assert!(etl_policy.contains("states:StartExecution"), "{etl_policy}");
    }
}
