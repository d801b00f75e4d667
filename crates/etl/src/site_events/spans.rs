//! The events' objects cut into spans of lines that the workers read side by side, each
//! through a window of its own.
//!
//! Before this, one reader thread cut every object into 4 MiB blocks and handed them to the
//! workers: on two cores that third thread took a share of a core, each block was copied by
//! one core and parsed by another after it had left the cache (the page-cache copy was 15%
//! of a run in `perf`), and each object was one S3 stream, about 80 MB/s in a function, below
//! the 188 MB/s one vCPU parses (docs/BENCHMARKS.md). Now each worker reads its span's bytes
//! itself, one window at a time, and parses them while they are in its cache; a span of an
//! object in S3 is its own ranged read ([`crate::storage::Storage::open_range`], several
//! chunks in flight past 8 MiB).
//!
//! A span is a byte range `start..stop` of one object, cut with no look at the bytes: it
//! holds the lines that *start* in it. Its reader begins one byte early and skips through the
//! first `\n` (a line starts at `start` exactly when the byte before it is a `\n`), and reads
//! past `stop` to the end of the last line that started before it. So the spans of an object
//! hold each of its lines once, whatever the cuts, without a plan read beforehand.

use std::io::Read;

use crate::error::StorageError;
use crate::json_array::Span;
use crate::run::Split;
use crate::shard::{open_span, Part};
use crate::storage::Storage;

/// The window a worker reads a span through: small enough to stay in a core's cache between
/// the copy and the parse; a line longer than it grows it.
pub const WINDOW: usize = 1 << 20;

/// Lines `start..stop` of object `file` (an index into the run's objects): those starting at
/// or after `start` and before `stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSpan {
    pub file: usize,
    pub start: u64,
    pub stop: u64,
}

/// Cuts the objects (`(key, size)`) into spans for `workers` as base a cuts its exports
/// ([`Split::Auto`]: about a quarter of a worker's share each, 16 MiB at least; each object
/// whole for one worker), so that workers taking the largest first end together. Largest
/// first.
pub fn plan(files: &[(String, u64)], workers: usize) -> Vec<LineSpan> {
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let mut spans: Vec<LineSpan> = files
        .iter()
        .enumerate()
        .filter(|(_, (_, size))| *size > 0)
        .flat_map(|(file, (_, size))| {
            // Every byte of events weighs the same.
            let pieces = Split::Auto.pieces(*size, *size, total, workers) as u64;
            let each = size.div_ceil(pieces);
            (0..pieces).map(move |k| LineSpan {
                file,
                start: k * each,
                stop: ((k + 1) * each).min(*size),
            })
        })
        .filter(|s| s.start < s.stop)
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.stop - s.start));
    spans
}

/// Reads the lines of `span` of `key` (`size` bytes) through `window`, and hands them to
/// `each` a window at a time: whole lines, each ended by its `\n` but the object's last one
/// when it has none. `window` is the worker's, kept from span to span (empty: made
/// [`WINDOW`] long): its bytes are initialized once (zeroing a window per read would cost as
/// much as the read).
pub fn read_lines<E: From<StorageError>>(
    source: &dyn Storage,
    key: &str,
    size: u64,
    span: LineSpan,
    window: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    // One byte early: whether a line starts at `start` is the byte before it.
    let from = span.start.saturating_sub(1);
    let part = Part {
        key: key.to_owned(),
        size,
        span: Span {
            start: from,
            column: 1,
            stop: (span.stop < size).then_some(span.stop),
        },
        k: 0,
        spans: 1,
    };
    let io = |e: std::io::Error| StorageError::io(source.describe(key), e);
    let mut input = open_span(source, &part)?;
    if window.is_empty() {
        window.resize(WINDOW, 0);
    }
    // `window[..filled]` holds the object's bytes from offset `at`.
    let (mut at, mut filled) = (from, 0);
    let mut skipping = span.start > 0;
    loop {
        if filled == window.len() {
            // A line longer than the window: grow it.
            window.resize(window.len() * 2, 0);
        }
        let n = read_full(&mut input, &mut window[filled..]).map_err(io)?;
        let eof = filled + n < window.len();
        filled += n;
        let mut begin = 0;
        if skipping {
            match memchr::memchr(b'\n', &window[..filled]) {
                Some(nl) => {
                    begin = nl + 1;
                    skipping = false;
                }
                None if eof => return Ok(()),
                None => {
                    at += filled as u64;
                    filled = 0;
                    continue;
                }
            }
        }
        // The lines of this window, whole, then those of them that start before `stop`.
        let lines_end = if eof {
            filled
        } else {
            memchr::memrchr(b'\n', &window[begin..filled]).map_or(begin, |nl| begin + nl + 1)
        };
        let end = stop_within(&window[..lines_end], begin, at, span.stop);
        if end > begin {
            each(&window[begin..end])?;
        }
        if end < lines_end || eof {
            return Ok(()); // a line started at or past `stop`, or the object ended
        }
        // The unfinished last line moves to the window's start for the next read.
        window.copy_within(lines_end..filled, 0);
        at += lines_end as u64;
        filled -= lines_end;
    }
}

