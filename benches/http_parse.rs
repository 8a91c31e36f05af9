//! Request-head parsing, pylon's parser against `httparse` on the same inputs: a small GET, a
//! browser-like request with 15 headers, and one carrying a 4 KiB cookie. Prints the ratio
//! of the two medians after each pair.
//!
//! Run with `cargo bench --bench http_parse`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pylon::http::parse::{HeadParser, Kind, Progress};

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let small = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
    let browser = b"GET /assets/app.js?v=1234 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-None-Match: \"5f3c-62a1b2c3d4e5f\"\r\n\
If-Modified-Since: Tue, 24 Nov 2026 10:00:00 GMT\r\n\
Cache-Control: max-age=0\r\n\
Pragma: no-cache\r\n\
DNT: 1\r\n\r\n"
        .to_vec();
    let cookie = format!(
        "GET /account HTTP/1.1\r\nHost: www.example.com\r\nCookie: session={}\r\nAccept: text/html\r\n\r\n",
        "a1b2c3d4".repeat(512)
    )
    .into_bytes();
    vec![("small GET", small), ("browser, 15 headers", browser), ("4 KiB cookie", cookie)]
}

fn pylon_parse(parser: &mut HeadParser, input: &[u8]) -> usize {
    parser.reset();
    match parser.parse(input) {
        Ok(Progress::Complete) => parser.head.len,
        other => panic!("{other:?}"),
    }
}

fn httparse_parse(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 101];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("{other:?}"),
    }
}

/// Median time of one parse, measured outside criterion, for the printed ratio.
fn median(mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..31)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..2000 {
                f();
            }
            start.elapsed() / 2000
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("request head");
    let mut parser = HeadParser::new(Kind::Request, 101);
    for (name, input) in inputs() {
        group.bench_function(format!("pylon/{name}"), |b| b.iter(|| pylon_parse(&mut parser, black_box(&input))));
        group.bench_function(format!("httparse/{name}"), |b| b.iter(|| httparse_parse(black_box(&input))));
        let ours = median(|| {
            black_box(pylon_parse(&mut parser, black_box(&input)));
        });
        let theirs = median(|| {
            black_box(httparse_parse(black_box(&input)));
        });
        println!(
            "ratio pylon/httparse, {name}: {:.2} ({:?} vs {:?})",
            ours.as_secs_f64() / theirs.as_secs_f64(),
            ours,
            theirs
        );
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
