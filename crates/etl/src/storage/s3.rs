//! A bucket, through the AWS SDK. Large objects stream both ways: reads through the
//! response body, writes through a multipart upload of 8 MiB parts, so memory does not grow
//! with object size.

use std::io::{Read, Write};

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use super::{Condition, ObjectWrite, Storage};
use crate::error::StorageError;

/// S3 accepts parts of 5 MiB and more (but the last).
const PART_SIZE: usize = 8 << 20;

/// One bucket. Its methods block: call them from a blocking thread, not from async code.
#[derive(Clone, Debug)]
pub struct S3Bucket {
    client: Client,
    bucket: String,
    handle: Handle,
}

fn sdk_error<E, R>(what: String, e: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StorageError::service(what, DisplayErrorContext(e))
}

/// Whether a conditional write failed because its condition did not hold.
fn lost_condition<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    e.as_service_error().is_some_and(|s| {
        matches!(
            s.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
        )
    })
}

impl S3Bucket {
    /// `handle` is the runtime the SDK's futures run on.
    pub fn new(client: Client, bucket: impl Into<String>, handle: Handle) -> Self {
        S3Bucket {
            client,
            bucket: bucket.into(),
            handle,
        }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// The runtime the SDK's futures run on.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Bytes `start..end` of `key`, whole, from one ranged GET.
    pub(super) async fn get_range_bytes(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<bytes::Bytes, StorageError> {
        let out = self
            .get_object(key, Some(format!("bytes={start}-{}", end - 1)))
            .await?;
        out.body
            .collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| StorageError::service(format!("reading {}", self.describe(key)), e))
    }

    /// `GetObject`, whole or one range: [`StorageError::NotFound`] for a missing key.
    async fn get_object(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(StorageError::NotFound(self.describe(key)))
            }
            Err(e) => Err(sdk_error(format!("reading {}", self.describe(key)), e)),
        }
    }
}

impl S3Bucket {
    /// `GetObject`, whole or one range, as a blocking stream.
    fn get_stream(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<Box<dyn Read + Send>, StorageError> {
        let out = self.handle.block_on(self.get_object(key, range))?;
        let reader = Box::pin(out.body.into_async_read());
        Ok(Box::new(SyncIoBridge::new_with_handle(
            reader,
            self.handle.clone(),
        )))
    }
}

impl Storage for S3Bucket {
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        self.get_stream(key, None)
    }

    fn open_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<Box<dyn Read + Send>, StorageError> {
        if end <= start {
            return Ok(Box::new(std::io::empty()));
        }
        // RFC 9110's `bytes=first-last`, both inclusive; one range per GET ("Amazon S3 doesn't
        // support retrieving multiple ranges of data per GET request", GetObject's `Range`).
        if end - start <= super::prefetch::CHUNK {
            return self.get_stream(key, Some(format!("bytes={start}-{}", end - 1)));
        }
        // A larger range: several ranged GETs in flight.
        Ok(Box::new(super::prefetch::Prefetch::open(
            self,
            key,
            start,
            end,
            super::prefetch::DEPTH,
        )?))
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWrite>, StorageError> {
        Ok(Box::new(S3Write {
            bucket: self.clone(),
            key: key.to_owned(),
            buf: Vec::with_capacity(PART_SIZE),
            upload_id: None,
            parts: Vec::new(),
            done: false,
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.get_tagged(key)?.map(|(body, _)| body))
    }

    fn put(&self, key: &str, body: &[u8]) -> Result<(), StorageError> {
        self.handle
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body.to_vec()))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| sdk_error(format!("writing {}", self.describe(key)), e))
    }

    fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StorageError> {
        let what = || format!("reading {}", self.describe(key));
        self.handle.block_on(async {
            match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => {
                    let etag = out.e_tag().unwrap_or_default().to_owned();
                    let body = out
                        .body
                        .collect()
                        .await
                        .map_err(|e| StorageError::service(what(), e))?;
                    Ok(Some((body.to_vec(), etag)))
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(sdk_error(what(), e)),
            }
        })
    }

