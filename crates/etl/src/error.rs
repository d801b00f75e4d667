//! Errors of the ETL: bad input (with its place), storage failures, and run failures.

use std::fmt;

/// Where in an input document something is wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    /// The object's name as the user knows it: `s3://bucket/a/students.json` or a local path.
    pub file: String,
    /// 1-based line and column (columns count bytes, as serde_json does).
    pub line: usize,
    pub column: usize,
    /// 0-based index of the record in the top-level array, when the problem is inside one.
    pub record: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)?;
        if let Some(record) = self.record {
            write!(f, " (record {record})")?;
        }
        Ok(())
    }
}

/// An input document the ETL refuses. Nothing is published when one is found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{place}: {problem}")]
pub struct InputError {
    pub place: Place,
    pub problem: String,
}

/// A failure of the storage behind the ETL (S3 or a local folder).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}: no such object")]
    NotFound(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Service { what: String, message: String },
}

impl StorageError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            what: what.into(),
            source,
        }
    }

    pub fn service(what: impl Into<String>, message: impl fmt::Display) -> Self {
        StorageError::Service {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

/// Why an ETL run stopped. In every case the previously published snapshot is untouched,
/// except [`EtlError::Publish`], which names the tables already replaced.
#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    #[error("bad input: {0}")]
    Input(#[from] InputError),
    #[error("missing input {file}: the source must hold every `a/<entity>.json` export")]
    MissingInput { file: String },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("writing table `{table}`: {message}")]
    Write { table: String, message: String },
    /// Base a's lease: another run holds it, or this run lost it.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
    /// A sharded run's plan or reports are not what its publisher needs, or its spans did not
    /// tile an export.
    #[error("sharded run: {0}")]
    Plan(String),
    /// A worker stopped because another table had already failed.
    #[error("stopped because another table failed")]
    Cancelled,
    #[error(
        "publishing stopped at table `{table}` ({source}); the tables switched before it were put back to the previous run{}",
        if done.is_empty() { String::new() } else { format!(", but for [{}], which name this run: the crawler waits until a run publishes all four", done.join(", ")) }
    )]
    Publish {
        table: String,
        done: Vec<String>,
        #[source]
        source: StorageError,
    },
}

impl EtlError {
    /// A failure of the input itself: another attempt on the same input fails the same way.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, EtlError::Input(_) | EtlError::MissingInput { .. })
    }
}
