//! `farol detect FILE`: shows which format, class, level and event time the
//! first lines of a file are taken for, so that a user sees at once whether
//! a log is recognized (and, when it is not, what a `{ regex = "…" }` format
//! must fix). Dates year-less and date-less timestamps with the file's
//! modification time, exactly as `farol run` and `farol batch` do.

use farol_common::config::FormatSpec;
use farol_common::time::{rfc3339, Millis};
use farol_processor::logparse::{FormatError, LineParser, ParsedLine};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The file does not open or read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `--format` given does not compile.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Writing the report failed (a closed pipe).
    #[error("writing the report: {0}")]
    Write(std::io::Error),
}

/// Characters of a line shown in the report.
const SHOWN: usize = 100;

/// The format as shown: `docker>nginx_error` for a wrapped line.
fn format_label(p: &ParsedLine) -> String {
    match p.fields.get("wrapper") {
        Some(w) => format!("{w}>{}", p.format),
        None => p.format.to_string(),
    }
}

fn time_label(p: &ParsedLine) -> String {
    match (p.ts, p.ts_unreadable) {
        (Some(t), _) => rfc3339(t),
        (None, true) => "unreadable".into(),
        (None, false) => "-".into(),
    }
}

fn shorten(line: &str) -> String {
    let mut s: String = line.chars().take(SHOWN).collect();
    if line.chars().count() > SHOWN {
        s.push('…');
    }
    s.replace('\t', " ")
}

/// Parses the first `lines` lines of `file` and writes the report to `out`.
pub fn report(
    file: &Path,
    lines: usize,
    spec: &FormatSpec,
    out: &mut impl Write,
) -> Result<(), DetectError> {
    let read_err = |source| DetectError::Read {
        path: file.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(file).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    let (year_ref, reference) = match farol_ingest::lines::mtime_ms(&meta) {
        Some(m) => (m, format!("modified {}", rfc3339(m))),
        None => {
            let now: Millis = farol_common::time::now_ms();
            (now, "no modification time: dated from now".into())
        }
    };
    let parser = LineParser::new(spec)?;
    let mut hint = None;
    let mut reader = std::io::BufReader::new(f);
    let mut buf = Vec::new();
    let w = |e| DetectError::Write(e);
    writeln!(out, "{} ({reference})", file.display()).map_err(w)?;
    writeln!(
        out,
        "{:>4}  {:<20} {:<8} {:<10} {:<29} line",
        "#", "format", "class", "level", "time"
    )
    .map_err(w)?;
    let mut formats: BTreeMap<String, usize> = BTreeMap::new();
    let (mut shown, mut untimed, mut unreadable) = (0usize, 0usize, 0usize);
    while shown < lines {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        shown += 1;
        let p = parser.parse(line, &mut hint, year_ref);
        let label = format_label(&p);
        *formats.entry(label.clone()).or_default() += 1;
        if p.ts.is_none() {
            untimed += 1;
        }
        if p.ts_unreadable {
            unreadable += 1;
        }
        writeln!(
            out,
            "{shown:>4}  {label:<20} {:<8} {:<10} {:<29} {}",
            p.class,
            p.level.as_deref().unwrap_or("-"),
            time_label(&p),
            shorten(line)
        )
        .map_err(w)?;
    }
    let mut by_count: Vec<(String, usize)> = formats.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let summary: Vec<String> = by_count.iter().map(|(f, n)| format!("{f} {n}")).collect();
    writeln!(
        out,
        "{shown} lines: {}; {untimed} without a time of their own ({unreadable} unreadable)",
        if summary.is_empty() {
            "empty file".to_string()
        } else {
            summary.join(", ")
        }
    )
    .map_err(w)?;
    if by_count.iter().any(|(f, _)| f == "unstructured") {
        writeln!(
            out,
            "unstructured lines have no format Farol knows: continuation lines (stack traces) \
             take the time of the line before them; for a whole file, add a format with \
             format = {{ regex = \"…\" }} and named groups ts, level, status, msg (see README)"
        )
        .map_err(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_format_class_level_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(
            &path,
            "2024/03/05 10:12:01 [error] 29#29: *1 open() failed\n\
             Traceback (most recent call last):\n\
             2024-13-45 10:12:03 ERROR impossible date\n",
        )
        .unwrap();
        let mut out = Vec::new();
        report(&path, 20, &FormatSpec::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[2].contains("nginx_error"), "{text}");
        assert!(rows[2].contains("ERROR"), "{text}");
        assert!(rows[2].contains("2024-03-05T10:12:01"), "{text}");
        assert!(rows[3].contains("unstructured"), "{text}");
        assert!(rows[4].contains("unreadable"), "{text}");
        assert!(
            rows[5].starts_with("3 lines: ") && rows[5].contains("2 without a time"),
            "{text}"
        );
        let err = report(
            &dir.path().join("missing.log"),
            20,
            &FormatSpec::default(),
            &mut Vec::new(),
        );
        assert!(matches!(err, Err(DetectError::Read { .. })));
    }
}
