//! Throughput of the synchronous core: parsing log lines of every known
//! format, parse + classify with and without template mining, the whole
//! processor (parse + classify + mine + bucket + watermark), and posts
//! through parse + hashtag extraction. Reads the Loghub samples and the
//! recorded posts from `../shared/data` when present (research-only data,
//! never copied here) and the bundled samples otherwise.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use farol_common::config::{FormatSpec, WindowsConfig};
use farol_common::model::{RawRecord, RecordKind};
use farol_processor::logparse::LineParser;
use farol_processor::processor::{Parsers, Processor};
use farol_processor::template::Miner;
use farol_processor::window::WindowParams;
use std::collections::HashMap;
use std::path::Path;

fn inputs() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared/data");
    let mut files: Vec<std::path::PathBuf> = vec![root.join("samples/access.log")];
    if let Ok(rd) = std::fs::read_dir(shared.join("loghub")) {
        let mut logs: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        files.extend(logs);
    } else {
        eprintln!("../shared/data absent: benchmarking the bundled access log only");
    }
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let name = p.file_stem()?.to_string_lossy().into_owned();
            Some((name, text.lines().map(str::to_string).collect()))
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let parser = LineParser::new(&FormatSpec::default()).expect("auto parser");
    let mut g = c.benchmark_group("parse_line");
    for (name, lines) in inputs() {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(&name, |b| {
            b.iter(|| {
                let mut hint = None;
                for l in &lines {
                    std::hint::black_box(parser.parse(l, &mut hint, 0));
                }
            })
        });
    }
    g.finish();
}

/// Parse + classify every line of every file (one miner per file, as per
/// stream in the processor), without and with template mining.
fn mining(c: &mut Criterion) {
    let parser = LineParser::new(&FormatSpec::default()).expect("auto parser");
    let all = inputs();
    let n: usize = all.iter().map(|(_, l)| l.len()).sum();
    let mut g = c.benchmark_group("mining");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("parse_classify", |b| {
        b.iter(|| {
            for (_, lines) in &all {
                let mut hint = None;
                for l in lines {
                    std::hint::black_box(parser.parse(l, &mut hint, 0));
                }
            }
        })
    });
    g.bench_function("parse_classify_mine", |b| {
        b.iter(|| {
            for (_, lines) in &all {
                let mut hint = None;
                let mut miner = Miner::default();
                for l in lines {
                    let p = parser.parse(l, &mut hint, 0);
                    std::hint::black_box(miner.add(&p.message));
                    std::hint::black_box(p);
                }
            }
        })
    });
    g.finish();
}

fn process(c: &mut Criterion) {
    let all = inputs();
    let mut records = Vec::new();
    for (name, lines) in &all {
        let mut off = 0u64;
        for (i, l) in lines.iter().enumerate() {
            let end = off + l.len() as u64 + 1;
            records.push(RawRecord {
                source: name.as_str().into(),
                stream: format!("{name}:0").into(),
                kind: RecordKind::Log,
                platform: None,
                file: Some(name.clone()),
                line_no: i as u64 + 1,
                line_span: 0,
                offset: off,
                end,
                payload: l.as_bytes().to_vec(),
                truncated: false,
                ingest_ms: 0,
                file_mtime: None,
                arrival_delay_ms: None,
            });
            off = end;
        }
    }
    let params = WindowParams::from_config(&WindowsConfig::default());
    let parsers = Parsers::new([]).expect("parsers");
    let mut g = c.benchmark_group("processor");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("handle_all_samples", |b| {
        b.iter_batched(
            || records.clone(),
            |recs| {
                let mut p = Processor::new(params.clone(), parsers.clone(), &HashMap::new());
                for r in recs {
                    p.handle(r, 0);
                }
                std::hint::black_box(p.flush())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// `{"id","created_at","text"}` lines shaped like `bench/generate.py`'s:
/// the texts of the recorded Mastodon statuses (HTML reduced to text, `#`
/// removed) with one to three hashtags from a skewed set added.
fn post_lines() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let recorded = root.join("../shared/data/social/raw/rtoot_mastodonsocial_statuses.jsonl");
    let mut bodies: Vec<String> = std::fs::read_to_string(recorded)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some(farol_processor::post::html_to_text(
                v.get("content")?.as_str()?,
            ))
        })
        .map(|t| t.replace(['#', '＃', '\n'], " "))
        .filter(|t| !t.trim().is_empty())
        .collect();
    if bodies.is_empty() {
        bodies.push("a post about nothing in particular, with a link https://example.com/x".into());
    }
    let tags = [
        "rust",
        "Rust",
        "fediverse",
        "caturday",
        "OpenSource",
        "linux",
        "news",
        "art",
    ];
    (0..2000usize)
        .map(|i| {
            let body = &bodies[i % bodies.len()];
            let mut text = format!("#{} {body}", tags[(i * i) % 3]);
            for k in 0..(i % 3) {
                text.push_str(&format!(" #{}", tags[(i + k * 5) % tags.len()]));
            }
            serde_json::json!({
                "id": i.to_string(),
                "created_at": "2024-05-01T12:00:07.200Z",
                "text": text,
            })
            .to_string()
        })
        .collect()
}

fn posts(c: &mut Criterion) {
    let lines = post_lines();
    let mut g = c.benchmark_group("posts");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_and_hashtags", |b| {
        b.iter(|| {
            for l in &lines {
                let _ = std::hint::black_box(farol_processor::post::parse("bench", "jsonl", l));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, parse, mining, process, posts);
criterion_main!(benches);
