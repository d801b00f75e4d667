//! Amazon S3: `AWS::S3::Bucket`, `AWS::S3::BucketPolicy`.

use super::{attributes, is_empty, NoAttributes, Resource, Tag};
use crate::resource::iam::PolicyDocument;
use crate::value::Value;
use serde::Serialize;

/// `AWS::S3::Bucket`. `Ref` returns the bucket name.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Bucket {
    /// Globally unique, 3 to 63 characters. Update: **Replacement** (a new, empty bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<Value>,
    /// Default encryption of new objects. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_encryption: Option<BucketEncryption>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_access_block_configuration: Option<PublicAccessBlockConfiguration>,
    /// Update: in place. Once enabled, versioning can only be suspended, never removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versioning_configuration: Option<VersioningConfiguration>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_configuration: Option<LifecycleConfiguration>,
    /// Event notifications. S3 checks that it may invoke each target when the configuration is
    /// set, so the `AWS::Lambda::Permission` must exist first (`DependsOn`). Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_configuration: Option<NotificationConfiguration>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership_controls: Option<OwnershipControls>,
    /// Server access logging: S3 delivers a record of each request to the destination
    /// bucket, best effort, within hours. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_configuration: Option<LoggingConfiguration>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::S3::Bucket`.
    BucketAttr {
        /// `arn:aws:s3:::name`.
        Arn => "Arn",
        /// `name.s3.amazonaws.com`.
        DomainName => "DomainName",
        /// `name.s3.<region>.amazonaws.com`.
        RegionalDomainName => "RegionalDomainName",
    }
);

impl Resource for Bucket {
    const TYPE: &'static str = "AWS::S3::Bucket";
    type Attr = BucketAttr;
}

/// The value of [`Bucket::bucket_encryption`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct BucketEncryption {
    /// `ServerSideEncryptionConfiguration`: Specifies the default server-side-encryption configuration.
    pub server_side_encryption_configuration: Vec<ServerSideEncryptionRule>,
}

impl BucketEncryption {
    /// SSE-KMS with `key` (its ARN) and S3 Bucket Keys on.
    pub fn kms(key: Value) -> BucketEncryption {
        BucketEncryption {
            server_side_encryption_configuration: vec![ServerSideEncryptionRule {
                server_side_encryption_by_default: ServerSideEncryptionByDefault {
                    sse_algorithm: SseAlgorithm::AwsKms,
                    kms_master_key_id: Some(key),
                },
                bucket_key_enabled: Some(true),
            }],
        }
    }

    /// One default rule with the given algorithm and S3 Bucket Keys on (fewer KMS calls).
    pub fn default_with(algorithm: SseAlgorithm) -> BucketEncryption {
        BucketEncryption {
            server_side_encryption_configuration: vec![ServerSideEncryptionRule {
                server_side_encryption_by_default: ServerSideEncryptionByDefault {
                    sse_algorithm: algorithm,
                    kms_master_key_id: None,
                },
                bucket_key_enabled: Some(true),
            }],
        }
    }
}

/// The value of [`BucketEncryption::server_side_encryption_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerSideEncryptionRule {
    /// `ServerSideEncryptionByDefault`: Specifies the default server-side encryption to apply to new objects in the bucket.
    pub server_side_encryption_by_default: ServerSideEncryptionByDefault,
    /// `BucketKeyEnabled`: Specifies whether Amazon S3 should use an S3 Bucket Key with server-side encryption using KMS (SSE-KMS) for new objects in the bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
}

/// The value of [`ServerSideEncryptionRule::server_side_encryption_by_default`].
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ServerSideEncryptionByDefault {
    /// `SSEAlgorithm`: Server-side encryption algorithm to use for the default encryption.
    #[serde(rename = "SSEAlgorithm")]
    pub sse_algorithm: SseAlgorithm,
    /// Without it, `aws:kms` uses the account's AWS managed key `aws/s3`.
    #[serde(rename = "KMSMasterKeyID", skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<Value>,
}

/// The values [`ServerSideEncryptionByDefault::sse_algorithm`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SseAlgorithm {
    /// SSE-S3: keys managed by S3.
    #[serde(rename = "AES256")]
    #[default]
    Aes256,
    /// SSE-KMS.
    #[serde(rename = "aws:kms")]
    AwsKms,
    /// Dual-layer SSE-KMS.
    #[serde(rename = "aws:kms:dsse")]
    AwsKmsDsse,
}

