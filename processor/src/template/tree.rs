//! Drain's parse tree, reduced to what it decides: which clusters a message
//! is compared with (its *route*: token count and leading words) and when a
//! message is close enough to a cluster's template to join it.
//!
//! Routing follows Drain (He et al., ICWS 2017): the token count, then the
//! first [`ROUTE_TOKENS`] tokens, where a token that is or holds a variable,
//! or looks like a name (dotted, like `com.apple.x` or a host, or with `/`
//! or `@`) routes as `<*>`, because names are the unmasked variables that
//! most often open a message.
//!
//! Joining: a message joins the most similar cluster in its leaf when the
//! positions where it differs from the template (a template `<*>` matches
//! anything) are at most a fifth of its tokens, but always at least one
//! and always fewer than half. Drain's similarity threshold alone either
//! merges long messages that differ in a few constant words or splits short
//! messages with one unmasked variable (`session closed for user X`); with
//! the numbers already masked, one differing word in a short message is
//! most often a variable, several in a long one most often another event.

use super::mask::{has_wildcard, WILDCARD};

/// How many leading tokens route a message (Drain's depth minus two).
pub const ROUTE_TOKENS: usize = 2;
/// At most this share of a message's positions may differ from the
/// template it joins (numerator, denominator).
pub const MAX_DIFFERING: (usize, usize) = (1, 5);

fn routable(t: &str) -> bool {
    if t.bytes().any(|b| b.is_ascii_digit()) || has_wildcard(t) {
        return false;
    }
    // A name: a word character, a `.`, `/` or `@`, a word character. The
    // separators are looked for first (most tokens have none).
    let b = t.as_bytes();
    let word = |i: Option<usize>| {
        i.and_then(|i| b.get(i))
            .is_some_and(u8::is_ascii_alphanumeric)
    };
    !memchr::memchr3_iter(b'.', b'/', b'@', b).any(|i| word(i.checked_sub(1)) && word(Some(i + 1)))
}

/// The leaf key of a token sequence: its length and its first
/// [`ROUTE_TOKENS`] routable tokens (the others are skipped, so that a
/// header left in the message, like `sshd[<*>]:`, does not use up the
/// routing).
pub fn route<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut r = String::new();
    route_into(tokens, &mut r);
    r
}

/// [`route`] into a reused buffer.
pub fn route_into<S: AsRef<str>>(tokens: &[S], r: &mut String) {
    r.clear();
    // The count's digits, without the formatting machinery (it was a fifth
    // of `learn` in a streaming profile).
    let n = tokens.len();
    let mut div = 1;
    while n / div >= 10 {
        div *= 10;
    }
    while div > 0 {
        r.push(char::from(b'0' + (n / div % 10) as u8));
        div /= 10;
    }
    for t in tokens
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| routable(t))
        .take(ROUTE_TOKENS)
    {
        r.push('\u{1f}');
        r.push_str(t);
    }
}

/// How many positions of `tokens` agree with `template` (same length).
pub fn agreeing<S: AsRef<str>>(template: &[String], tokens: &[S]) -> usize {
    template
        .iter()
        .zip(tokens)
        .filter(|(a, b)| a.as_str() == b.as_ref() || a.as_str() == WILDCARD)
        .count()
}

/// Whether a message of `n` tokens, `same` of which agree with a template
/// of its length, is an instance of it.
pub fn close_enough(n: usize, same: usize) -> bool {
    let differing = n - same.min(n);
    let allowed = (n * MAX_DIFFERING.0 / MAX_DIFFERING.1).max(1);
    differing == 0 || (differing <= allowed && 2 * differing < n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_variables_do_not_route() {
        assert!(routable("Received"));
        assert!(!routable("com.apple.x:"));
        assert!(!routable("user@host"));
        assert!(!routable("<*>:"));
        assert!(!routable("eth0"));
        assert!(routable("CCFile::captureLog"));
    }

    #[test]
    fn a_route_starts_with_the_token_count() {
        assert_eq!(route::<&str>(&[]), "0");
        assert_eq!(route(&["a"; 7]), "7\u{1f}a\u{1f}a");
        assert_eq!(route(&["<*>"; 10]), "10");
        assert_eq!(route(&["x"; 120])[..4], *"120\u{1f}");
    }

    #[test]
    fn the_joining_rule() {
        // One word may differ in short messages, never half of them.
        assert!(close_enough(5, 4));
        assert!(close_enough(3, 2));
        assert!(!close_enough(2, 1));
        assert!(!close_enough(1, 0));
        assert!(close_enough(0, 0));
        // A fifth of longer ones.
        assert!(close_enough(10, 8));
        assert!(!close_enough(10, 7));
        assert!(!close_enough(14, 10));
    }
}
