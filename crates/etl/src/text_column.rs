//! A column of text being built row by row into an Arrow `StringArray`: both bases' Parquet
//! writers append every text value of every row through it.
//!
//! Written by hand in place of arrow's `StringBuilder` because of how short the values are:
//! ids, times, names and page paths of 4 to 60 bytes. `StringBuilder::append_value` is not
//! inlined and copies each value with a call to `memcpy`, whose entry and length dispatch
//! dominate so short a copy: in `perf`, appends were 14% of base b (30 text columns per event)
//! and 8% of base a. Here a value of up to 32 bytes is copied inline with two overlapping
//! loads and stores, and the offsets and values are plain vectors handed to Arrow without a
//! copy. Nulls use Arrow's own lazy bitmap, which costs nothing until the first null.

use arrow_array::StringArray;
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};

/// Text values appended row by row; [`TextColumn::finish`] hands them over as one array.
#[derive(Debug)]
pub struct TextColumn {
    /// `offsets[i]..offsets[i + 1]` are row i's bytes; starts with 0.
    offsets: Vec<i32>,
    /// Every row's bytes, each row a whole UTF-8 string.
    values: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl TextColumn {
    /// An empty column with room for `rows` rows and `bytes` bytes of text.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        TextColumn {
            offsets,
            values: Vec::with_capacity(bytes),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Rows appended since the last [`TextColumn::finish`].
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of text appended since the last [`TextColumn::finish`].
    pub fn value_bytes(&self) -> usize {
        self.values.len()
    }

    #[inline(always)]
    pub fn append(&mut self, value: &str) {
        push_bytes(&mut self.values, value.as_bytes());
        self.push_offset();
        self.nulls.append_non_null();
    }

    #[inline(always)]
    pub fn append_null(&mut self) {
        self.push_offset();
        self.nulls.append_null();
    }

    #[inline(always)]
    pub fn append_option(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.append(v),
            None => self.append_null(),
        }
    }

    #[inline(always)]
    fn push_offset(&mut self) {
        // Arrow's `Utf8` has 32-bit offsets; a batch holds far less (32k rows in base a, a
        // worker's share of a 64 MB buffer in base b), so this is a bug, not an input error.
        let end = i32::try_from(self.values.len()).expect("a text column's batch is under 2 GiB");
        self.offsets.push(end);
    }

    /// The rows so far as one array; the column starts over, with room for as many rows and
    /// bytes and an eighth more (growing again by doubling would copy every batch's buffers
    /// several times).
    pub fn finish(&mut self) -> StringArray {
        let (rows, bytes) = (self.len(), self.values.len());
        let (rows, bytes) = (rows + rows / 8, bytes + bytes / 8);
        let done = std::mem::replace(self, TextColumn::with_capacity(rows, bytes));
        let mut nulls = done.nulls;
        let nulls = nulls.finish();
        // SAFETY: the offsets start at 0, never decrease (each is the length of `values` after
        // an append) and end at `values.len()`; every row's bytes are one `&str` appended
        // whole, so the values are UTF-8 and each offset is on a character boundary; the null
        // buffer has one bit per row. These are `StringArray::new_unchecked`'s conditions.
        // Checking them again (`try_new`) would read every byte of every batch a second time.
        unsafe {
            let offsets = OffsetBuffer::new_unchecked(ScalarBuffer::from(done.offsets));
            StringArray::new_unchecked(offsets, Buffer::from_vec(done.values), nulls)
        }
    }
}

/// Appends `src` to `dst`. Up to 32 bytes: two loads and two stores of 4, 8 or 16 bytes,
/// overlapping in the middle (the whole value is read and written, nothing past either end);
/// longer values go to `memcpy`, where its call is worth it.
#[inline(always)]
fn push_bytes(dst: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    dst.reserve(n);
    // SAFETY: `reserve` made room for `n` bytes after `dst.len()`; every read is inside
    // `src` (offsets 0..n) and every write inside that room; `set_len` then covers exactly
    // the `n` bytes written. Unaligned reads and writes are what `read_unaligned` and
    // `write_unaligned` are for.
    unsafe {
        let s = src.as_ptr();
        let d = dst.as_mut_ptr().add(dst.len());
        if n >= 16 {
            if n <= 32 {
                let head = s.cast::<u128>().read_unaligned();
                let tail = s.add(n - 16).cast::<u128>().read_unaligned();
                d.cast::<u128>().write_unaligned(head);
                d.add(n - 16).cast::<u128>().write_unaligned(tail);
            } else {
                std::ptr::copy_nonoverlapping(s, d, n);
            }
        } else if n >= 8 {
            let head = s.cast::<u64>().read_unaligned();
            let tail = s.add(n - 8).cast::<u64>().read_unaligned();
            d.cast::<u64>().write_unaligned(head);
            d.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if n >= 4 {
            let head = s.cast::<u32>().read_unaligned();
            let tail = s.add(n - 4).cast::<u32>().read_unaligned();
            d.cast::<u32>().write_unaligned(head);
            d.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else if n > 0 {
            // 1 to 3 bytes: the first, the middle and the last (a loop here would become a
            // `memcpy` call again).
            *d = *s;
            *d.add(n / 2) = *s.add(n / 2);
            *d.add(n - 1) = *s.add(n - 1);
        }
        dst.set_len(dst.len() + n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::StringBuilder;
    use arrow_array::Array;

    #[test]
    fn values_of_every_length_are_copied_whole() {
        let text: String = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
        for start in 0..3 {
            for n in 0..=text.len() - start {
                let mut dst = b"xyz".to_vec();
                dst.truncate(start);
                let before = dst.clone();
                push_bytes(&mut dst, &text.as_bytes()[start..start + n]);
                assert_eq!(&dst[..start], &before[..], "prefix kept at length {n}");
                assert_eq!(
                    &dst[start..],
                    &text.as_bytes()[start..start + n],
                    "length {n}"
                );
            }
        }
    }

    /// The same rows through this column and through arrow's `StringBuilder` give equal
    /// arrays, across two batches (the second after `finish` starts the column over).
    #[test]
    fn columns_equal_arrows_own_builder() {
        let rows: Vec<Option<String>> = (0..300)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(String::new()),
                2 => Some("é".repeat(i % 23)),
                _ => Some(format!("{i}-{}", "x".repeat(i % 41))),
            })
            .collect();
        let mut mine = TextColumn::with_capacity(4, 8);
        for batch in rows.chunks(170) {
            let mut arrows = StringBuilder::new();
            for r in batch {
                mine.append_option(r.as_deref());
                arrows.append_option(r.as_deref());
            }
            assert_eq!(mine.len(), batch.len());
            let (a, b) = (mine.finish(), arrows.finish());
            assert_eq!(a, b);
            assert_eq!(a.null_count(), batch.iter().filter(|r| r.is_none()).count());
            assert!(mine.is_empty() && mine.value_bytes() == 0);
        }
    }

    #[test]
    fn a_column_without_nulls_has_no_null_buffer() {
        let mut c = TextColumn::with_capacity(2, 2);
        c.append("a");
        c.append("bc");
        let a = c.finish();
        assert!(a.nulls().is_none());
        assert_eq!(a.value(1), "bc");
    }
}
