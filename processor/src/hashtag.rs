//! Hashtag extraction from text, following twitter-text's rules (BRIEF §4):
//! `#` or `＃`, not preceded by a letter, digit, `_` or `&`, then letters of
//! any script, combining marks, digits or `_`, with at least one non-digit,
//! not inside a URL, not followed by another `#` or `://`. Keys are NFKC and
//! lower-cased, and a text counts once per distinct key.

use regex::Regex;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// A word character of the regex crate's `\b` (`\w`, Unicode), asked only
/// for a non-ASCII character before a URL start.
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\w$").expect("regex compiles"));

fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let mut buf = [0u8; 4];
    WORD.is_match(c.encode_utf8(&mut buf))
}

/// Whether the hash sign at byte `at` is inside a URL: a span
/// `\b(?:https?://|www\.)[^\s<>]+` (scheme and `www` in any ASCII case).
///
/// Such a span runs from its start to the next white space, `<` or `>`, so
/// `at` is in one exactly when the run of other characters that holds `at`
/// has a URL start before `at`, at a word boundary. Checked by hand: the
/// regex with its Unicode `\b` fell back from the DFA on non-ASCII text
/// and was a tenth of the batch profile with posts.
fn in_url(text: &str, at: usize) -> bool {
    let seg_start = text[..at]
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == '<' || c == '>')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let seg = &text.as_bytes()[seg_start..at];
    let starts_url = |i: usize| {
        let rest = &seg[i..];
        let prefix = |p: &[u8]| {
            rest.get(..p.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(p))
        };
        (prefix(b"http://") || prefix(b"https://") || prefix(b"www."))
            && !text[..seg_start + i]
                .chars()
                .next_back()
                .is_some_and(is_word_char)
    };
    memchr::memchr2_iter(b'h', b'H', seg).any(starts_url)
        || memchr::memchr2_iter(b'w', b'W', seg).any(starts_url)
}

/// The run of hashtag characters opening a text (what follows a hash
/// sign), for runs that hold a non-ASCII character.
static TAG_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{M}\p{N}_\x{200c}\x{200d}\x{30fb}\x{00b7}]+").expect("regex compiles")
});

/// The full-width hash sign.
const WIDE_HASH: &str = "＃";

/// Each hash sign with the run of hashtag characters after it, as
/// `(start, end)`: the matches of `[#＃][\p{L}\p{M}\p{N}_…]+`, left to right
/// and not overlapping. Found by a byte scan (`memchr` for the signs, ASCII
/// runs by hand); only a run reaching a non-ASCII character asks the
/// Unicode classes, through [`TAG_RUN`]. The regex alone was a fifth of the
/// batch profile with posts.
fn tag_spans(text: &str, mut f: impl FnMut(usize, usize)) {
    let b = text.as_bytes();
    let mut at = 0;
    // `#`, or the lead byte of `＃` (never a continuation byte).
    while let Some(off) = b
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'#', 0xEF, rest))
    {
        let i = at + off;
        let sign = if b[i] == b'#' {
            1
        } else if b[i..].starts_with(WIDE_HASH.as_bytes()) {
            WIDE_HASH.len()
        } else {
            at = i + 1;
            continue;
        };
        let run = i + sign;
        let mut j = run;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if b.get(j).is_some_and(|&c| c >= 0x80) {
            j = run
                + text
                    .get(run..)
                    .and_then(|r| TAG_RUN.find(r))
                    .map_or(0, |m| m.end());
        }
        if j > run {
            f(i, j);
            at = j;
        } else {
            at = run;
        }
    }
}

/// `://`, searched for once per text with a candidate tag: a finder
/// built once (`memmem::find` builds one per call, 1 % of a batch).
static SCHEME_SEP: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"://"));

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
    // Whether the text can hold a URL, found once it has a candidate tag.
    let mut has_url: Option<bool> = None;
    tag_spans(text, |start, end| {
        if text[..start]
            .chars()
            .next_back()
            .is_some_and(blocks_hashtag)
        {
            return;
        }
        let has_url = *has_url.get_or_insert_with(|| {
            // Every URL holds `://` or starts with `www.`.
            let bytes = text.as_bytes();
            SCHEME_SEP.find(bytes).is_some()
                || memchr::memchr2_iter(b'w', b'W', bytes).any(|i| {
                    bytes
                        .get(i..i + 4)
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"www."))
                })
        });
        if has_url && in_url(text, start) {
            return;
        }
        let after = &text[end..];
        if after.starts_with('#') || after.starts_with('＃') || after.starts_with("://") {
            return;
        }
        // The tag is what follows the hash sign (`#` or `＃`).
        let w = &text[start..end];
        let t = &w[w.chars().next().map_or(0, char::len_utf8)..];
        // "#️⃣" (keycap) is an emoji, not a hashtag.
        if t.starts_with(['\u{FE0F}', '\u{20E3}']) {
            return;
        }
        if t.chars().all(|ch| ch.is_numeric()) {
            return;
        }
        let key = normalize(t);
        if !out.contains(&key) {
            out.push(key);
        }
    });
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
