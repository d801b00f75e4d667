//! EMR: the service role, the EC2 role of the cluster's nodes and its instance profile, named
//! per stage, for the transient cluster the EMR starter launches.

use super::policy::{objects, pass_role};
use super::storage::Storage;
use super::Pipeline;
use crate::resource::iam::{InstanceProfile, Role, Statement};
use crate::stage::RoleKind;
use crate::template::Handle;
use crate::value::Value;

pub(super) struct Emr {
    pub service_role: Handle<Role>,
    pub instance_role: Handle<Role>,
    pub instance_profile: Handle<InstanceProfile>,
}

pub(super) fn emr(p: &mut Pipeline, storage: &Storage) -> Emr {
    let instance_role_arn = p.role_arn(RoleKind::EmrInstance);
    let service_role = p.role(
        "EmrServiceRole",
        RoleKind::EmrService,
        "EMR service role of the transient Spark cluster",
        &["elasticmapreduce.amazonaws.com"],
        vec![Value::sub(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2",
        )],
        vec![pass_role(
            "PassInstanceRole",
            instance_role_arn,
            "ec2.amazonaws.com",
        )],
    );
    let statements = instance_statements(p, storage);
    let instance_role = p.role(
        "EmrInstanceRole",
        RoleKind::EmrInstance,
        "EC2 role of the transient Spark cluster's nodes",
        &["ec2.amazonaws.com"],
        vec![],
        statements,
    );
    let instance_profile = p.t.add(
        "EmrInstanceProfile",
        InstanceProfile {
            instance_profile_name: Some(Value::sub(p.c.stage.role_name_sub(RoleKind::EmrInstance))),
            roles: vec![instance_role.r#ref()],
        },
    );
    Emr {
        service_role,
        instance_role,
        instance_profile,
    }
}

/// What the Spark job reads and writes through EMRFS.
///
/// The actions are those AWS documents for a least-privilege EC2 role of EMR ("Service role
/// for cluster EC2 instances", least-privilege section) minus creating buckets and changing
/// their versioning: EMRFS lists multipart uploads and parts to abort its own, reads the
/// bucket's versioning, and reads and writes object tags. Hadoop also probes a folder's
/// own key and its `_$folder$` marker (`b`, `b_$folder$`), which `b/*` does not cover.
fn instance_statements(p: &Pipeline, s: &Storage) -> Vec<Statement> {
    let artifacts_arn = Value::sub_with(
        "arn:${AWS::Partition}:s3:::${Bucket}",
        [("Bucket", p.artifacts.r#ref())],
    );
    let folder = |arn: &Value, name: &str| {
        vec![
            objects(arn, name),
            objects(arn, &format!("{name}_$folder$")),
            objects(arn, &format!("{name}/*")),
        ]
    };
    let read = ["s3:GetObject", "s3:GetObjectTagging"];
    let write = [
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ];
    let mut students = folder(&s.warehouse_arn, "a");
    students.truncate(2);
    students.extend(folder(&s.warehouse_arn, "a/students"));
    vec![
        Statement::allow(
            "ListBuckets",
            &[
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:GetBucketVersioning",
                "s3:GetBucketLocation",
            ],
            vec![
                s.source_arn.clone(),
                s.warehouse_arn.clone(),
                s.jobs_arn.clone(),
            ],
        ),
        Statement::allow("ReadEvents", &read, folder(&s.source_arn, "b")),
        Statement::allow("ReadStudents", &read, students),
        Statement::allow("WriteBaseB", &write, folder(&s.warehouse_arn, "b")),
        Statement::allow(
            "WriteLogsAndScratch",
            &write,
            vec![objects(&s.jobs_arn, "*")],
        ),
        Statement::allow(
            "ReadSparkJob",
            &["s3:GetObject"],
            vec![Value::sub_with(
                "${Bucket}/${Key}",
                [("Bucket", artifacts_arn), ("Key", p.spark_key.r#ref())],
            )],
        ),
    ]
}
