//! Reads bytes `0..size` of one object through the ETL's span reader ([`Prefetch`]) with
//! `depth` ranged GETs in flight (`0`: one GET streamed, as a range of at most one chunk is
//! read), and prints the seconds it took: what `bench/s3_streams.py --etl` times against the
//! local S3 stand-in. The endpoint and credentials come from the
//! standard environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...).
//!
//!     cargo run --release -p etl --example span_read -- BUCKET KEY SIZE DEPTH

use std::io::Read;

use etl::storage::prefetch::Prefetch;
use etl::storage::S3Bucket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bucket, key, size, depth] = &args[..] else {
        eprintln!("usage: span_read BUCKET KEY SIZE DEPTH");
        std::process::exit(2);
    };
    let (size, depth): (u64, usize) = (size.parse().unwrap(), depth.parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conf = rt.block_on(etl::handlers::aws_config());
    let bucket = S3Bucket::new(etl::handlers::s3_client(&conf), bucket, rt.handle().clone());
    let t0 = std::time::Instant::now();
    let mut reader: Box<dyn Read> = if depth == 0 {
        use etl::storage::Storage;
        bucket.open(key).unwrap()
    } else {
        Box::new(Prefetch::open(&bucket, key, 0, size, depth).unwrap())
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = reader.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert_eq!(n, size);
    println!("{:.3}", t0.elapsed().as_secs_f64());
}
