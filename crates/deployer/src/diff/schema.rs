//! What the resource schemas say about the types this pipeline uses: which properties are
//! create-only (changing one replaces the resource) and which types hold data.
//!
//! The table is copied from the schemas cfn-lint ships (`createOnlyProperties`, paths under
//! `/properties/`); `tests/template/test_diff_schema.py` fails when they differ, so the copy
//! cannot drift from the schemas the template gates use.

/// `(type, create-only property paths)`; nested paths use `/`.
pub const CREATE_ONLY: &[(&str, &[&str])] = &[
    ("AWS::Athena::WorkGroup", &["Name"]),
    (
        "AWS::EC2::Route",
        &[
            "DestinationCidrBlock",
            "DestinationIpv6CidrBlock",
            "DestinationPrefixListId",
            "RouteTableId",
        ],
    ),
    ("AWS::EC2::RouteTable", &["VpcId"]),
    (
        "AWS::EC2::Subnet",
        &[
            "AvailabilityZone",
            "AvailabilityZoneId",
            "CidrBlock",
            "Ipv4IpamPoolId",
            "Ipv4NetmaskLength",
            "Ipv6IpamPoolId",
            "Ipv6Native",
            "Ipv6NetmaskLength",
            "OutpostArn",
            "VpcId",
        ],
    ),
    (
        "AWS::EC2::SubnetRouteTableAssociation",
        &["RouteTableId", "SubnetId"],
    ),
    (
        "AWS::EC2::VPC",
        &[
            "CidrBlock",
            "Ipv4IpamPoolId",
            "Ipv4NetmaskLength",
            "VpcEncryptionControl",
        ],
    ),
    (
        "AWS::EC2::VPCEndpoint",
        &[
            "DnsOptions/PrivateDnsPreference",
            "DnsOptions/PrivateDnsSpecifiedDomains",
            "ResourceConfigurationArn",
            "ServiceName",
            "ServiceNetworkArn",
            "ServiceRegion",
            "VpcEndpointType",
            "VpcId",
        ],
    ),
    ("AWS::EC2::VPCGatewayAttachment", &["VpcId"]),
    ("AWS::Events::Rule", &["Name"]),
    ("AWS::Glue::Crawler", &["Name"]),
    ("AWS::Glue::Database", &["DatabaseName"]),
    (
        "AWS::Glue::Table",
        &["CatalogId", "DatabaseName", "Name", "TableInput/Name"],
    ),
    (
        "AWS::IAM::InstanceProfile",
        &["InstanceProfileName", "Path"],
    ),
    ("AWS::IAM::Role", &["Path", "RoleName"]),
    (
        "AWS::Lambda::Function",
        &["FunctionName", "PackageType", "TenancyConfig"],
    ),
    (
        "AWS::Lambda::Permission",
        &[
            "Action",
            "EventSourceToken",
            "FunctionName",
            "FunctionUrlAuthType",
            "InvokedViaFunctionUrl",
            "Principal",
            "PrincipalOrgID",
            "SourceAccount",
            "SourceArn",
        ],
    ),
    ("AWS::Logs::LogGroup", &["LogGroupName"]),
    (
        "AWS::S3::Bucket",
        &["BucketName", "BucketNamePrefix", "BucketNamespace"],
    ),
    ("AWS::S3::BucketPolicy", &["Bucket"]),
    (
        "AWS::SNS::Subscription",
        &["Endpoint", "Protocol", "TopicArn"],
    ),
    ("AWS::SNS::Topic", &["FifoTopic", "TopicName"]),
];

/// Types whose replacement or removal loses data.
pub const STATEFUL: &[&str] = &[
    "AWS::S3::Bucket",
    "AWS::Glue::Database",
    "AWS::Logs::LogGroup",
];

/// Whether changing `path` (property names joined by `/`, list indexes included) of a
/// resource of type `ty` replaces it.
pub fn replaces(ty: &str, path: &str) -> bool {
    CREATE_ONLY
        .iter()
        .find(|(t, _)| *t == ty)
        .is_some_and(|(_, props)| {
            props
                .iter()
                .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        })
}

pub fn stateful(ty: &str) -> bool {
    STATEFUL.contains(&ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_only_paths_and_their_children_replace() {
        assert!(replaces("AWS::S3::Bucket", "BucketName"));
        assert!(replaces("AWS::Glue::Table", "TableInput/Name"));
        assert!(!replaces("AWS::Glue::Table", "TableInput/Description"));
        assert!(!replaces("AWS::Lambda::Function", "MemorySize"));
        assert!(!replaces("AWS::Unknown::Type", "Name"));
        assert!(stateful("AWS::S3::Bucket") && !stateful("AWS::Lambda::Function"));
    }
}