    fn put_if(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<String>, StorageError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()));
        let request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Matches(etag) => request.if_match(etag),
        };
        match self.handle.block_on(request.send()) {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            // 412: the condition did not hold. 409 ConditionalRequestConflict: another
            // conditional write to the key was in flight. 404 NoSuchKey: If-Match on a key
            // that is gone. In each, another writer won ("Conditional writes", S3 user guide,
            // "Conditional write error responses"); the caller reads the key again.
            Err(e) if lost_condition(&e) => Ok(None),
            Err(e) => Err(sdk_error(format!("writing {}", self.describe(key)), e)),
        }
    }

    fn list_sizes(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .handle
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.take())
                        .send(),
                )
                .map_err(|e| sdk_error(format!("listing {}", self.describe(prefix)), e))?;
            keys.extend(out.contents().iter().filter_map(|o| {
                o.key()
                    .map(|k| (k.to_owned(), o.size().unwrap_or(0).max(0) as u64))
            }));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn uri(&self, key: &str) -> String {
        self.describe(key)
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::service("deleting objects", e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::service("deleting objects", e))?;
            let out = self
                .handle
                .block_on(
                    self.client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete)
                        .send(),
                )
                .map_err(|e| sdk_error(format!("deleting from s3://{}", self.bucket), e))?;
            if let Some(err) = out.errors().first() {
                return Err(StorageError::service(
                    format!("deleting {}", self.describe(err.key().unwrap_or("?"))),
                    err.message().unwrap_or("refused"),
                ));
            }
        }
        Ok(())
    }
}

/// A multipart upload fed by `Write`. Small objects (under one part) go up in one PutObject.
struct S3Write {
    bucket: S3Bucket,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    done: bool,
}

impl S3Write {
    fn what(&self) -> String {
        format!("writing {}", self.bucket.describe(&self.key))
    }

    fn upload_part(&mut self) -> std::io::Result<()> {
        let b = &self.bucket;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = b
                    .handle
                    .block_on(
                        b.client
                            .create_multipart_upload()
                            .bucket(&b.bucket)
                            .key(&self.key)
                            .checksum_algorithm(ChecksumAlgorithm::Crc32)
                            .send(),
                    )
                    .map_err(|e| std::io::Error::other(sdk_error(self.what(), e)))?;
                let id = out
                    .upload_id()
                    .ok_or_else(|| std::io::Error::other(format!("{}: no upload id", self.what())))?
                    .to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let out = b
            .handle
            .block_on(
                b.client
                    .upload_part()
                    .bucket(&b.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| std::io::Error::other(sdk_error(self.what(), e)))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        Ok(())
    }
}

impl Write for S3Write {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PART_SIZE {
            self.upload_part()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWrite for S3Write {
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        let b = self.bucket.clone();
        match self.upload_id.clone() {
            None => {
                let body = std::mem::take(&mut self.buf);
                b.handle
                    .block_on(
                        b.client
                            .put_object()
                            .bucket(&b.bucket)
                            .key(&self.key)
                            .body(ByteStream::from(body))
                            .send(),
                    )
                    .map_err(|e| std::io::Error::other(sdk_error(self.what(), e)))?;
            }
            Some(id) => {
                if !self.buf.is_empty() {
                    self.upload_part()?;
                }
                let parts = std::mem::take(&mut self.parts);
                b.handle
                    .block_on(
                        b.client
                            .complete_multipart_upload()
                            .bucket(&b.bucket)
                            .key(&self.key)
                            .upload_id(&id)
                            .multipart_upload(
                                CompletedMultipartUpload::builder()
                                    .set_parts(Some(parts))
                                    .build(),
                            )
                            .send(),
                    )
                    .map_err(|e| std::io::Error::other(sdk_error(self.what(), e)))?;
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for S3Write {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.done, self.upload_id.take()) {
            // Abandoned: abort so the parts stop costing storage (the lifecycle rule would
            // also clean them up after a day). Spawned: drop may run on an async thread.
            let b = self.bucket.clone();
            let key = self.key.clone();
            b.handle.clone().spawn(async move {
                let _ = b
                    .client
                    .abort_multipart_upload()
                    .bucket(&b.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
            });
        }
    }
}
