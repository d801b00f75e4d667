//! AWS Glue: `AWS::Glue::Database`, `AWS::Glue::Table`, `AWS::Glue::Crawler`.

use super::{is_empty, NoAttributes, Resource};
use crate::value::Value;
use serde::Serialize;
use std::collections::BTreeMap;

/// `AWS::Glue::Database`. `Ref` returns the database name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Database {
    /// The account id. Update: in place.
    pub catalog_id: Value,
    /// Update: in place (the schema lists only the top-level `DatabaseName` as create-only;
    /// a new `Name` renames through UpdateDatabase, and its tables follow).
    pub database_input: DatabaseInput,
}

/// The value of [`Database::database_input`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct DatabaseInput {
    /// Lowercase letters, digits and underscores suit Athena best.
    pub name: Value,
    /// `Description`: A description of the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Resource for Database {
    const TYPE: &'static str = "AWS::Glue::Database";
    type Attr = NoAttributes;
}

/// `AWS::Glue::Table`. `Ref` returns the table name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Table {
    /// Update: **Replacement**.
    pub catalog_id: Value,
    /// Update: **Replacement**.
    pub database_name: Value,
    /// Update: in place, except `TableInput.Name`: **Replacement**.
    pub table_input: TableInput,
}

impl Resource for Table {
    const TYPE: &'static str = "AWS::Glue::Table";
    type Attr = NoAttributes;
}

/// The value of [`Table::table_input`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TableInput {
    /// `Name`: The table name.
    pub name: String,
    /// `Description`: A description of the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `TableType`: The type of this table.
    pub table_type: TableType,
    /// `Parameters`.
    pub parameters: BTreeMap<String, String>,
    /// `PartitionKeys`: A list of columns by which the table is partitioned.
    #[serde(skip_serializing_if = "is_empty")]
    pub partition_keys: Vec<Column>,
    /// `StorageDescriptor`: A storage descriptor containing information about the physical storage of this table.
    pub storage_descriptor: StorageDescriptor,
}

/// The values [`TableInput::table_type`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TableType {
    /// `EXTERNAL_TABLE`.
    #[serde(rename = "EXTERNAL_TABLE")]
    #[default]
    External,
}

/// The value of [`TableInput::storage_descriptor`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct StorageDescriptor {
    /// `Columns`: A list of the Columns in the table.
    pub columns: Vec<Column>,
    /// `s3://bucket/prefix/`.
    pub location: Value,
    /// `InputFormat`: The input format: SequenceFileInputFormat (binary), or TextInputFormat, or a custom format.
    pub input_format: String,
    /// `OutputFormat`: The output format: SequenceFileOutputFormat (binary), or IgnoreKeyTextOutputFormat, or a custom format.
    pub output_format: String,
    /// `SerdeInfo`: The serialization/deserialization (SerDe) information.
    pub serde_info: SerdeInfo,
    /// `Compressed`: True if the data in the table is compressed, or False if not.
    pub compressed: bool,
}

/// The value of [`StorageDescriptor::serde_info`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SerdeInfo {
    /// `SerializationLibrary`: Usually the class that implements the SerDe.
    pub serialization_library: String,
    /// `Parameters`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// The value of [`TableInput::partition_keys`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Column {
    /// `Name`: The name of the Column.
    pub name: String,
    /// A Hive type: `string`, `bigint`, `timestamp`, `date`...
    #[serde(rename = "Type")]
    pub kind: String,
    /// `Comment`: A free-form text comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `AWS::Glue::Crawler`. `Ref` returns the crawler name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Crawler {
    /// Update: **Replacement**.
    pub name: Value,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Role ARN or name. Update: in place.
    pub role: Value,
    /// Update: in place.
    pub targets: Targets,
    /// Update: in place.
    pub schema_change_policy: SchemaChangePolicy,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recrawl_policy: Option<RecrawlPolicy>,
    /// The crawler's JSON configuration (versioned; `CrawlerOutput` says how tables and
    /// partitions it writes are shaped). Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
    /// Crawler tags are a JSON object, unlike most types' Key/Value list. Update: in place.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Value>,
}

impl Resource for Crawler {
    const TYPE: &'static str = "AWS::Glue::Crawler";
    type Attr = NoAttributes;
}

/// The value of [`Crawler::targets`].
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Targets {
    /// Crawl existing catalog tables (their own locations) rather than invent tables from
    /// folder names.
    #[serde(skip_serializing_if = "is_empty")]
    pub catalog_targets: Vec<CatalogTarget>,
}

/// The value of [`Targets::catalog_targets`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CatalogTarget {
    /// `DatabaseName`: The name of the database to be synchronized.
    pub database_name: Value,
    /// `Tables`: A list of the tables to be synchronized.
    pub tables: Vec<Value>,
}

/// The value of [`Crawler::schema_change_policy`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SchemaChangePolicy {
    /// `UpdateBehavior`: The update behavior when the crawler finds a changed schema.
    pub update_behavior: UpdateBehavior,
    /// `DeleteBehavior`: The deletion behavior when the crawler finds a deleted object.
    pub delete_behavior: DeleteBehavior,
}

/// The values [`SchemaChangePolicy::update_behavior`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateBehavior {
    /// Log a changed schema, leave the table as declared. (`UPDATE_IN_DATABASE`, which
    /// rewrote the declared tables, is not offered: see the catalog part.)
    #[default]
    Log,
}

/// The values [`SchemaChangePolicy::delete_behavior`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeleteBehavior {
    /// Required for catalog targets.
    #[default]
    Log,
    /// `DELETE_FROM_DATABASE`.
    DeleteFromDatabase,
    /// `DEPRECATE_IN_DATABASE`.
    DeprecateInDatabase,
}

/// The value of [`Crawler::recrawl_policy`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RecrawlPolicy {
    /// `RecrawlBehavior`: Specifies whether to crawl the entire dataset again or to crawl only folders that were added since the last crawler run.
    pub recrawl_behavior: RecrawlBehavior,
}

/// The values [`RecrawlPolicy::recrawl_behavior`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecrawlBehavior {
    /// `CRAWL_EVERYTHING`.
    #[default]
    CrawlEverything,
    /// `CRAWL_NEW_FOLDERS_ONLY`.
    CrawlNewFoldersOnly,
    /// `CRAWL_EVENT_MODE`.
    CrawlEventMode,
}
