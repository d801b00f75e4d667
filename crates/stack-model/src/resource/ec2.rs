//! Amazon EC2 networking of the retired EMR-on-EC2 cluster (`pipeline::retired`): `AWS::EC2::VPC`, `Subnet`, `RouteTable`,
//! `SubnetRouteTableAssociation`, `VPCEndpoint`. `Ref` of each returns its id (`vpc-...`, `subnet-...`).

use super::{is_empty, NoAttributes, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::EC2::VPC`.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Vpc {
    /// Update: **Replacement**.
    pub cidr_block: String,
    /// Needed for the S3 gateway endpoint's and EMR's private DNS names. Update: in place.
    pub enable_dns_hostnames: bool,
    /// Update: in place.
    pub enable_dns_support: bool,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

impl Resource for Vpc {
    const TYPE: &'static str = "AWS::EC2::VPC";
    type Attr = NoAttributes;
}

/// `AWS::EC2::Subnet`.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Subnet {
    /// Update: **Replacement**.
    pub vpc_id: Value,
    /// Update: **Replacement**.
    pub cidr_block: String,
    /// Update: **Replacement**.
    pub availability_zone: Value,
    /// Update: in place.
    pub map_public_ip_on_launch: bool,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

impl Resource for Subnet {
    const TYPE: &'static str = "AWS::EC2::Subnet";
    type Attr = NoAttributes;
}

/// `AWS::EC2::RouteTable`.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RouteTable {
    /// Update: **Replacement**.
    pub vpc_id: Value,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

impl Resource for RouteTable {
    const TYPE: &'static str = "AWS::EC2::RouteTable";
    type Attr = NoAttributes;
}

/// `AWS::EC2::SubnetRouteTableAssociation`.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SubnetRouteTableAssociation {
    /// Update: **Replacement**.
    pub subnet_id: Value,
    /// Update: **Replacement**.
    pub route_table_id: Value,
}

impl Resource for SubnetRouteTableAssociation {
    const TYPE: &'static str = "AWS::EC2::SubnetRouteTableAssociation";
    type Attr = NoAttributes;
}

/// `AWS::EC2::VPCEndpoint`, here the S3 gateway endpoint (free; the private subnet's only
/// route out, to S3).
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct VpcEndpoint {
    /// Update: **Replacement**.
    pub vpc_id: Value,
    /// `com.amazonaws.<region>.s3`. Update: **Replacement**.
    pub service_name: Value,
    /// Update: **Replacement**.
    pub vpc_endpoint_type: VpcEndpointType,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub route_table_ids: Vec<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

/// The values [`VpcEndpoint::vpc_endpoint_type`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VpcEndpointType {
    /// `Gateway`.
    #[default]
    Gateway,
    /// `Interface`.
    Interface,
}

impl Resource for VpcEndpoint {
    const TYPE: &'static str = "AWS::EC2::VPCEndpoint";
    type Attr = NoAttributes;
}
