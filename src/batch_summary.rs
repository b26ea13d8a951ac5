//! The per-source summary `farol batch` ends with on stderr: lines, lines
//! per class, lines with no level (class UNKNOWN), lines with no time of
//! their own and, among them, lines whose timestamp did not read — so a user
//! sees at once when a file's format was not recognized. It is gathered from
//! the events the processor produces, so it counts what was counted.

use farol_common::model::{Batch, Event};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Default)]
struct SourceStats {
    lines: u64,
    posts: u64,
    classes: BTreeMap<String, u64>,
    no_time: u64,
    unreadable_time: u64,
}

/// Counts per source.
#[derive(Debug, Default)]
pub struct Summary {
    sources: BTreeMap<String, SourceStats>,
}

impl Summary {
    /// Counts the events of a processor batch (before it is delivered).
    pub fn observe(&mut self, b: &Batch) {
        for e in &b.events {
            match e {
                Event::Log(l) => {
                    let s = self.sources.entry(l.source.clone()).or_default();
                    s.lines += 1;
                    *s.classes.entry(l.class.clone()).or_default() += 1;
                    if !l.ts_from_line {
                        s.no_time += 1;
                    }
                    if l.fields.get("ts_unreadable").is_some_and(|v| v == "true") {
                        s.unreadable_time += 1;
                    }
                }
                Event::Post(p) => {
                    self.sources.entry(p.source.clone()).or_default().posts += 1;
                }
            }
        }
    }

    /// Adds another summary's counts (another worker's sources).
    pub fn merge(&mut self, other: Summary) {
        for (name, o) in other.sources {
            let s = self.sources.entry(name).or_default();
            s.lines += o.lines;
            s.posts += o.posts;
            for (class, n) in o.classes {
                *s.classes.entry(class).or_default() += n;
            }
            s.no_time += o.no_time;
            s.unreadable_time += o.unreadable_time;
        }
    }

    /// Writes the summary, one line per source.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        for (name, s) in &self.sources {
            if s.lines == 0 {
                writeln!(out, "{name}: {} posts", s.posts)?;
                continue;
            }
            let classes: Vec<String> = s.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let no_level = s.classes.get("UNKNOWN").copied().unwrap_or(0);
            writeln!(
                out,
                "{name}: {} lines ({}); {no_level} with no level, {} with no readable time ({} unreadable)",
                s.lines,
                classes.join(", "),
                s.no_time,
                s.unreadable_time
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::model::LogEvent;

    fn log(source: &str, class: &str, from_line: bool, unreadable: bool) -> Event {
        let mut fields = BTreeMap::new();
        if unreadable {
            fields.insert("ts_unreadable".to_string(), "true".to_string());
        }
        Event::Log(LogEvent {
            id: String::new(),
            source: source.into(),
            file: String::new(),
            line_no: 1,
            offset: 0,
            ts: 0,
            ts_from_line: from_line,
            class: class.into(),
            level: None,
            message: String::new(),
            fields,
            truncated: false,
            template: None,
            template_id: None,
        })
    }

    #[test]
    fn counts_per_source() {
        let mut s = Summary::default();
        s.observe(&Batch {
            events: vec![
                log("web", "2xx", true, false),
                log("web", "UNKNOWN", false, false),
                log("app", "ERROR", false, true),
                log("web", "2xx", true, false),
            ],
            ..Batch::default()
        });
        let mut out = Vec::new();
        s.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "app: 1 lines (ERROR 1); 0 with no level, 1 with no readable time (1 unreadable)\n\
             web: 3 lines (2xx 2, UNKNOWN 1); 1 with no level, 1 with no readable time (0 unreadable)\n"
        );
    }
}