/// The value of [`Bucket::public_access_block_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct PublicAccessBlockConfiguration {
    /// `BlockPublicAcls`: Specifies whether Amazon S3 should block public access control lists (ACLs) for this bucket and objects in this bucket.
    pub block_public_acls: bool,
    /// `BlockPublicPolicy`: Specifies whether Amazon S3 should block public bucket policies for this bucket.
    pub block_public_policy: bool,
    /// `IgnorePublicAcls`: Specifies whether Amazon S3 should ignore public ACLs for this bucket and objects in this bucket.
    pub ignore_public_acls: bool,
    /// `RestrictPublicBuckets`: Specifies whether Amazon S3 should restrict public bucket policies for this bucket.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlockConfiguration {
    /// Every public access path blocked.
    pub fn all_blocked() -> Self {
        PublicAccessBlockConfiguration {
            block_public_acls: true,
            block_public_policy: true,
            ignore_public_acls: true,
            restrict_public_buckets: true,
        }
    }
}

/// The value of [`Bucket::versioning_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct VersioningConfiguration {
    /// `Status`: The versioning state of the bucket.
    pub status: VersioningStatus,
}

/// The values [`VersioningConfiguration::status`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VersioningStatus {
    /// `Enabled`.
    #[default]
    Enabled,
    /// `Suspended`.
    Suspended,
}

/// The value of [`Bucket::lifecycle_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LifecycleConfiguration {
    /// `Rules`: A lifecycle rule for individual objects in an Amazon S3 bucket.
    pub rules: Vec<LifecycleRule>,
}

/// The value of [`LifecycleConfiguration::rules`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LifecycleRule {
    /// `Id`: Unique identifier for the rule.
    pub id: String,
    /// `Status`: If `Enabled`, the rule is currently being applied.
    pub status: RuleStatus,
    /// `Prefix`: Object key prefix that identifies one or more objects to which this rule applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `ExpirationInDays`: Indicates the number of days after creation when objects are deleted from Amazon S3 and Amazon S3 Glacier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_in_days: Option<u32>,
    /// `NoncurrentVersionExpiration`: Specifies when noncurrent object versions expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
    /// `AbortIncompleteMultipartUpload`: Specifies a lifecycle rule that stops incomplete multipart uploads to an Amazon S3 bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
}

/// The values [`LifecycleRule::status`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RuleStatus {
    /// `Enabled`.
    #[default]
    Enabled,
    /// `Disabled`.
    Disabled,
}

/// The value of [`LifecycleRule::noncurrent_version_expiration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct NoncurrentVersionExpiration {
    /// `NoncurrentDays`: Specifies the number of days an object is noncurrent before S3 can perform the associated action.
    pub noncurrent_days: u32,
}

/// The value of [`LifecycleRule::abort_incomplete_multipart_upload`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct AbortIncompleteMultipartUpload {
    /// `DaysAfterInitiation`: Specifies the number of days after which Amazon S3 stops an incomplete multipart upload.
    pub days_after_initiation: u32,
}

/// Where S3 delivers a bucket's access logs (S3 user guide, "Enabling Amazon S3 server access
/// logging"). Without a destination, the bucket itself: which AWS advises against (each
/// delivery is logged again), so one is always named here.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LoggingConfiguration {
    /// A bucket of the same account and Region, without default SSE-KMS encryption or
    /// object lock, whose policy lets `logging.s3.amazonaws.com` put objects.
    pub destination_bucket_name: Value,
    /// The key prefix of the log objects, ending in `/`.
    pub log_file_prefix: String,
}

/// Where the bucket's events go: EventBridge's default bus only (S3 user guide, "Using
/// EventBridge"), where the stage's rule and any of the user's pick them up.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct NotificationConfiguration {
    /// `EventBridgeConfiguration`: Enables delivery of events to Amazon EventBridge.
    pub event_bridge_configuration: EventBridgeConfiguration,
}

/// The value of [`NotificationConfiguration::event_bridge_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct EventBridgeConfiguration {
    /// `EventBridgeEnabled`: Enables delivery of events to Amazon EventBridge.
    pub event_bridge_enabled: bool,
}

/// The value of [`Bucket::ownership_controls`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct OwnershipControls {
    /// `Rules`: Specifies the container element for Object Ownership rules.
    pub rules: Vec<OwnershipControlsRule>,
}

/// The value of [`OwnershipControls::rules`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct OwnershipControlsRule {
    /// `ObjectOwnership`: Specifies an object ownership rule.
    pub object_ownership: ObjectOwnership,
}

/// The values [`OwnershipControlsRule::object_ownership`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ObjectOwnership {
    /// ACLs disabled; the bucket owner owns every object.
    #[default]
    BucketOwnerEnforced,
    /// `BucketOwnerPreferred`.
    BucketOwnerPreferred,
    /// `ObjectWriter`.
    ObjectWriter,
}

/// `AWS::S3::BucketPolicy`. `Ref` returns the bucket name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct BucketPolicy {
    /// Update: **Replacement** (the policy is detached and attached to the new bucket).
    pub bucket: Value,
    /// Update: in place.
    pub policy_document: PolicyDocument,
}

impl Resource for BucketPolicy {
    const TYPE: &'static str = "AWS::S3::BucketPolicy";
    type Attr = NoAttributes;
}
