//! Newline-delimited JSON, one object per row with every field in output order: what the
//! original wrote, for readers that need it.

use std::io::{BufWriter, Write};

use super::TableSink;
use crate::record::write_name;
use crate::storage::ObjectWrite;
use crate::transform::Row;

pub struct NdjsonSink {
    out: BufWriter<Box<dyn ObjectWrite>>,
    line: Vec<u8>,
    rows: u64,
}

impl NdjsonSink {
    pub fn new(out: Box<dyn ObjectWrite>) -> Self {
        NdjsonSink {
            out: BufWriter::with_capacity(1 << 20, out),
            line: Vec::with_capacity(512),
            rows: 0,
        }
    }
}

impl TableSink for NdjsonSink {
    fn push(&mut self, row: &Row<'_>) -> std::io::Result<()> {
        self.line.clear();
        self.line.push(b'{');
        for (i, f) in row.iter().enumerate() {
            if i > 0 {
                self.line.push(b',');
            }
            write_name(&mut self.line, &f.name);
            self.line.push(b':');
            self.line.extend_from_slice(f.value.compact().as_bytes());
        }
        self.line.extend_from_slice(b"}\n");
        self.rows += 1;
        self.out.write_all(&self.line)
    }

    fn finish(self: Box<Self>) -> std::io::Result<u64> {
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        out.finish()?;
        Ok(self.rows)
    }
}
