//! Athena: the stage's work group, its results in the jobs bucket.

use super::storage::Storage;
use super::Pipeline;
use crate::resource::athena::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, WorkGroup,
    WorkGroupConfiguration, WorkGroupState,
};
use crate::stage::PROJECT;
use crate::template::Handle;
use crate::value::Value;

pub(super) struct Athena {
    pub workgroup: Handle<WorkGroup>,
    pub results: Value,
}

pub(super) fn workgroup(p: &mut Pipeline, storage: &Storage) -> Athena {
    let results = Value::sub_with(
        "s3://${Bucket}/athena-results/",
        [("Bucket", storage.jobs.r#ref())],
    );
    let tags = p.tags();
    let workgroup = p.t.add(
        "AthenaWorkGroup",
        WorkGroup {
            name: p.c.stage.workgroup_name().into(),
            description: Some(format!(
                "Queries of the {PROJECT} warehouse, stage {}",
                p.c.stage
            )),
            state: WorkGroupState::Enabled,
            recursive_delete_option: true,
            work_group_configuration: WorkGroupConfiguration {
                enforce_work_group_configuration: true,
                publish_cloud_watch_metrics_enabled: true,
                bytes_scanned_cutoff_per_query: None,
                result_configuration: ResultConfiguration {
                    output_location: results.clone(),
                    encryption_configuration: match &p.key {
                        Some(key) => EncryptionConfiguration {
                            encryption_option: EncryptionOption::SseKms,
                            kms_key: Some(key.clone()),
                        },
                        None => EncryptionConfiguration {
                            encryption_option: EncryptionOption::SseS3,
                            kms_key: None,
                        },
                    },
                },
            },
            tags,
        },
    );
    Athena { workgroup, results }
}
