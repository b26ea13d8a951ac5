//! Any bytes as a post: the JSON parser, HTML stripping and hashtag
//! extraction must answer without panicking, for every platform.
#![no_main]

use farol_processor::{hashtag, post};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for platform in ["jsonl", "x", "mastodon"] {
        let _ = post::parse("fuzz", platform, &text);
    }
    let _ = post::html_to_text(&text);
    let _ = hashtag::extract(&text);
});
