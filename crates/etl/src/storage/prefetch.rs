//! A byte range of an S3 object read as several ranged GETs in flight at once, handed to the
//! reader in order: one span's reader is no longer bound by one connection's speed.
//!
//! One S3 connection from a Lambda function is reported at 50 to 90 MB/s, and S3's guidelines
//! recommend parallel byte-range fetches to go past it ("Best practices design patterns:
//! optimizing Amazon S3 performance", "Use Byte-Range Fetches"); the ETL parses about 400 MB/s
//! per vCPU (docs/BENCHMARKS.md). Written here because the SDK for Rust does not split a GET
//! (awslabs/aws-sdk-rust discussion 1024), and its transfer manager
//! (`aws-sdk-s3-transfer-manager` 0.1) is a developer preview "NOT recommended for production",
//! which downloads to a file or a stream of parts without a blocking reader.

use std::collections::VecDeque;
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::task::JoinHandle;

use super::{S3Bucket, Storage};
use crate::error::StorageError;

/// The bytes of one ranged GET: large enough that a request's latency is small beside its
/// transfer (8 MiB take 0.1 s at 80 MB/s), as S3's guidelines size byte-range fetches (8 or
/// 16 MiB).
pub const CHUNK: u64 = 8 << 20;

/// Ranged GETs in flight per reader: a span then reads at up to four connections' speed, and
/// holds at most four chunks (32 MiB) ahead of its parser.
pub const DEPTH: usize = 4;

type Fetch = JoinHandle<Result<Bytes, StorageError>>;

/// Bytes `start..end` of one object, [`DEPTH`] chunks in flight.
pub struct Prefetch {
    bucket: S3Bucket,
    key: String,
    /// Where the next chunk to request starts.
    next: u64,
    end: u64,
    depth: usize,
    inflight: VecDeque<Fetch>,
    current: Bytes,
}

impl Prefetch {
    /// Requests the first chunks and waits for the first, so that a missing object or a
    /// refused read fails here, as a single GET's would.
    pub fn open(
        bucket: &S3Bucket,
        key: &str,
        start: u64,
        end: u64,
        depth: usize,
    ) -> Result<Self, StorageError> {
        let mut p = Prefetch {
            bucket: bucket.clone(),
            key: key.to_owned(),
            next: start,
            end,
            depth: depth.max(1),
            inflight: VecDeque::new(),
            current: Bytes::new(),
        };
        p.request();
        if let Some(first) = p.inflight.pop_front() {
            p.current = p.wait(first)?;
            p.request();
        }
        Ok(p)
    }

    /// Keeps `depth` chunks requested, while the range has bytes not yet requested.
    fn request(&mut self) {
        while self.inflight.len() < self.depth && self.next < self.end {
            let (start, end) = (self.next, (self.next + CHUNK).min(self.end));
            self.next = end;
            let bucket = self.bucket.clone();
            let key = self.key.clone();
            self.inflight.push_back(
                self.bucket
                    .handle()
                    .spawn(async move { bucket.get_range_bytes(&key, start, end).await }),
            );
        }
    }

    fn wait(&self, fetch: Fetch) -> Result<Bytes, StorageError> {
        self.bucket.handle().block_on(fetch).map_err(|e| {
            StorageError::service(format!("reading {}", self.bucket.describe(&self.key)), e)
        })?
    }
}

impl Read for Prefetch {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.current.has_remaining() {
            let Some(next) = self.inflight.pop_front() else {
                return Ok(0);
            };
            self.current = self.wait(next).map_err(io::Error::other)?;
            self.request();
        }
        let n = buf.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

impl Drop for Prefetch {
    /// A reader stopped early (a span ends at its last record, before its range's end) cancels
    /// the chunks it will not read.
    fn drop(&mut self) {
        for fetch in &self.inflight {
            fetch.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::primitives::ByteStream;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

    /// A bucket whose GETs of `key` answer each ranged request from `object`, and fail the
    /// one starting at `failing` (relies on: aws-smithy-mocks, no network).
    fn bucket(
        rt: &tokio::runtime::Runtime,
        object: &'static [u8],
        failing: Option<u64>,
    ) -> S3Bucket {
        let range_of = |input: &aws_sdk_s3::operation::get_object::GetObjectInput| {
            let r = input.range().unwrap().strip_prefix("bytes=").unwrap();
            let (a, b) = r.split_once('-').unwrap();
            (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap() + 1)
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut start = 0;
        while start < object.len() {
            let at = start;
            let rule =
                mock!(aws_sdk_s3::Client::get_object).match_requests(move |i| range_of(i).0 == at);
            rules.push(if failing == Some(at as u64) {
                rule.then_error(|| GetObjectError::unhandled("connection reset"))
            } else {
                rule.then_output(move || {
                    let (a, b) = (at, (at + CHUNK as usize).min(object.len()));
                    GetObjectOutput::builder()
                        .body(ByteStream::from_static(&object[a..b]))
                        .build()
                })
            });
            start += CHUNK as usize;
        }
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in &rules {
            interceptor = interceptor.with_rule(r);
        }
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        S3Bucket::new(
            aws_sdk_s3::Client::from_conf(conf),
            "b",
            rt.handle().clone(),
        )
    }

    fn object() -> &'static [u8] {
        let n = 2 * CHUNK as usize + 12_345;
        let bytes: Vec<u8> = (0..n).map(|i| (i * 7919 % 251) as u8).collect();
        Box::leak(bytes.into_boxed_slice())
    }

    #[test]
    fn the_chunks_arrive_in_order_whatever_the_depth() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let object = object();
        for depth in [1, 2, 4] {
            let b = bucket(&rt, object, None);
            // From the second chunk's start: the requests are that chunk and the last.
            let start = CHUNK;
            let mut read = Vec::new();
            Prefetch::open(&b, "k", start, object.len() as u64, depth)
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert!(read == object[start as usize..], "depth {depth}");
        }
    }

    #[test]
    fn a_failed_chunk_fails_the_read_naming_the_object() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let object = object();
        let b = bucket(&rt, object, Some(CHUNK));
        let mut reader = Prefetch::open(&b, "k", 0, object.len() as u64, 2).unwrap();
        let e = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("s3://b/k"), "{e}");
    }
}
