//! EMR: the service role, the EC2 role of the cluster's nodes and its instance profile, named
//! per stage, and the network the transient cluster the EMR starter launches runs in.
//!
//! `AmazonEMRServicePolicy_v2` lets EMR run instances only in a subnet, and create its
//! managed security groups only in a VPC, tagged `for-use-with-amazon-emr-managed-policies =
//! true`, for clusters that carry the same tag (EMR management guide, "Service role for
//! Amazon EMR (EMR role)"). So the cluster gets a subnet: the stage config's `emr.subnet_id`
//! (tagged by its owner), or by default a small network of the stage's own, which also works
//! in an account without a default VPC: a VPC, one private subnet, and an S3 gateway endpoint
//! on its route table. All of it is free of charge.
//!
//! Private, with no route to the internet, because the cluster needs none: EMR manages a
//! cluster in a private subnet through a network interface it attaches to the primary node,
//! and the nodes need only a route to S3 for the Amazon Linux and EMR repositories and their
//! data, which the gateway endpoint is (EMR management guide, "Amazon VPC options", "Private
//! subnets", and "Sample policies for private subnets that access Amazon S3": the endpoint
//! carries no policy, so it reaches those buckets). The job reads and writes S3 only. So no
//! node has a public address (AWS Control Tower's CT.EC2.PR.11 passes) and none is reachable
//! from the internet. A job that calls other services (Glue's catalog, DynamoDB) would need
//! interface endpoints or a NAT gateway: `emr.subnet_id` names a subnet that has them.

use super::policy::{objects, pass_role};
use super::storage::Storage;
use super::{Pipeline, EMR_MANAGED_POLICY_TAG};
use crate::resource::ec2::{
    RouteTable, Subnet, SubnetRouteTableAssociation, Vpc, VpcEndpoint, VpcEndpointType,
};
use crate::resource::iam::{InstanceProfile, Role, Statement};
use crate::resource::Tag;
use crate::stage::RoleKind;
use crate::template::Handle;
use crate::value::Value;

pub(super) struct Emr {
    pub service_role: Handle<Role>,
    pub instance_role: Handle<Role>,
    pub instance_profile: Handle<InstanceProfile>,
    /// The subnet the cluster launches in: the stack's own, or the configured one.
    pub subnet: Value,
}

/// The stage's tags and the one EMR's managed policy requires.
fn network_tags(p: &Pipeline, name: &str) -> Vec<Tag> {
    let mut tags = p.tags();
    tags.push(Tag::new(EMR_MANAGED_POLICY_TAG, "true"));
    tags.push(Tag::new("Name", format!("{}-{name}", p.c.stage.prefix())));
    tags
}

/// The stage's own network for the cluster; returns the subnet.
fn network(p: &mut Pipeline) -> Value {
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
    subnet.r#ref()
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
    let statements = super::encryption::with_key(p, instance_statements(p, storage), true);
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
    let subnet = match &p.c.emr.subnet_id {
        Some(id) => Value::lit(id.as_str()),
        None => network(p),
    };
    Emr {
        service_role,
        instance_role,
        instance_profile,
        subnet,
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
