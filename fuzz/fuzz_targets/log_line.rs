//! Any bytes as a log line: every built-in format, auto-detection, and the
//! whole processor core must answer without panicking.
#![no_main]

use farol_common::config::{FormatSpec, WindowsConfig, BUILTIN_FORMATS};
use farol_common::model::{RawRecord, RecordKind};
use farol_processor::logparse::LineParser;
use farol_processor::processor::{Parsers, Processor};
use farol_processor::window::WindowParams;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let mut hint = None;
    let auto = LineParser::new(&FormatSpec::default()).unwrap();
    let _ = auto.parse(&line, &mut hint, 0);
    let _ = auto.parse(&line, &mut hint, 0);
    for name in BUILTIN_FORMATS {
        let p = LineParser::new(&FormatSpec::Named((*name).to_string())).unwrap();
        let _ = p.parse(&line, &mut None, 0);
    }
    let mut proc = Processor::new(
        WindowParams::from_config(&WindowsConfig::default()),
        Parsers::new([]).unwrap(),
        &HashMap::new(),
    );
    for (i, part) in data.split(|b| *b == b'\n').enumerate() {
        proc.handle(
            RawRecord {
                source: "fuzz".into(),
                stream: "fuzz:0".into(),
                kind: RecordKind::Log,
                platform: None,
                file: None,
                line_no: i as u64 + 1,
                offset: i as u64,
                end: i as u64 + 1,
                payload: part.to_vec(),
                truncated: false,
                ingest_ms: 0,
            },
            0,
        );
    }
    let _ = proc.flush();
});