/// Where the lines of `lines[begin..]` (whole lines, `lines[0]` at object offset `at`) that
/// start before `stop` end.
fn stop_within(lines: &[u8], begin: usize, at: u64, stop: u64) -> usize {
    if at + lines.len() as u64 <= stop {
        return lines.len();
    }
    let stop_in = (stop.saturating_sub(at) as usize).max(begin);
    if stop_in == begin {
        return begin;
    }
    // The line holding byte `stop_in - 1` ends the span: through its `\n`.
    match memchr::memchr(b'\n', &lines[stop_in - 1..]) {
        Some(nl) => stop_in + nl,
        None => lines.len(),
    }
}

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalDir;

    /// Every span of every cut, read through windows of every size, gives back the object's
    /// lines, each once and in order. Relies on the local storage only.
    fn lines_read(body: &[u8], cuts: &[u64], window_bytes: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/part.json"), body).unwrap();
        let source = LocalDir::new(dir.path());
        let size = body.len() as u64;
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < size));
        bounds.push(size);
        let mut out = Vec::new();
        for pair in bounds.windows(2) {
            let span = LineSpan {
                file: 0,
                start: pair[0],
                stop: pair[1],
            };
            let mut window = vec![0; window_bytes];
            read_lines::<StorageError>(&source, "b/part.json", size, span, &mut window, |b| {
                assert!(b.ends_with(b"\n") || out.len() + b.len() == body.len());
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn spans_hold_each_line_once_wherever_the_cuts_fall() {
        let mut body = Vec::new();
        for i in 0..400 {
            // Short, empty and long lines (longer than the smallest windows).
            let len = [3, 0, 40, 200, 7][i % 5] + i % 13;
            body.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            body.push(b'\n');
        }
        let size = body.len() as u64;
        for ends_with_newline in [true, false] {
            let body = if ends_with_newline {
                body.clone()
            } else {
                body[..body.len() - 1].to_vec()
            };
            for window in [64, 100, 4096, WINDOW] {
                for step in [1u64, 2, 5, 37, 64, 199, 1000, size] {
                    let cuts: Vec<u64> =
                        (1..).map(|k| k * step).take_while(|&c| c < size).collect();
                    assert_eq!(
                        lines_read(&body, &cuts, window),
                        body,
                        "window {window}, a cut every {step} bytes, newline at end {ends_with_newline}"
                    );
                }
                // Cuts on each side of a newline and on the last byte.
                let nl = body.iter().position(|&b| b == b'\n').unwrap() as u64;
                for cuts in [
                    vec![nl],
                    vec![nl + 1],
                    vec![nl - 1, nl, nl + 1],
                    vec![size - 1],
                ] {
                    assert_eq!(lines_read(&body, &cuts, window), body, "cuts {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn plans_cover_every_object_and_put_the_largest_first() {
        let files = vec![
            ("b/a.json".to_owned(), 100 << 20),
            ("b/empty.json".to_owned(), 0),
            ("b/b.json".to_owned(), 20 << 20),
        ];
        let plan = plan(&files, 2);
        for (i, (_, size)) in files.iter().enumerate() {
            let mut of: Vec<_> = plan.iter().filter(|s| s.file == i).collect();
            of.sort_by_key(|s| s.start);
            assert_eq!(of.first().map_or(0, |s| s.start), 0);
            assert_eq!(of.last().map_or(0, |s| s.stop), *size);
            assert!(of.windows(2).all(|w| w[0].stop == w[1].start));
        }
        // 120 MiB for two workers: spans of 16 MiB at least (a quarter share is 15 MiB).
        assert_eq!(plan.iter().filter(|s| s.file == 0).count(), 7);
        assert_eq!(plan.iter().filter(|s| s.file == 2).count(), 2);
        assert!(plan
            .windows(2)
            .all(|w| w[0].stop - w[0].start >= w[1].stop - w[1].start));
        // One worker: each object whole.
        assert_eq!(super::plan(&files, 1).len(), 2);
    }
}
