//! A local folder that fails on purpose, for tests of what a run leaves behind after a fault.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Condition, LocalDir, ObjectWrite, Storage};
use crate::error::StorageError;

/// A [`LocalDir`] with faults injected: an object stream that fails, a small write that fails,
/// or conditional writes carried out whose answer is lost.
///
/// ```
/// use etl::storage::{Condition, FaultyDir, Storage};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = FaultyDir::new(dir.path());
/// store.lose_put_if_answers(1);
/// // Written, but answered as refused: what an SDK's retry of a write sees when the
/// // connection was reset after S3 carried it out.
/// assert_eq!(store.put_if("k", b"v", Condition::Absent).unwrap(), None);
/// assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
/// ```
pub struct FaultyDir {
    inner: LocalDir,
    fail_create: usize,
    creates: AtomicUsize,
    fail_put: Option<String>,
    lose_put_if_answers: AtomicUsize,
}

impl FaultyDir {
    /// The folder `root`, without faults yet.
    pub fn new(root: &Path) -> Self {
        Self {
            inner: LocalDir::new(root),
            fail_create: 0,
            creates: AtomicUsize::new(0),
            fail_put: None,
            lose_put_if_answers: AtomicUsize::new(0),
        }
    }

    /// The `n`-th object stream ([`Storage::create`], counting from 1) fails to write.
    pub fn failing_create(mut self, n: usize) -> Self {
        self.fail_create = n;
        self
    }

    /// How many object streams were started ([`Storage::create`]), the failing one included.
    pub fn creates(&self) -> usize {
        self.creates.load(Ordering::SeqCst)
    }

    /// Every [`Storage::put`] of `key` fails (as S3 answering 503 SlowDown five times).
    pub fn failing_put(mut self, key: &str) -> Self {
        self.fail_put = Some(key.to_owned());
        self
    }

    /// From now, the next `n` conditional writes are carried out but answered as refused.
    pub fn lose_put_if_answers(&self, n: usize) {
        self.lose_put_if_answers.store(n, Ordering::SeqCst);
    }
}

/// An object stream that fails.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("injected: disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWrite for Broken {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Err(std::io::Error::other("injected"))
    }
}

impl Storage for FaultyDir {
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
    fn open(&self, key: &str) -> Result<Box<dyn std::io::Read + Send>, StorageError> {
        self.inner.open(key)
    }
    fn open_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<Box<dyn std::io::Read + Send>, StorageError> {
        self.inner.open_range(key, start, end)
    }
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWrite>, StorageError> {
        if self.creates.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_create {
            return Ok(Box::new(Broken));
        }
        self.inner.create(key)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn put(&self, key: &str, body: &[u8]) -> Result<(), StorageError> {
        if self.fail_put.as_deref() == Some(key) {
            return Err(StorageError::service(key, "injected: 503 SlowDown"));
        }
        self.inner.put(key, body)
    }
    fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
        self.inner.get_tagged(key)
    }
    fn put_if(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<String>, StorageError> {
        let written = self.inner.put_if(key, body, condition)?;
        let lose = self
            .lose_put_if_answers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Ok(if lose { None } else { written })
    }
    fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        self.inner.list_sizes(prefix)
    }
    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }
    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        self.inner.delete(keys)
    }
}
