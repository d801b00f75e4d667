//! The one storage abstraction: the same ETL code runs against S3 (and the local emulator)
//! and a local folder that mirrors a bucket's layout.
//!
//! The interface is blocking: the transformation is CPU-bound plain code that runs on a
//! blocking thread, and the S3 implementation drives the SDK's futures from there.

mod faulty;
mod local;
pub mod prefetch;
mod s3;

pub use faulty::FaultyDir;
pub use local::LocalDir;
pub use s3::S3Bucket;

use std::io::{Read, Write};

use crate::error::StorageError;

/// An object being written. Nothing is visible under its key until [`ObjectWrite::finish`]
/// returns; dropping it unfinished abandons the write.
pub trait ObjectWrite: Write + Send {
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// The condition of a conditional write ([`Storage::put_if`]), as S3 takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition<'a> {
    /// No object exists at the key (`If-None-Match: *`).
    Absent,
    /// The object at the key has this ETag (`If-Match`).
    Matches(&'a str),
}

/// A bucket, or a folder standing for one. Keys use `/` whatever the platform.
pub trait Storage: Send + Sync {
    /// How messages name `key`: `s3://bucket/key` or a path.
    fn describe(&self, key: &str) -> String;

    /// Streams an object. [`StorageError::NotFound`] when it does not exist.
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError>;

    /// Streams bytes `start..end` of an object (`end` at most its size): one ranged read,
    /// which S3 serves from any byte, so that parts of one object are read side by side.
    fn open_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<Box<dyn Read + Send>, StorageError>;

    /// Starts writing an object; it replaces `key` atomically when finished.
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWrite>, StorageError>;

    /// A small object's bytes, or `None` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Writes a small object, replacing `key` atomically.
    fn put(&self, key: &str, body: &[u8]) -> Result<(), StorageError>;

    /// A small object's bytes and its ETag, or `None` when it does not exist.
    fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError>;

    /// Writes a small object only if `condition` holds when the write lands: its new ETag, or
    /// `None` when the condition did not hold (another writer got there first). Two writers
    /// with the same condition never both succeed: S3 evaluates the condition and the write
    /// as one step ("Conditional writes", S3 user guide).
    fn put_if(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<String>, StorageError>;

    /// Every key under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .list_sizes(prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Every key under `prefix` with its size in bytes, sorted by key.
    fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError>;

    /// The absolute URI other readers find `key` by: `s3://bucket/key`, or `file:/path` for a
    /// folder (as Hadoop and Spark write local paths).
    fn uri(&self, key: &str) -> String;

    /// Deletes the keys; missing ones are not an error.
    fn delete(&self, keys: &[String]) -> Result<(), StorageError>;
}
