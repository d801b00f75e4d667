//! A local folder standing for a bucket: `<root>/<key>`.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{Condition, ObjectWrite, Storage};
use crate::error::StorageError;

/// A local object's ETag: a hash of its bytes (S3's is their MD5 for a single-part object;
/// any hash that changes with the bytes serves the conditional writes).
fn etag(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// A folder that mirrors a bucket's layout.
#[derive(Clone, Debug)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// A temporary sibling of `path`, renamed over it when complete (same folder, so the
    /// rename is atomic).
    fn temp_for(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
    }

    fn parent_dirs(&self, path: &Path) -> Result<(), StorageError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| StorageError::io(dir.display().to_string(), e))?;
        }
        Ok(())
    }
}

struct LocalWrite {
    file: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Write for LocalWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWrite for LocalWrite {
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        fs::rename(&self.temp, &self.target)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for LocalWrite {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl LocalDir {
    /// The file at `key`; [`StorageError::NotFound`] when there is none.
    fn open_file(&self, key: &str) -> Result<File, StorageError> {
        let path = self.path(key);
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound(path.display().to_string()),
            _ => StorageError::io(path.display().to_string(), e),
        })
    }
}

impl Storage for LocalDir {
    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        Ok(Box::new(self.open_file(key)?))
    }

    fn open_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<Box<dyn Read + Send>, StorageError> {
        let mut file = self.open_file(key)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))
            .map_err(|e| StorageError::io(self.describe(key), e))?;
        Ok(Box::new(file.take(end.saturating_sub(start))))
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWrite>, StorageError> {
        let target = self.path(key);
        self.parent_dirs(&target)?;
        let temp = Self::temp_for(&target);
        let file =
            File::create(&temp).map_err(|e| StorageError::io(temp.display().to_string(), e))?;
        Ok(Box::new(LocalWrite {
            file: BufWriter::with_capacity(1 << 20, file),
            temp,
            target,
            done: false,
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(path.display().to_string(), e)),
        }
    }

    fn put(&self, key: &str, body: &[u8]) -> Result<(), StorageError> {
        let mut w = self.create(key)?;
        let what = || self.describe(key);
        w.write_all(body).map_err(|e| StorageError::io(what(), e))?;
        w.finish().map_err(|e| StorageError::io(what(), e))
    }

    fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
        Ok(self.get(key)?.map(|b| {
            let tag = etag(&b);
            (b, tag)
        }))
    }

    /// The condition and the write under an exclusive lock of a hidden file beside the key
    /// (`flock`, which every process writing the folder takes), so two processes racing for
    /// one key behave as two S3 clients do.
    fn put_if(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<String>, StorageError> {
        let path = self.path(key);
        self.parent_dirs(&path)?;
        let lock_path = path.with_file_name(format!(
            ".{}.lock",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let io = |e| StorageError::io(lock_path.display().to_string(), e);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let holds = match (condition, self.get(key)?) {
            (Condition::Absent, current) => current.is_none(),
            (Condition::Matches(tag), Some(current)) => etag(&current) == tag,
            (Condition::Matches(_), None) => false,
        };
        if !holds {
            return Ok(None);
        }
        self.put(key, body)?;
        Ok(Some(etag(body)))
        // The lock is released when `lock` is dropped.
    }

    fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        // The folder part of the prefix, then a filter on the rest, as S3 matches prefixes.
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut keys = Vec::new();
        let mut stack = vec![self.path(dir)];
        while let Some(d) = stack.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io(d.display().to_string(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(d.display().to_string(), e))?;
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .map_err(|e| StorageError::io(path.display().to_string(), e))?;
                if kind.is_dir() {
                    stack.push(path);
                    continue;
                }
                // A link counts as what it points to: a folder of links to the exports is read
                // as the exports (the link's own size made a run read the first few bytes of
                // each and refuse it as cut short). A link to a folder is not followed: it
                // could lead back up the tree.
                let meta = fs::metadata(&path)
                    .map_err(|e| StorageError::io(path.display().to_string(), e))?;
                if meta.is_dir() {
                    continue;
                }
                let rel = path
                    .strip_prefix(&self.root)
                    .expect("listed under the root");
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                // Writes in progress and the locks of conditional writes are not objects.
                let temp = key.rsplit('/').next().is_some_and(|n| {
                    n.starts_with('.') && (n.ends_with(".tmp") || n.ends_with(".lock"))
                });
                if key.starts_with(prefix) && !temp {
                    keys.push((key, meta.len()));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn uri(&self, key: &str) -> String {
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file:{}", root.join(key).display())
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        for key in keys {
            let path = self.path(key);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(path.display().to_string(), e)),
            }
            // A bucket has no folders: drop the ones this left empty (not the root).
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root || fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linked file is listed with its target's size, and read whole; a link to a folder is
    /// not followed (relies on the local file system's symbolic links).
    #[cfg(unix)]
    #[test]
    fn links_are_listed_as_what_they_point_to() {
        let data = tempfile::tempdir().unwrap();
        let body = vec![b'x'; 5000];
        fs::write(data.path().join("sessions.json"), &body).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink(
            data.path().join("sessions.json"),
            dir.path().join("a/sessions.json"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        let store = LocalDir::new(dir.path());
        let listed = store.list_sizes("a/").unwrap();
        assert_eq!(listed, vec![("a/sessions.json".to_owned(), 5000)]);
        let mut read = Vec::new();
        store
            .open("a/sessions.json")
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, body);
    }

    /// Conditional writes: `Absent` only where nothing is, `Matches` only on the ETag read,
    /// and a write that lost names no ETag (relies on nothing but the local file system).
    #[test]
    fn conditional_writes_hold_only_under_their_condition() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        let first = store
            .put_if("k/lease.json", b"one", Condition::Absent)
            .unwrap()
            .unwrap();
        assert!(store
            .put_if("k/lease.json", b"two", Condition::Absent)
            .unwrap()
            .is_none());
        assert!(store
            .put_if("k/lease.json", b"two", Condition::Matches("\"other\""))
            .unwrap()
            .is_none());
        let (body, tag) = store.get_tagged("k/lease.json").unwrap().unwrap();
        assert_eq!(
            (body.as_slice(), tag.as_str()),
            (&b"one"[..], first.as_str())
        );
        assert!(store
            .put_if("k/lease.json", b"two", Condition::Matches(&first))
            .unwrap()
            .is_some());
        assert!(store
            .put_if("k/none.json", b"x", Condition::Matches(&first))
            .unwrap()
            .is_none());
        // The lock file is no object.
        assert_eq!(store.list("k/").unwrap(), ["k/lease.json"]);
    }
}
