//! Streaming reader of a document whose top level is a JSON array of records.
//!
//! Written by hand because no library does this well: serde_json's `StreamDeserializer` reads
//! whitespace-separated values, not the elements of one array, and arrow-json reads only
//! newline-delimited input (BUILD-NOTES). The reader keeps a window over the input and parses
//! one element at a time from it, borrowing names and values from the window: a flat record
//! by hand ([`flat`]), any other by serde_json. Memory is bounded by the window (1 MiB, or the
//! largest record), not the document.
//!
//! Every refusal names the file, the line and column, and the record index where it applies:
//! a document that is not an array, an empty array, malformed JSON, invalid UTF-8, a record
//! that is not an object, trailing content.
//!
//! A reader can also take one [`Span`] of a document: the records that start in a byte range
//! ([`crate::shard`] finds where records start and checks that the spans tile the document).
//! Its places are then counted from the span's start; [`Spanned::rebase`] moves them.

use std::io::{ErrorKind, Read};

use crate::error::{EtlError, InputError, Place, StorageError};
use crate::record::{Name, Raw, Record};

pub(crate) mod flat;

const WINDOW: usize = 1 << 20;

/// One record and the means to name places inside it.
pub struct Element<'a> {
    /// 0-based position in the array.
    pub index: usize,
    pub record: Record<'a>,
    pub at: Locator<'a>,
}

/// Turns positions in the current window into file, line and column.
#[derive(Clone, Copy)]
pub struct Locator<'a> {
    file: &'a str,
    window: &'a [u8],
    base_line: usize,
    base_col: usize,
    start: usize,
    index: usize,
}

impl<'a> Locator<'a> {
    /// The place where the record starts.
    pub fn record(&self) -> Place {
        self.place(self.start, Some(self.index))
    }

    /// The place of a value of this record.
    pub fn value(&self, raw: Raw<'_>) -> Place {
        let offset = (raw.get().as_ptr() as usize).wrapping_sub(self.window.as_ptr() as usize);
        let offset = if offset <= self.window.len() {
            offset
        } else {
            self.start
        };
        self.place(offset, Some(self.index))
    }

    /// An [`InputError`] about a value of this record.
    pub fn error_at(&self, raw: Raw<'_>, problem: impl Into<String>) -> InputError {
        InputError {
            place: self.value(raw),
            problem: problem.into(),
        }
    }

    /// An [`InputError`] about the whole record.
    pub fn error(&self, problem: impl Into<String>) -> InputError {
        InputError {
            place: self.record(),
            problem: problem.into(),
        }
    }

    fn place(&self, offset: usize, record: Option<usize>) -> Place {
        let (line, column) = line_col(self.window, self.base_line, self.base_col, offset);
        Place {
            file: self.file.to_owned(),
            line,
            column,
            record,
        }
    }
}

fn line_col(window: &[u8], base_line: usize, base_col: usize, offset: usize) -> (usize, usize) {
    let before = &window[..offset.min(window.len())];
    match memchr::memrchr(b'\n', before) {
        Some(nl) => (
            base_line + memchr::memchr_iter(b'\n', before).count(),
            offset - nl,
        ),
        None => (base_line, base_col + offset),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// A span's first record, at `pos`.
    First,
    Elements,
    Done,
}

/// The part of a document one reader takes: the records whose `{` lies in `start..stop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The byte offset of the first record's `{` (0: the document's start, read whole).
    pub start: u64,
    /// Its 1-based column (a span starts on a record's line, after its indentation).
    pub column: usize,
    /// Where the next span's first record starts; `None`: through the document's end, with
    /// every check of its end.
    pub stop: Option<u64>,
}

impl Span {
    /// The whole document.
    pub const WHOLE: Span = Span {
        start: 0,
        column: 1,
        stop: None,
    };
}

/// What a reader of a span saw: its records and lines, and where it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spanned {
    /// Records read.
    pub records: u64,
    /// Newlines between the span's start and where it ended.
    pub newlines: u64,
    /// The byte offset where it stopped: the next record's `{` at or after the span's stop
    /// (the span's stop itself when the spans tile), or the document's end.
    pub ended_at: u64,
}

