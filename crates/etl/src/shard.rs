//! One JSON-array export cut into spans that are read side by side, by threads of one run or
//! by separate functions, with the same tables and the same refusals as one reader.
//!
//! No engine splits one pretty-printed JSON array (Spark's multi-line JSON source reads a file
//! as one task; Athena's JSON SerDes want a record per line), so this is written here. What
//! makes it possible: a JSON string cannot hold a raw newline, so every newline in a document
//! lies between tokens. An export whose records each start on a line of their own, after the
//! same indentation, has a record start wherever `,` newline, that indentation and `{` follow
//! each other ([`Layout`]); a nested object written at the records' own indentation could look
//! the same, so a guess is never trusted: each span's reader stops at the first record starting
//! at or after the next span's start and reports where that was ([`Spanned::ended_at`]), and
//! the spans count only when each ended exactly where the next began ([`check_tiling`]).
//! Otherwise the export is read again whole. A document laid out any other way (minified, or
//! `[{` on one line) is one span.
//!
//! Places in a span are counted from its start; once the spans before it are read, a refusal is
//! moved to the document's own line and record ([`Spanned::rebase`]). The refusal reported is
//! the first in the document, as one reader would report it.

use std::io::Read;

use crate::error::{EtlError, StorageError};
use crate::json_array::{Span, Spanned};
use crate::storage::Storage;

/// The head read to learn a document's layout.
const HEAD: u64 = 64 * 1024;
/// The first window read around a cut; doubled until a record start is found.
const WINDOW: u64 = 64 * 1024;
/// How far before a cut a window starts, to see the `,` before a record's line.
const LOOK_BACK: u64 = 256;
/// What a span's first ranged read takes past the span's stop (to see the next record's `{`,
/// and the rest of a record that runs past it); more is read only when needed.
const SLACK: u64 = 64 * 1024;

/// How records start in one export: on their own line, after `indent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    indent: Vec<u8>,
}

impl Layout {
    /// The layout of a document from its first bytes: `[`, whitespace holding a newline, then
    /// the first record's `{`. `None` for any other start (nothing is split).
    pub fn learn(head: &[u8]) -> Option<Layout> {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let open = head.iter().position(|b| !b.is_ascii_whitespace())?;
        if head[open] != b'[' {
            return None;
        }
        let rest = &head[open + 1..];
        let first = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        if rest[first] != b'{' {
            return None;
        }
        let gap = &rest[..first];
        let line = memchr::memrchr(b'\n', gap)?;
        let indent = &gap[line + 1..];
        indent
            .iter()
            .all(|b| matches!(b, b' ' | b'\t'))
            .then(|| Layout {
                indent: indent.to_vec(),
            })
    }

    /// The 1-based column of a record's `{`.
    pub fn column(&self) -> usize {
        self.indent.len() + 1
    }

    /// The first record start at or after `from` in `window`: a `{` after a newline and the
    /// indentation, the last other byte before that newline a `,` (looked for in `window`
    /// only).
    fn find(&self, window: &[u8], from: usize) -> Option<usize> {
        let mut needle = Vec::with_capacity(self.indent.len() + 2);
        needle.push(b'\n');
        needle.extend_from_slice(&self.indent);
        needle.push(b'{');
        let skip = needle.len() - 1;
        let lead = from.saturating_sub(skip);
        memchr::memmem::find_iter(&window[lead..], &needle)
            .map(|at| lead + at)
            .filter(|nl| nl + skip >= from)
            .find(|&nl| {
                let before = window[..nl].iter().rposition(|b| !b.is_ascii_whitespace());
                before.is_some_and(|i| window[i] == b',')
            })
            .map(|nl| nl + skip)
    }
}

/// Where the spans of one export start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The export's key and size.
    pub key: String,
    pub size: u64,
    /// The first record of each span; the first span starts at the document's start (0).
    pub starts: Vec<u64>,
    /// The column of every span's first record but the first.
    pub column: usize,
}

