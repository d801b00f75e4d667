//! What earlier versions of this tool put in a stage's stack and this one removes: the
//! EMR-on-EC2 cluster's service role, EC2 role and instance profile, and the network the
//! transient cluster ran in (a VPC, a private subnet, a route table and an S3 gateway
//! endpoint, tagged for `AmazonEMRServicePolicy_v2`), rendered as those versions rendered
//! them (logical ids, names and properties).
//!
//! A stage deployed by such a version still holds them, and its next deploy deletes them, as
//! the stage's CloudFormation role: [`crate::cloudformation_role`] grants the delete handlers'
//! calls of what this renders, and nothing that creates them. On AWS, the VPC of a stage that
//! ran a cluster also holds EMR's managed security groups, which EMR never deletes and
//! CloudFormation does not know: the deployer deletes them before the VPC goes (`deployer
//! deploy` and `deployer teardown`).

use super::policy::{folder, objects, pass_role, students_folder};
use super::storage::Storage;
use super::{Pipeline, EMR_MANAGED_POLICY_TAG};
use crate::config::StageConfig;
use crate::resource::ec2::{
    RouteTable, Subnet, SubnetRouteTableAssociation, Vpc, VpcEndpoint, VpcEndpointType,
};
use crate::resource::iam::{InstanceProfile, Statement};
use crate::resource::Tag;
use crate::stage::RoleKind;
use crate::value::Value;

/// Logical ids of the retired resources, as the stacks that hold them name them.
pub const LOGICAL_IDS: &[&str] = &[
    "EmrServiceRole",
    "EmrInstanceRole",
    "EmrInstanceProfile",
    "EmrVpc",
    "EmrSubnet",
    "EmrRouteTable",
    "EmrSubnetRoutes",
    "EmrS3Endpoint",
];

/// The logical id of the retired VPC, whose EMR-managed security groups go first.
pub const VPC_LOGICAL_ID: &str = "EmrVpc";

/// A template of stage `c`'s retired resources (and the buckets and key they reference), as
/// the earlier versions rendered them for an `emr` stage.
pub fn template(c: &StageConfig) -> crate::template::Template {
    let mut p = Pipeline::new(c);
    p.key = super::encryption::key(&mut p).map(|k| k.get_att(crate::resource::kms::KeyAttr::Arn));
    let storage = super::storage::buckets(&mut p);
    emr(&mut p, &storage);
    p.t
}

/// The stage's tags and the one EMR's managed policy requires.
fn network_tags(p: &Pipeline, name: &str) -> Vec<Tag> {
    let mut tags = p.tags();
    tags.push(Tag::new(EMR_MANAGED_POLICY_TAG, "true"));
    tags.push(Tag::new("Name", format!("{}-{name}", p.c.stage.prefix())));
    tags
}

/// The stage's own network for the cluster.
fn network(p: &mut Pipeline) {
    let vpc = p.t.add(
        "EmrVpc",
        Vpc {
            cidr_block: "10.0.0.0/16".into(),
            enable_dns_hostnames: true,
            enable_dns_support: true,
            tags: network_tags(p, "emr"),
        },
    );
    let subnet = p.t.add(
        "EmrSubnet",
        Subnet {
            vpc_id: vpc.r#ref(),
            cidr_block: "10.0.0.0/20".into(),
            availability_zone: Value::AvailabilityZone(0),
            map_public_ip_on_launch: false,
            tags: network_tags(p, "emr-private"),
        },
    );
    let routes = p.t.add(
        "EmrRouteTable",
        RouteTable {
            vpc_id: vpc.r#ref(),
            tags: network_tags(p, "emr-private"),
        },
    );
    p.t.add(
        "EmrSubnetRoutes",
        SubnetRouteTableAssociation {
            subnet_id: subnet.r#ref(),
            route_table_id: routes.r#ref(),
        },
    );
    p.t.add(
        "EmrS3Endpoint",
        VpcEndpoint {
            vpc_id: vpc.r#ref(),
            service_name: Value::sub("com.amazonaws.${AWS::Region}.s3"),
            vpc_endpoint_type: VpcEndpointType::Gateway,
            route_table_ids: vec![routes.r#ref()],
            tags: network_tags(p, "emr-s3"),
        },
    );
}

fn emr(p: &mut Pipeline, storage: &Storage) {
    let instance_role_arn = p.role_arn(RoleKind::EmrInstance);
    p.role(
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
    let statements = super::encryption::with_key(p, instance_statements(p, storage), true);
    let instance_role = p.role(
        "EmrInstanceRole",
        RoleKind::EmrInstance,
        "EC2 role of the transient Spark cluster's nodes",
        &["ec2.amazonaws.com"],
        vec![],
        statements,
    );
    p.t.add(
        "EmrInstanceProfile",
        InstanceProfile {
            instance_profile_name: Some(Value::sub(p.c.stage.role_name_sub(RoleKind::EmrInstance))),
            roles: vec![instance_role.r#ref()],
        },
    );
    network(p);
}

/// What the Spark job reads and writes through EMRFS, as the EC2 role granted it. Kept as that
/// version wrote it, apart from `emr.rs`'s job role on purpose: a change of the live role must
/// not change what earlier stages hold (`the_retired_resources_are_those_earlier_stages_hold`
/// pins it).
///
/// The actions are those AWS documents for a least-privilege EC2 role of EMR ("Service role
/// for cluster EC2 instances", least-privilege section) minus creating buckets and changing
/// their versioning: EMRFS lists multipart uploads and parts to abort its own, reads the
/// bucket's versioning, and reads and writes object tags. Hadoop also probes a folder's
/// own key and its `_$folder$` marker (`b`, `b_$folder$`), which `b/*` does not cover.
fn instance_statements(p: &Pipeline, s: &Storage) -> Vec<Statement> {
    let artifacts_arn = p.artifacts_arn();
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
    let students = students_folder(&s.warehouse_arn);
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