impl Spanned {
    /// Moves a place read in a span to the whole document's: `lines` newlines and `records`
    /// records came before the span.
    pub fn rebase(place: &mut Place, lines: u64, records: u64) {
        place.line += lines as usize;
        if let Some(r) = place.record.as_mut() {
            *r += records as usize;
        }
    }
}

/// Reads the records of one document. See the module doc.
pub struct ArrayReader<R> {
    src: R,
    file: String,
    buf: Vec<u8>,
    /// Next unread byte.
    pos: usize,
    /// Bytes `..end` hold input; `..checked` of them are known to be valid UTF-8.
    end: usize,
    checked: usize,
    eof: bool,
    /// Line and column of `buf[0]`, counted from the span's start.
    base_line: usize,
    base_col: usize,
    /// The document's byte offset of `buf[0]`.
    base_offset: u64,
    /// Invalid UTF-8 at `checked`: refused when the reader gets there, so that the refusal
    /// names the record it is in, wherever the reads happened to end.
    bad_utf8: bool,
    /// Where to stop ([`Span::stop`]).
    stop: Option<u64>,
    index: usize,
    state: State,
    /// The flat reader's memory of what came before each value of the last record.
    gaps: flat::LastGaps,
    /// The last record's field vector, emptied, so that each record does not allocate one.
    spare: Vec<(Name<'static>, Raw<'static>)>,
}

/// An emptied vector of fields, of any lifetime, keeping its allocation (collecting an empty
/// `IntoIter` into a vector of an element of the same size reuses the buffer in place).
fn recycle<'b>(mut fields: Vec<(Name<'_>, Raw<'_>)>) -> Vec<(Name<'b>, Raw<'b>)> {
    fields.clear();
    fields.into_iter().map(|_| unreachable!("empty")).collect()
}

impl<R: Read> ArrayReader<R> {
    /// `file` names the document in messages (`s3://bucket/a/students.json`).
    pub fn new(src: R, file: impl Into<String>) -> Self {
        Self::span(src, file, Span::WHOLE)
    }

    /// Reads the records of `span`, from `src` positioned at its start.
    pub fn span(src: R, file: impl Into<String>, span: Span) -> Self {
        ArrayReader {
            src,
            file: file.into(),
            buf: vec![0; WINDOW],
            pos: 0,
            end: 0,
            checked: 0,
            eof: false,
            base_line: 1,
            base_col: span.column,
            base_offset: span.start,
            bad_utf8: false,
            stop: span.stop,
            index: 0,
            state: if span.start == 0 {
                State::Start
            } else {
                State::First
            },
            gaps: flat::LastGaps::default(),
            spare: Vec::new(),
        }
    }

    /// How many records were read.
    pub fn count(&self) -> usize {
        self.index
    }