impl Plan {
    /// The export read whole, as one span.
    pub fn whole(key: &str, size: u64) -> Plan {
        Plan {
            key: key.to_owned(),
            size,
            starts: vec![0],
            column: 1,
        }
    }

    /// The span `k`.
    pub fn span(&self, k: usize) -> Span {
        Span {
            start: self.starts[k],
            column: if k == 0 { 1 } else { self.column },
            stop: self.starts.get(k + 1).copied(),
        }
    }

    /// How many spans.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Never: a plan has its first span.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Span `k` as its reader takes it.
    pub fn part(&self, k: usize) -> Part {
        Part {
            key: self.key.clone(),
            size: self.size,
            span: self.span(k),
            k,
            spans: self.len(),
        }
    }

    /// The bytes span `k` covers, for scheduling.
    pub fn bytes(&self, k: usize) -> u64 {
        self.starts.get(k + 1).copied().unwrap_or(self.size) - self.starts[k]
    }
}

/// Cuts `key` (of `size` bytes) at `pieces - 1` evenly spaced places, each moved to the first
/// record start at or after it. Fewer spans when cuts meet the same record or the layout is
/// not one record per line.
pub fn plan(source: &dyn Storage, key: &str, size: u64, pieces: usize) -> Result<Plan, EtlError> {
    let mut plan = Plan::whole(key, size);
    if pieces <= 1 || size < 2 {
        return Ok(plan);
    }
    let head = read_all(source, key, 0, size.min(HEAD))?;
    let Some(layout) = Layout::learn(&head) else {
        return Ok(plan);
    };
    plan.column = layout.column();
    for i in 1..pieces as u64 {
        let cut = (size as u128 * i as u128 / pieces as u128) as u64;
        let last = *plan.starts.last().expect("the first span");
        if cut <= last {
            continue;
        }
        match next_start(source, key, size, &layout, cut)? {
            Some(start) if start > last => plan.starts.push(start),
            Some(_) => {}
            None => break,
        }
    }
    Ok(plan)
}

/// The first record start at or after `cut`, reading windows that double until one holds it.
fn next_start(
    source: &dyn Storage,
    key: &str,
    size: u64,
    layout: &Layout,
    cut: u64,
) -> Result<Option<u64>, EtlError> {
    let from = cut.saturating_sub(LOOK_BACK);
    let mut len = WINDOW;
    loop {
        let end = (cut + len).min(size);
        let window = read_all(source, key, from, end)?;
        if let Some(at) = layout.find(&window, (cut - from) as usize) {
            return Ok(Some(from + at as u64));
        }
        if end == size {
            return Ok(None);
        }
        len *= 2;
    }
}

fn read_all(source: &dyn Storage, key: &str, start: u64, end: u64) -> Result<Vec<u8>, EtlError> {
    let mut out = Vec::with_capacity((end - start) as usize);
    source
        .open_range(key, start, end)?
        .read_to_end(&mut out)
        .map_err(|e| StorageError::io(format!("reading {}", source.describe(key)), e))?;
    Ok(out)
}

/// One span of one export, all its reader needs: span `k` of `spans`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The export's key and size.
    pub key: String,
    pub size: u64,
    pub span: Span,
    pub k: usize,
    pub spans: usize,
}

/// A part's bytes: a first ranged read through a little past its stop, then, only if its
/// last record runs further (a stop that was not a record start), the rest of the document.
pub fn open_span<'s>(source: &'s dyn Storage, part: &Part) -> Result<SpanBytes<'s>, StorageError> {
    let span = part.span;
    let first_end = span.stop.map_or(part.size, |s| (s + SLACK).min(part.size));
    Ok(SpanBytes {
        source,
        key: part.key.clone(),
        at: first_end,
        size: part.size,
        current: source.open_range(&part.key, span.start, first_end)?,
    })
}

/// The reader [`open_span`] returns.
pub struct SpanBytes<'s> {
    source: &'s dyn Storage,
    key: String,
    /// Where the current read ends.
    at: u64,
    size: u64,
    current: Box<dyn Read + Send>,
}

