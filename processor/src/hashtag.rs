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

/// A hash sign and the run of hashtag characters after it.
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[#＃]([\p{L}\p{M}\p{N}_\x{200c}\x{200d}\x{30fb}\x{00b7}]+)")
        .expect("regex compiles")
});

/// Characters that may not stand right before the hash sign.
static NOT_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{M}\p{N}_&]$").expect("regex compiles"));

fn blocks_hashtag(prev: char) -> bool {
    // Emoji variation selectors are marks, yet twitter-text lets a hashtag
    // follow them ("⚡️#Moments").
    if prev == '\u{FE0E}' || prev == '\u{FE0F}' {
        return false;
    }
    let mut buf = [0u8; 4];
    NOT_BEFORE.is_match(prev.encode_utf8(&mut buf))
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
    for c in TAG.captures_iter(text) {
        let (Some(whole), Some(tag)) = (c.get(0), c.get(1)) else {
            continue;
        };
        if text[..whole.start()]
            .chars()
            .next_back()
            .is_some_and(blocks_hashtag)
        {
            continue;
        }
        if in_url(whole.start()) {
            continue;
        }
        let after = &text[whole.end()..];
        if after.starts_with('#') || after.starts_with('＃') || after.starts_with("://") {
            continue;
        }
        let t = tag.as_str();
        // "#️⃣" (keycap) is an emoji, not a hashtag.
        if t.starts_with(['\u{FE0F}', '\u{20E3}']) {
            continue;
        }
        if t.chars().all(|ch| ch.is_numeric()) {
            continue;
        }
        let key = normalize(t);
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
        assert_eq!(extract("⚡\u{FE0F}#Moments"), vec!["moments"]);
        assert_eq!(extract("#\u{FE0F}\u{20E3} keycap"), Vec::<String>::new());
        assert_eq!(extract("é#no"), Vec::<String>::new());
    }

    #[test]
    fn platform_tags_are_normalized_and_distinct() {
        assert_eq!(
            normalize_all(["Rust", "rust", "#RustLang"]),
            vec!["rust", "rustlang"]
        );
    }
}