    /// Calls `f` with each record, in order, then checks the document ends after the array.
    pub fn for_each<F>(self, f: F) -> Result<usize, EtlError>
    where
        F: FnMut(&Element<'_>) -> Result<(), EtlError>,
    {
        Ok(self.for_each_spanned(f)?.records as usize)
    }

    /// [`ArrayReader::for_each`] over a span: stops before the first record starting at or
    /// after the span's stop (or checks the document's end when it has none).
    pub fn for_each_spanned<F>(mut self, mut f: F) -> Result<Spanned, EtlError>
    where
        F: FnMut(&Element<'_>) -> Result<(), EtlError>,
    {
        while self.state != State::Done {
            self.step(&mut f)?;
        }
        let (line, _) = line_col(&self.buf, self.base_line, self.base_col, self.pos);
        Ok(Spanned {
            records: self.index as u64,
            newlines: (line - 1) as u64,
            ended_at: self.offset(),
        })
    }

    fn step<F>(&mut self, f: &mut F) -> Result<(), EtlError>
    where
        F: FnMut(&Element<'_>) -> Result<(), EtlError>,
    {
        match self.state {
            State::Start => {
                while self.end < 3 && self.fill()? {}
                if self.buf[..self.end].starts_with(b"\xEF\xBB\xBF") {
                    self.pos = 3;
                }
                match self.skip_ws()? {
                    None => {
                        return Err(self
                            .error_here("empty document: expected a JSON array of records")
                            .into())
                    }
                    Some(b'[') => self.pos += 1,
                    Some(b) => {
                        return Err(self
                            .error_here(format!(
                                "expected a JSON array of records, found {}",
                                describe_start(b)
                            ))
                            .into())
                    }
                }
                match self.skip_ws()? {
                    Some(b']') => {
                        return Err(self
                            .error_here("empty array: the export holds no records")
                            .into())
                    }
                    Some(_) => self.state = State::Elements,
                    None => return Err(self.unterminated().into()),
                }
                self.element(f)
            }
            State::First => {
                self.state = State::Elements;
                self.element(f)
            }
            State::Elements => match self.skip_ws()? {
                Some(b',') => {
                    self.pos += 1;
                    match self.skip_ws()? {
                        Some(b']') => Err(self
                            .error_at_byte(
                                self.pos,
                                Some(self.index - 1),
                                "trailing comma after the record",
                            )
                            .into()),
                        Some(_) if self.stop.is_some_and(|s| self.offset() >= s) => {
                            // The next span's: stop before it.
                            self.state = State::Done;
                            Ok(())
                        }
                        Some(_) => self.element(f),
                        None => Err(self.unterminated().into()),
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    match self.skip_ws()? {
                        None => {
                            self.state = State::Done;
                            Ok(())
                        }
                        Some(_) => Err(self
                            .error_here("unexpected content after the array's closing `]`")
                            .into()),
                    }
                }
                Some(b) => Err(self
                    .error_at_byte(
                        self.pos,
                        Some(self.index - 1),
                        format!(
                            "expected `,` or `]` after the record, found {}",
                            describe_start(b)
                        ),
                    )
                    .into()),
                None => Err(self.unterminated().into()),
            },
            State::Done => Ok(()),
        }
    }

    /// Parses the element at `pos` and hands it to `f`.
    fn element<F>(&mut self, f: &mut F) -> Result<(), EtlError>
    where
        F: FnMut(&Element<'_>) -> Result<(), EtlError>,
    {
        enum Step {
            Done(usize),
            More,
            Unterminated,
            Malformed(serde_json::Error),
        }
        loop {
            let step = {
                // SAFETY: `check_utf8` validated `buf[..checked]`, and the window only ever
                // grows through it; compaction keeps a suffix starting at `pos`, which sits
                // after ASCII structure or a whole value, so on a character boundary. Parsing
                // from `&str` spares serde_json a second validation of every value.
                let text = unsafe { std::str::from_utf8_unchecked(&self.buf[..self.checked]) };
                let window = text.as_bytes();
                let mut fields = recycle(std::mem::take(&mut self.spare));
                let parsed = match flat::read(&text[self.pos..], &mut self.gaps, &mut fields) {
                    Some(used) => Ok((Record { fields }, used)),
                    None => {
                        let mut stream = serde_json::Deserializer::from_str(&text[self.pos..])
                            .into_iter::<Record>();
                        match stream.next() {
                            Some(Ok(record)) => Ok((record, stream.byte_offset())),
                            Some(Err(e)) if e.is_eof() && !self.eof => Err(Step::More),
                            Some(Err(e)) if e.is_eof() => Err(Step::Unterminated),
                            Some(Err(e)) => Err(Step::Malformed(e)),
                            None if !self.eof => Err(Step::More),
                            None => Err(Step::Unterminated),
                        }
                    }
                };
                match parsed {
                    Ok((record, consumed)) => {
                        let at = Locator {
                            file: &self.file,
                            window,
                            base_line: self.base_line,
                            base_col: self.base_col,
                            start: self.pos,
                            index: self.index,
                        };
                        let element = Element {
                            index: self.index,
                            record,
                            at,
                        };
                        let done = f(&element);
                        self.spare = recycle(element.record.fields);
                        done?;
                        Step::Done(consumed)
                    }
                    Err(step) => step,
                }
            };
            match step {
                Step::Done(consumed) => {
                    self.pos += consumed;
                    self.index += 1;
                    return Ok(());
                }
                Step::More => {
                    self.fill()?;
                }
                Step::Unterminated => return Err(self.unterminated().into()),
                Step::Malformed(e) => return Err(self.json_error(&e).into()),
            }
        }
    }

    /// Skips whitespace; the next byte, or `None` at the end of the input.
    fn skip_ws(&mut self) -> Result<Option<u8>, EtlError> {
        loop {
            while self.pos < self.checked {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    b => return Ok(Some(b)),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The document's byte offset of `pos`.
    fn offset(&self) -> u64 {
        self.base_offset + self.pos as u64
    }

    /// Reads more input into the window; `false` at the end of the input.
    fn fill(&mut self) -> Result<bool, EtlError> {
        if self.bad_utf8 {
            return Err(self.invalid_utf8().into());
        }
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            let (line, col) = line_col(&self.buf, self.base_line, self.base_col, self.pos);
            self.base_line = line;
            self.base_col = col;
            self.base_offset += self.pos as u64;
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.checked -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // One record larger than the window: grow it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(StorageError::io(format!("reading {}", self.file), e).into()),
            }
        };
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        self.check_utf8();
        Ok(n > 0 || self.bad_utf8)
    }

    fn check_utf8(&mut self) {
        // simdutf8's `compat` check reports the same position and length as std's, faster.
        match simdutf8::compat::from_utf8(&self.buf[self.checked..self.end]) {
            Ok(_) => self.checked = self.end,
            Err(e) => {
                // Up to the bad byte (or a character cut by the end of this read, finished on
                // the next one) the window is text; past it, `fill` refuses.
                self.checked += e.valid_up_to();
                self.bad_utf8 = e.error_len().is_some() || self.eof;
            }
        }
    }

    fn error_here(&self, problem: impl Into<String>) -> InputError {
        self.error_at_byte(self.pos, None, problem)
    }

    fn invalid_utf8(&self) -> InputError {
        self.error_at_byte(
            self.checked,
            (self.state == State::Elements).then_some(self.index),
            format!(
                "invalid UTF-8 (byte 0x{:02X}): exports must be UTF-8 text",
                self.buf[self.checked]
            ),
        )
    }

    fn unterminated(&self) -> InputError {
        if self.bad_utf8 {
            // A character cut by the end of the document.
            return self.invalid_utf8();
        }
        self.error_at_byte(
            self.end,
            Some(self.index),
            "unexpected end of the document: the array (or a record in it) is not closed",
        )
    }

    /// An error placed at byte `at` of the window (line and column in the whole document).
    fn error_at_byte(
        &self,
        at: usize,
        record: Option<usize>,
        problem: impl Into<String>,
    ) -> InputError {
        let (line, column) = line_col(&self.buf, self.base_line, self.base_col, at);
        self.error_placed(line, column, record, problem)
    }

    fn error_placed(
        &self,
        line: usize,
        column: usize,
        record: Option<usize>,
        problem: impl Into<String>,
    ) -> InputError {
        InputError {
            place: Place {
                file: self.file.clone(),
                line,
                column,
                record,
            },
            problem: problem.into(),
        }
    }

    /// A serde_json error inside the element at `pos`, placed in the whole document.
    fn json_error(&self, e: &serde_json::Error) -> InputError {
        let (line0, col0) = line_col(&self.buf, self.base_line, self.base_col, self.pos);
        let (line, column) = if e.line() <= 1 {
            (line0, col0 + e.column().saturating_sub(1))
        } else {
            (line0 + e.line() - 1, e.column())
        };
        let message = e.to_string();
        let problem = match message.rsplit_once(" at line ") {
            Some((m, _)) => m.to_owned(),
            None => message,
        };
        self.error_placed(
            line,
            column,
            Some(self.index),
            format!("malformed record: {problem}"),
        )
    }
}

fn describe_start(b: u8) -> String {
    match b {
        b'{' => "an object (`{`)".into(),
        b'"' => "a string".into(),
        b'0'..=b'9' | b'-' => "a number".into(),
        b't' | b'f' => "a boolean".into(),
        b'n' => "null".into(),
        b if b.is_ascii_graphic() => format!("`{}`", b as char),
        b => format!("byte 0x{b:02X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `chunk` bytes at a time, to cut records at every position.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn read_ids(doc: &[u8], chunk: usize) -> Result<Vec<String>, EtlError> {
        let mut ids = Vec::new();
        ArrayReader::new(Trickle { data: doc, chunk }, "t.json").for_each(|e| {
            ids.push(
                e.record
                    .get("Id")
                    .map(|v| v.get().to_owned())
                    .unwrap_or_default(),
            );
            Ok(())
        })?;
        Ok(ids)
    }

    fn input_error(doc: &[u8]) -> String {
        match read_ids(doc, 7) {
            Err(EtlError::Input(e)) => e.to_string(),
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn reads_every_record_whatever_the_read_sizes() {
        let doc = "\u{feff}[\n  {\"Id\": 1, \"Name\": \"São \\\"x\\\"\"},\n  {\"Id\": \"2\"} ,{\"Id\":3}\n]\n";
        for chunk in 1..doc.len() {
            assert_eq!(
                read_ids(doc.as_bytes(), chunk).unwrap(),
                ["1", "\"2\"", "3"]
            );
        }
    }

    #[test]
    fn a_record_larger_than_the_window_is_read() {
        let big = "x".repeat(3 * WINDOW);
        let doc = format!("[{{\"Id\": 1, \"Big\": \"{big}\"}}, {{\"Id\": 2}}]");
        assert_eq!(read_ids(doc.as_bytes(), 64 * 1024).unwrap(), ["1", "2"]);
    }

    #[test]
    fn refusals_name_the_place() {
        assert_eq!(
            input_error(b"  "),
            "t.json:1:3: empty document: expected a JSON array of records"
        );
        assert_eq!(
            input_error(b"{\"Id\": 1}"),
            "t.json:1:1: expected a JSON array of records, found an object (`{`)"
        );
        assert_eq!(
            input_error(b"[\n ]"),
            "t.json:2:2: empty array: the export holds no records"
        );
        assert_eq!(
            input_error(b"[\n {\"Id\": 1},\n {\"Id\": 2,, }\n]"),
            "t.json:3:11 (record 1): malformed record: key must be a string"
        );
        assert_eq!(
            input_error(b"[{\"Id\": 1}, 5]"),
            "t.json:1:13 (record 1): malformed record: invalid type: integer `5`, expected a JSON object (one record)"
        );
        assert_eq!(
            input_error(b"[{\"Id\": 1}\n{\"Id\": 2}]"),
            "t.json:2:1 (record 0): expected `,` or `]` after the record, found an object (`{`)"
        );
        assert_eq!(
            input_error(b"[{\"Id\": 1},]"),
            "t.json:1:12 (record 0): trailing comma after the record"
        );
        assert_eq!(
            input_error(b"[{\"Id\": 1}] x"),
            "t.json:1:13: unexpected content after the array's closing `]`"
        );
        assert_eq!(
            input_error(b"[{\"Id\": 1}, {\"Id\": "),
            "t.json:1:20 (record 1): unexpected end of the document: the array (or a record in it) is not closed"
        );
    }

    #[test]
    fn invalid_utf8_is_placed_exactly() {
        let doc = b"[\n {\"Id\": 1},\n {\"Id\": \"ab\xFFc\"}\n]";
        assert_eq!(
            input_error(doc),
            "t.json:3:12 (record 1): invalid UTF-8 (byte 0xFF): exports must be UTF-8 text"
        );
        // A character cut at the end of the input is invalid too.
        let doc = b"[{\"Id\": \"\xC3";
        assert!(input_error(doc).contains("invalid UTF-8 (byte 0xC3)"));
    }

    #[test]
    fn value_places_point_into_the_record() {
        let doc = b"[\n  {\"Id\": 1},\n  {\"Id\": 2,\n   \"CourseId\": {}}\n]";
        let mut places = Vec::new();
        ArrayReader::new(
            Trickle {
                data: doc,
                chunk: 5,
            },
            "t.json",
        )
        .for_each(|e| {
            if let Some(v) = e.record.get("CourseId") {
                places.push(e.at.value(v).to_string());
            }
            places.push(e.at.record().to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            places,
            [
                "t.json:2:3 (record 0)",
                "t.json:4:16 (record 1)",
                "t.json:3:3 (record 1)"
            ]
        );
    }
}