impl Read for SpanBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() || self.at >= self.size {
                return Ok(n);
            }
            self.current = self
                .source
                .open_range(&self.key, self.at, self.size)
                .map_err(std::io::Error::other)?;
            self.at = self.size;
        }
    }
}

/// What one span's reading gave: where it ended, and its refusal if any.
#[derive(Debug)]
pub struct SpanOutcome<T> {
    pub spanned: Result<Spanned, EtlError>,
    /// What the span produced (its rows' count, its object).
    pub output: Option<T>,
}

/// The spans did not tile the document: span `span` ended at `ended_at`, the next began at
/// `next`. Its export is read again as one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untiled {
    pub span: usize,
    pub ended_at: u64,
    pub next: u64,
}

/// Checks the spans of `plan` tile the document, in order, and returns the first refusal in
/// the document moved to its own place, as one reader would give it: `Ok(Err(e))`. Spans
/// after one that failed are not looked at (they may have been stopped). `Err(Untiled)` when
/// a span did not end where the next began, before any refusal.
pub fn check_tiling(
    plan: &Plan,
    spans: &mut [Option<Result<Spanned, EtlError>>],
) -> Result<Result<(), EtlError>, Untiled> {
    let (mut lines, mut records) = (0u64, 0u64);
    for (k, span) in spans.iter_mut().enumerate().take(plan.len()) {
        match span.take() {
            Some(Ok(s)) => {
                let next = plan.starts.get(k + 1).copied().unwrap_or(plan.size);
                // The last span ends at the document's end, having checked it.
                let ended = if k + 1 == plan.len() {
                    plan.size
                } else {
                    s.ended_at
                };
                if ended != next {
                    return Err(Untiled {
                        span: k,
                        ended_at: s.ended_at,
                        next,
                    });
                }
                lines += s.newlines;
                records += s.records;
            }
            Some(Err(mut e)) => {
                if let EtlError::Input(input) = &mut e {
                    Spanned::rebase(&mut input.place, lines, records);
                }
                return Ok(Err(e));
            }
            None => return Ok(Err(EtlError::Cancelled)),
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_array::ArrayReader;
    use crate::storage::LocalDir;

    #[test]
    fn a_layout_is_learned_from_a_pretty_printed_head_only() {
        let l = Layout::learn(b"\xEF\xBB\xBF[\n  {\"Id\": 1}").unwrap();
        assert_eq!(l.column(), 3);
        assert_eq!(Layout::learn(b"[\r\n\t{").unwrap().column(), 2);
        assert_eq!(Layout::learn(b"[{\"Id\": 1},\n {\"Id\": 2}]"), None);
        assert_eq!(Layout::learn(b"{\"a\": [\n {"), None);
        assert_eq!(Layout::learn(b"[\n  1,\n  {"), None);
        assert_eq!(Layout::learn(b"[\n x {"), None);
    }

    #[test]
    fn a_record_start_needs_the_comma_the_newline_and_the_indentation() {
        let l = Layout::learn(b"[\n  {").unwrap();
        let doc = b"[\n  {\"a\": [\n  {\"b\": 1}],\n    \"c\": 2},\n  {\"a\": 3}\n]";
        let second = doc.windows(5).position(|w| w == b"{\"a\":").unwrap();
        let second = second
            + 1
            + doc[second + 1..]
                .windows(5)
                .position(|w| w == b"{\"a\":")
                .unwrap();
        // The nested `{` after `[` and a newline is not taken; the one after `,` is.
        assert_eq!(l.find(doc, 5), Some(second));
        assert_eq!(l.find(doc, second), Some(second));
        assert_eq!(l.find(doc, second + 1), None);
    }

    fn write(doc: &[u8]) -> (tempfile::TempDir, LocalDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.json"), doc).unwrap();
        let store = LocalDir::new(dir.path());
        (dir, store)
    }

    /// Reads every span of a plan cut in `pieces`, then checks the tiling: the ids in order,
    /// or the refusal, or `Untiled`.
    fn read_split(
        store: &LocalDir,
        size: u64,
        pieces: usize,
    ) -> Result<Result<Vec<String>, String>, Untiled> {
        let plan = plan(store, "d.json", size, pieces).unwrap();
        let mut ids = Vec::new();
        let mut outcomes = Vec::new();
        for k in 0..plan.len() {
            let bytes = open_span(store, &plan.part(k)).unwrap();
            let mut mine = Vec::new();
            let r = ArrayReader::span(bytes, "d.json", plan.span(k)).for_each_spanned(|e| {
                mine.push(
                    e.record
                        .get("Id")
                        .map(|v| v.get().to_owned())
                        .unwrap_or_default(),
                );
                Ok(())
            });
            ids.push(mine);
            outcomes.push(Some(r));
        }
        Ok(match check_tiling(&plan, &mut outcomes)? {
            Ok(()) => Ok(ids.concat()),
            Err(e) => Err(e.to_string()),
        })
    }

    fn read_whole(doc: &[u8]) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        ArrayReader::new(doc, "d.json")
            .for_each(|e| {
                ids.push(
                    e.record
                        .get("Id")
                        .map(|v| v.get().to_owned())
                        .unwrap_or_default(),
                );
                Ok(())
            })
            .map(|_| ids)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_cut_gives_what_one_reader_gives() {
        let good = "[\n  {\"Id\": 1, \"S\": \"a,\\n  {\"},\n  {\"Id\": 2,\n   \"N\": {\"x\": [\n  {}]}},\n  {\"Id\": \"3\"}\n]\n";
        let docs: Vec<Vec<u8>> = vec![
            good.as_bytes().to_vec(),
            // Refusals in the second and third records, a trailing comma, content after `]`,
            // invalid UTF-8 and a cut character, a document that ends inside a record.
            good.replace("\"Id\": 2", "\"Id\" 2").into_bytes(),
            good.replace("{\"Id\": \"3\"}", "{\"Id\": \"3\"},")
                .into_bytes(),
            format!("{good}  x\n  ,\n  {{}}").into_bytes(),
            good.replacen("\"a,", "\"a\u{1}", 1)
                .into_bytes()
                .iter()
                .map(|&b| if b == 1 { 0xFF } else { b })
                .collect(),
            [&good.as_bytes()[..good.len() - 3], b"\xC3"].concat(),
            good.as_bytes()[..good.len() - 8].to_vec(),
        ];
        let (_dir, store) = write(&docs[0]);
        let most = plan(&store, "d.json", docs[0].len() as u64, docs[0].len()).unwrap();
        assert_eq!(most.len(), 3, "a span per record: {most:?}");
        for doc in &docs {
            let (_dir, store) = write(doc);
            let whole = read_whole(doc);
            for pieces in 1..=doc.len() + 1 {
                match read_split(&store, doc.len() as u64, pieces) {
                    Ok(split) => assert_eq!(
                        split,
                        whole,
                        "{pieces} pieces of {:?}",
                        String::from_utf8_lossy(doc)
                    ),
                    Err(u) => panic!("untiled at {pieces} pieces: {u:?}"),
                }
            }
        }
    }

    #[test]
    fn a_guess_inside_a_record_is_caught_by_the_tiling() {
        // The nested object sits at the records' indentation after a `,`.
        let doc = b"[\n  {\"Id\": 1, \"N\": [1,\n  {\"x\": 2}]},\n  {\"Id\": 2}\n]";
        let (_dir, store) = write(doc);
        let nested = doc.windows(5).position(|w| w == b"{\"x\":").unwrap() as u64;
        let p = plan(&store, "d.json", doc.len() as u64, 3).unwrap();
        assert!(p.starts.contains(&nested), "{p:?}");
        let found = (1..=doc.len()).find_map(|n| read_split(&store, doc.len() as u64, n).err());
        assert_eq!(found.map(|u| u.next), Some(nested));
    }
}
