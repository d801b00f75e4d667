//! The floor of a base's run on this machine (issue 29, part 2): what any implementation must
//! do for the same inputs and outputs, each part timed alone and on both cores.
//!
//! ```sh
//! cargo run --release -p etl --example floor -- --out-bytes N --out-dir DIR FILE...
//! ```
//!
//! 1. **read**: every input's bytes from the page cache (the caller reads them once first),
//!    into a reused 16 MiB buffer, the files shared between two threads by size.
//! 2. **tokenize**: a SIMD JSON tokenizer's pass (the simd-json crate's tape: structure and
//!    scalars found, nothing built) over every input, on both cores: a JSON array cut into
//!    chunks of about 16 MiB at record starts (a line whose first character is `{`: the
//!    exports are pretty-printed arrays of flat objects), each chunk tokenized as one array; an
//!    NDJSON file line by line. Chunks and files go to whichever thread is free. Buffers and
//!    tapes are reused, as a streaming reader would.
//! 3. **write**: `--out-bytes` bytes (the outputs' total) written to files in `--out-dir`, in
//!    1 MiB writes, by two threads.
//!
//! Prints one JSON object: each part's wall seconds, the tokenizer's CPU seconds, the sum.
//! Written by hand rather than with a benchmark harness: it is a measurement of this machine
//! to compare whole processes with, not a micro-benchmark of a function.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const THREADS: usize = 2;

/// The files split between the threads, largest first to the least loaded (LPT).
fn share(files: &[PathBuf]) -> Vec<Vec<PathBuf>> {
    let mut sized: Vec<(u64, PathBuf)> = files
        .iter()
        .map(|f| {
            (
                std::fs::metadata(f).map(|m| m.len()).unwrap_or(0),
                f.clone(),
            )
        })
        .collect();
    sized.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut out = vec![(0u64, Vec::new()); THREADS];
    for (size, f) in sized {
        let least = out
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("threads");
        least.0 += size;
        least.1.push(f);
    }
    out.into_iter().map(|(_, f)| f).collect()
}

fn read_all(files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 16 << 20];
    let mut total = 0;
    for f in files {
        let mut file = std::fs::File::open(f).expect("an input");
        loop {
            let n = file.read(&mut buf).expect("a read");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}

/// A unit of tokenizer work: a byte range of a file, and whether it is JSON array records
/// (tokenized as one array) or NDJSON lines.
struct Work {
    path: PathBuf,
    range: std::ops::Range<usize>,
    array: bool,
}

/// The work units of the inputs: array files cut at record starts every `chunk` bytes.
fn work_units(files: &[PathBuf], chunk: usize) -> Vec<Work> {
    let mut out = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).expect("an input");
        let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
        if first.is_none_or(|i| bytes[i] != b'[') {
            out.push(Work {
                path: path.clone(),
                range: 0..bytes.len(),
                array: false,
            });
            continue;
        }
        let start = first.unwrap() + 1;
        let end = bytes
            .iter()
            .rposition(|b| *b == b']')
            .expect("an array's end");
        let mut at = start;
        while at < end {
            let mut cut = (at + chunk).min(end);
            // The next record start: a newline, spaces, then `{`.
            while cut < end {
                let line = cut
                    + 1
                    + bytes[cut + 1..end]
                        .iter()
                        .take_while(|b| **b == b' ')
                        .count();
                if bytes[cut] == b'\n' && line < end && bytes[line] == b'{' {
                    cut = line;
                    break;
                }
                cut += 1;
            }
            out.push(Work {
                path: path.clone(),
                range: at..cut.min(end),
                array: true,
            });
            at = cut;
        }
    }
    out
}

/// Tokenizes one unit; the thread CPU time it took (its read and the copy into the padded
/// buffer included, as a reader pays them).
fn tokenize(w: &Work, bytes: &[u8], buffers: &mut simd_json::Buffers) -> f64 {
    let start = cpu_now();
    let text = &bytes[w.range.clone()];
    if w.array {
        // The records of the chunk, without the separator after the last: one array.
        let body = text.trim_ascii_end();
        let body = body.strip_suffix(b",").unwrap_or(body);
        let mut doc = Vec::with_capacity(body.len() + 2);
        doc.push(b'[');
        doc.extend_from_slice(body);
        doc.push(b']');
        let tape = simd_json::to_tape_with_buffers(&mut doc, buffers).expect("JSON records");
        std::hint::black_box(tape.0.len());
    } else {
        let mut line_buf = Vec::new();
        for line in text.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            line_buf.clear();
            line_buf.extend_from_slice(line);
            let tape =
                simd_json::to_tape_with_buffers(&mut line_buf, buffers).expect("an NDJSON line");
            std::hint::black_box(tape.0.len());
        }
    }
    cpu_now() - start
}

/// This thread's CPU time, seconds (CLOCK_THREAD_CPUTIME_ID).
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn write_bytes(dir: &Path, n: u64, i: usize) {
    let chunk = vec![0x5au8; 1 << 20];
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(dir.join(format!("floor-{i}"))).expect("an output"),
    );
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..k]).expect("a write");
        left -= k as u64;
    }
    file.flush().expect("a flush");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut out_bytes, mut out_dir, mut files) = (0u64, PathBuf::from("/tmp"), Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out-bytes" => {
                out_bytes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--out-bytes N")
            }
            "--out-dir" => out_dir = args.next().map(PathBuf::from).expect("--out-dir DIR"),
            _ => files.push(PathBuf::from(a)),
        }
    }
    let shares = share(&files);

    let t = Instant::now();
    let bytes: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = shares
            .iter()
            .map(|f| s.spawn(move || read_all(f)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("a reader")).sum()
    });
    let read = t.elapsed().as_secs_f64();

    // The inputs in memory (read once more: the read above is the part timed alone).
    let units = work_units(&files, 16 << 20);
    let contents: std::collections::HashMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read(f).expect("an input")))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    let cpu: f64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut buffers = simd_json::Buffers::new(32 << 20);
                    let mut cpu = 0.0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(w) = units.get(i) else { break };
                        cpu += tokenize(w, &contents[&w.path], &mut buffers);
                    }
                    cpu
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("a tokenizer")).sum()
    });
    let tokenize_wall = t.elapsed().as_secs_f64();

    std::fs::create_dir_all(&out_dir).expect("the output folder");
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let dir = out_dir.clone();
            s.spawn(move || write_bytes(&dir, out_bytes / THREADS as u64, i));
        }
    });
    let write = t.elapsed().as_secs_f64();
    for i in 0..THREADS {
        let _ = std::fs::remove_file(out_dir.join(format!("floor-{i}")));
    }

    println!(
        "{}",
        serde_json::json!({
            "input_bytes": bytes,
            "output_bytes": out_bytes,
            "read_s": read,
            "tokenize_wall_s": tokenize_wall,
            "tokenize_cpu_s": cpu,
            "tokenize_split_s": cpu / THREADS as f64,
            "write_s": write,
            "floor_s": read + tokenize_wall + write,
            "floor_split_s": read + cpu / THREADS as f64 + write,
        })
    );
}
