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

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct DatabaseInput {
    /// Lowercase letters, digits and underscores suit Athena best.
    pub name: Value,
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

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TableInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub table_type: TableType,
    pub parameters: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub partition_keys: Vec<Column>,
    pub storage_descriptor: StorageDescriptor,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TableType {
    #[serde(rename = "EXTERNAL_TABLE")]
    #[default]
    External,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct StorageDescriptor {
    pub columns: Vec<Column>,
    /// `s3://bucket/prefix/`.
    pub location: Value,
    pub input_format: String,
    pub output_format: String,
    pub serde_info: SerdeInfo,
    pub compressed: bool,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SerdeInfo {
    pub serialization_library: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Column {
    pub name: String,
    /// A Hive type: `string`, `bigint`, `timestamp`, `date`...
    #[serde(rename = "Type")]
    pub kind: String,
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

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Targets {
    /// Crawl existing catalog tables (their own locations) rather than invent tables from
    /// folder names.
    #[serde(skip_serializing_if = "is_empty")]
    pub catalog_targets: Vec<CatalogTarget>,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CatalogTarget {
    pub database_name: Value,
    pub tables: Vec<Value>,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SchemaChangePolicy {
    pub update_behavior: UpdateBehavior,
    pub delete_behavior: DeleteBehavior,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateBehavior {
    /// Log a changed schema, leave the table as declared. (`UPDATE_IN_DATABASE`, which
    /// rewrote the declared tables, is not offered: see the catalog part.)
    #[default]
    Log,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeleteBehavior {
    /// Required for catalog targets.
    #[default]
    Log,
    DeleteFromDatabase,
    DeprecateInDatabase,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RecrawlPolicy {
    pub recrawl_behavior: RecrawlBehavior,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecrawlBehavior {
    #[default]
    CrawlEverything,
    CrawlNewFoldersOnly,
    CrawlEventMode,
}
