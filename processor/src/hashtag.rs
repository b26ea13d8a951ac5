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
    Regex::new(r"[#＃][\p{L}\p{M}\p{N}_\x{200c}\x{200d}\x{30fb}\x{00b7}]+").expect("regex compiles")
});

/// Characters that may not stand right before the hash sign.
static NOT_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{M}\p{N}_&]$").expect("regex compiles"));

fn blocks_hashtag(prev: char) -> bool {
    if prev.is_ascii() {
        return prev.is_ascii_alphanumeric() || prev == '_' || prev == '&';
    }
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
    // ASCII is its own NFKC form.
    if tag.is_ascii() {
        return tag.to_ascii_lowercase();
    }
    tag.nfkc().collect::<String>().to_lowercase()
}

/// Distinct normalized hashtag keys of `text`, in order of first appearance.
pub fn extract(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if !text.contains(['#', '＃']) {
        return out;
    }
    // URL spans, found once the text has a candidate tag.
    let mut urls: Option<Vec<(usize, usize)>> = None;
    for whole in TAG.find_iter(text) {
        if text[..whole.start()]
            .chars()
            .next_back()
            .is_some_and(blocks_hashtag)
        {
            continue;
        }
        let urls = urls.get_or_insert_with(|| {
            // Every URL holds `://` or starts with `www.`.
            let www = text
                .as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"www."));
            if !www && !text.contains("://") {
                return Vec::new();
            }
            URL.find_iter(text).map(|m| (m.start(), m.end())).collect()
        });
        if urls
            .iter()
            .any(|&(s, e)| s <= whole.start() && whole.start() < e)
        {
            continue;
        }
        let after = &text[whole.end()..];
        if after.starts_with('#') || after.starts_with('＃') || after.starts_with("://") {
            continue;
        }
        // The tag is what follows the hash sign (`#` or `＃`).
        let w = whole.as_str();
        let t = &w[w.chars().next().map_or(0, char::len_utf8)..];
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
