//! The per-source summary `farol batch` ends with on stderr: lines, lines
//! per class, lines with no level (class UNKNOWN), lines with no time of
//! their own and, among them, lines whose timestamp did not read — so a user
//! sees at once when a file's format was not recognized. It is the
//! processors' own tally of what they applied ([`SourceTally`]), so it
//! counts what was counted, with or without event documents.

use farol_processor::processor::SourceTally;
use std::collections::{BTreeMap, HashMap};
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
    /// Adds a processor's tallies.
    pub fn add(&mut self, tally: HashMap<String, SourceTally>) {
        for (name, t) in tally {
            let s = self.sources.entry(name).or_default();
            s.lines += t.lines;
            s.posts += t.posts;
            for (class, n) in t.classes {
                *s.classes.entry(class.to_string()).or_default() += n;
            }
            s.no_time += t.no_time;
            s.unreadable_time += t.unreadable_time;
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

    #[test]
    fn counts_per_source() {
        let tally = |lines, classes: &[(&'static str, u64)], no_time, unreadable| SourceTally {
            lines,
            posts: 0,
            classes: classes.iter().copied().collect(),
            no_time,
            unreadable_time: unreadable,
        };
        let mut s = Summary::default();
        s.add(HashMap::from([
            (
                "web".to_string(),
                tally(2, &[("2xx", 1), ("UNKNOWN", 1)], 1, 0),
            ),
            ("app".to_string(), tally(1, &[("ERROR", 1)], 1, 1)),
        ]));
        // Another worker's tally of the same source adds up.
        s.add(HashMap::from([(
            "web".to_string(),
            tally(1, &[("2xx", 1)], 0, 0),
        )]));
        let mut out = Vec::new();
        s.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "app: 1 lines (ERROR 1); 0 with no level, 1 with no readable time (1 unreadable)\n\
             web: 3 lines (2xx 2, UNKNOWN 1); 1 with no level, 1 with no readable time (0 unreadable)\n"
        );
    }
}
