//! The catalog: the Glue database, one declared table per warehouse table (from
//! [`crate::warehouse`], the contract the writers share), and the crawler with its role.

use std::collections::BTreeMap;

use super::policy::objects;
use super::storage::Storage;
use super::Pipeline;
use crate::resource::glue::{
    CatalogTarget, Column, Crawler, Database, DatabaseInput, DeleteBehavior, RecrawlBehavior,
    RecrawlPolicy, SchemaChangePolicy, SerdeInfo, StorageDescriptor, Table, TableInput, TableType,
    Targets, UpdateBehavior,
};
use crate::resource::iam::{RoleAttr, Statement};
use crate::stage::{BucketRole, RoleKind, PROJECT};
use crate::template::Handle;
use crate::value::{Pseudo, Value};
use crate::warehouse::{Base, ColumnDef, DataFormat, TableDef, TABLES};

pub(super) struct Catalog {
    pub database: Handle<Database>,
    pub crawler: Handle<Crawler>,
    /// The crawler's ARN, from its name (Glue has no `Arn` attribute for crawlers).
    pub crawler_arn: Value,
}

pub(super) fn catalog(p: &mut Pipeline, storage: &Storage) -> Catalog {
    let database = p.t.add_with(
        "GlueDatabase",
        Database {
            catalog_id: Pseudo::AccountId.into(),
            database_input: DatabaseInput {
                name: p.c.stage.database_name().into(),
                description: Some(format!("{PROJECT} warehouse, stage {}", p.c.stage)),
            },
        },
        p.stateful(),
    );
    let tables: Vec<Handle<Table>> = TABLES.iter().map(|def| table(p, def, &database)).collect();
    let crawler = crawler(p, storage, &database, &tables);
    let crawler_arn = Value::sub(format!(
        "arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:crawler/{}",
        p.c.stage.crawler_name()
    ));
    Catalog {
        database,
        crawler,
        crawler_arn,
    }
}

/// Partitions the crawler adds inherit the table's schema.
pub(super) const CRAWLER_CONFIGURATION: &str =
    r#"{"Version":1.0,"CrawlerOutput":{"Partitions":{"AddOrUpdateBehavior":"InheritFromTable"}}}"#;

fn crawler(
    p: &mut Pipeline,
    storage: &Storage,
    database: &Handle<Database>,
    tables: &[Handle<Table>],
) -> Handle<Crawler> {
    let warehouse_arn = &storage.warehouse_arn;
    let statements = super::encryption::with_key(
        p,
        vec![
            Statement::allow(
                "ListWarehouse",
                &["s3:ListBucket"],
                vec![warehouse_arn.clone()],
            ),
            Statement::allow(
                "ReadWarehouse",
                &["s3:GetObject"],
                vec![objects(warehouse_arn, "*")],
            ),
        ],
        false,
    );
    let role = p.role(
        "CrawlerRole",
        RoleKind::Crawler,
        "Glue crawler of the warehouse",
        &["glue.amazonaws.com"],
        vec![Value::sub(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSGlueServiceRole",
        )],
        statements,
    );
    let tags = p.tags().into_iter().map(|t| (t.key, t.value)).collect();
    p.t.add(
        "WarehouseCrawler",
        Crawler {
            name: p.c.stage.crawler_name().into(),
            description: Some(
                "Compares the declared warehouse tables with their data and logs differences"
                    .into(),
            ),
            role: role.get_att(RoleAttr::Arn),
            targets: Targets {
                catalog_targets: vec![CatalogTarget {
                    database_name: database.r#ref(),
                    tables: tables.iter().map(|t| t.r#ref()).collect(),
                }],
            },
            // The declared tables are the contract (crates/stack-model/src/warehouse.rs) and
            // none is partitioned (every table is a manifest), so the crawler has nothing to add
            // to the schemas; with UPDATE_IN_DATABASE it rewrote them (dropping table
            // parameters, retyping columns from what it sampled). It only logs a difference
            // it finds, which shows a writer drifting from the contract in its CloudWatch log,
            // and any partition it adds takes the table's schema (Glue developer guide,
            // "Preventing a crawler from changing an existing schema"). What it logs for a
            // manifest table is not checked here: the emulator's crawler is metadata only.
            schema_change_policy: SchemaChangePolicy {
                update_behavior: UpdateBehavior::Log,
                delete_behavior: DeleteBehavior::Log,
            },
            recrawl_policy: Some(RecrawlPolicy {
                recrawl_behavior: RecrawlBehavior::CrawlEverything,
            }),
            configuration: Some(CRAWLER_CONFIGURATION.into()),
            tags,
        },
    )
}

fn column(c: &ColumnDef) -> Column {
    Column {
        name: c.name.to_ascii_lowercase(),
        kind: c.kind.hive().into(),
        comment: None,
    }
}

fn table(p: &mut Pipeline, def: &TableDef, database: &Handle<Database>) -> Handle<Table> {
    let location = Value::sub(format!(
        "s3://{}/{}",
        p.c.stage.bucket_name_sub(BucketRole::Warehouse),
        def.location_prefix()
    ));
    // Base b is Spark's zstd Parquet; base a is what the ETL is configured to write.
    let (format, compression) = match def.base {
        Base::A => (p.c.table_format, "SNAPPY"),
        Base::B => (DataFormat::Parquet, "ZSTD"),
    };
    let mut parameters = BTreeMap::from([("EXTERNAL".to_string(), "TRUE".to_string())]);
    let serde = match format {
        DataFormat::Parquet => {
            parameters.insert("classification".into(), "parquet".into());
            parameters.insert("parquet.compression".into(), compression.into());
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        }
        DataFormat::Ndjson => {
            parameters.insert("classification".into(), "json".into());
            "org.openx.data.jsonserde.JsonSerDe"
        }
    };
    // Every table's location holds the list of its files, not the files (Delta Lake's
    // "Presto and Athena to Delta Lake integration": SymlinkTextInputFormat over the manifest
    // folder, the data's own SerDe; Hive's SymlinkTextInputFormat reads text files, NDJSON
    // among them, through the same manifest).
    let (input_format, output_format) = (
        "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    );
    p.t.add(
        &format!("{}Table", def.pascal_name()),
        Table {
            catalog_id: Pseudo::AccountId.into(),
            database_name: database.r#ref(),
            table_input: TableInput {
                name: def.name.into(),
                description: Some(def.description.into()),
                table_type: TableType::External,
                parameters,
                partition_keys: Vec::new(),
                storage_descriptor: StorageDescriptor {
                    columns: def.columns.iter().map(column).collect(),
                    location,
                    input_format: input_format.into(),
                    output_format: output_format.into(),
                    serde_info: SerdeInfo {
                        serialization_library: serde.into(),
                        parameters: BTreeMap::new(),
                    },
                    compressed: format == DataFormat::Parquet,
                },
            },
        },
    )
}
