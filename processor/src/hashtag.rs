//! Hashtag extraction from text, following twitter-text's rules (BRIEF §4):
//! `#` or `＃`, not preceded by a letter, digit, `_` or `&`, then letters of
//! any script, combining marks, digits or `_`, with at least one non-digit,
//! not inside a URL, not followed by another `#` or `://`. Keys are NFKC and
//! lower-cased, and a text counts once per distinct key.

use regex::Regex;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)[^\s<>]+").expect("regex compiles"));

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        || is_mark(c)
        || matches!(c, '\u{200c}' | '\u{200d}' | '\u{30fb}' | '\u{00b7}')
}

fn is_mark(c: char) -> bool {
    // Combining marks: the general category M blocks most scripts use.
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2
        | 0x05C4..=0x05C5 | 0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670
        | 0x06D6..=0x06DC | 0x06DF..=0x06E4 | 0x06E7..=0x06E8 | 0x06EA..=0x06ED
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963
        | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0A01..=0x0A03 | 0x0A3C..=0x0A51
        | 0x0B01..=0x0B03 | 0x0BBE..=0x0BCD | 0x0C00..=0x0C04 | 0x0C3E..=0x0C56
        | 0x0D00..=0x0D03 | 0x0D3E..=0x0D4D | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x0EB1 | 0x0EB4..=0x0EBC | 0x0EC8..=0x0ECD | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF | 0x3099..=0x309A | 0xFE20..=0xFE2F)
}

/// The normalized key of a tag: NFKC, lower-cased.
pub fn normalize(tag: &str) -> String {
    tag.nfkc().collect::<String>().to_lowercase()
}

/// Distinct normalized hashtag keys of `text`, in order of first appearance.
pub fn extract(text: &str) -> Vec<String> {
    let urls: Vec<(usize, usize)> = URL.find_iter(text).map(|m| (m.start(), m.end())).collect();
    let in_url = |i: usize| urls.iter().any(|(s, e)| *s <= i && i < *e);
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_hash = c == '#' || c == '＃';
        let boundary_ok =
            prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '&' || is_mark(p)));
        prev = Some(c);
        if !is_hash || !boundary_ok || in_url(i) {
            continue;
        }
        let start = i + c.len_utf8();
        let mut end = start;
        while let Some(&(j, d)) = iter.peek() {
            if is_tag_char(d) {
                end = j + d.len_utf8();
                prev = Some(d);
                iter.next();
            } else {
                break;
            }
        }
        if end == start {
            continue;
        }
        let tag = &text[start..end];
        let after = &text[end..];
        if after.starts_with('#') || after.starts_with('＃') || after.starts_with("://") {
            continue;
        }
        if tag.chars().all(|c| c.is_ascii_digit() || c.is_numeric()) {
            continue;
        }
        let key = normalize(tag);
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Normalizes platform-supplied tags, keeping distinct keys in order.
pub fn normalize_all<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim_start_matches(['#', '＃']);
        if t.is_empty() {
            continue;
        }
        let k = normalize(t);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twitter_text_rules() {
        assert_eq!(extract("#Rust #rust is #fun"), vec!["rust", "fun"]);
        assert_eq!(extract("＃日本語 and #café"), vec!["日本語", "café"]);
        assert_eq!(extract("a#b &#39; _#c 1#d"), Vec::<String>::new());
        assert_eq!(extract("#123 #1a #_"), vec!["1a", "_"]);
        assert_eq!(extract("see https://x.com/#frag and #real"), vec!["real"]);
        assert_eq!(extract("#foo#bar #baz://x"), Vec::<String>::new());
        assert_eq!(extract("(#paren) #end."), vec!["paren", "end"]);
        assert_eq!(extract("#ＲＵＳＴ"), vec!["rust"], "NFKC folds full-width");
        assert_eq!(extract("#"), Vec::<String>::new());
    }

    #[test]
    fn platform_tags_are_normalized_and_distinct() {
        assert_eq!(
            normalize_all(["Rust", "rust", "#RustLang"]),
            vec!["rust", "rustlang"]
        );
    }
}
