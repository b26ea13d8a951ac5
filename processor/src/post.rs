//! Post parsing: one JSON object in any of the shapes Farol meets (Mastodon
//! status, X API v2 tweet, X v1.1 status, a plain `{"id","created_at","text"}`
//! line) becomes a [`Post`]. Hashtags come from the platform's entities when
//! it supplies them and from the text otherwise.

use crate::hashtag;
use crate::timestamp::parse_created_at;
use farol_common::model::Post;
use serde_json::Value;

/// Why a payload is not a post.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid JSON without the fields of a post.
    #[error("not a post: {0}")]
    NotAPost(String),
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn id_of(v: &Value) -> Option<String> {
    match v.get("id_str").or_else(|| v.get("id"))? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Turns Mastodon's HTML `content` into plain text.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = &rest[lt..];
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        if tag.starts_with("br") || tag == "/p" {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    html_escape::decode_html_entities(out.trim_end()).into_owned()
}

/// Creation time encoded in a platform id: X snowflakes carry milliseconds
/// since 2010-11-04 in their top 42 bits, Mastodon ids milliseconds since the
/// epoch in all but their low 16 bits.
pub fn snowflake_ms(platform: &str, id: &str) -> Option<i64> {
    let n: u64 = id.parse().ok()?;
    match platform {
        "x" => Some((n >> 22) as i64 + 1_288_834_974_657),
        "mastodon" => Some((n >> 16) as i64),
        _ => None,
    }
}

/// Parses one post. `source` scopes the id; `platform` is recorded as given.
pub fn parse(source: &str, platform: &str, payload: &str) -> Result<Post, PostError> {
    let v: Value = serde_json::from_str(payload).map_err(|e| PostError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(PostError::NotAPost("not a JSON object".into()));
    }
    let id = id_of(&v).ok_or_else(|| PostError::NotAPost("no id".into()))?;
    let created_at = match s(&v, &["created_at"]) {
        Some(created) => parse_created_at(created)
            .ok_or_else(|| PostError::NotAPost(format!("unreadable created_at '{created}'")))?,
        // Feeds asked without `created_at` still carry it in the id.
        None => snowflake_ms(platform, &id)
            .ok_or_else(|| PostError::NotAPost("no created_at".into()))?,
    };
    let (text, tags, author, lang, url) = if let Some(content) = s(&v, &["content"]) {
        // Mastodon status.
        let tags = v
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| hashtag::normalize_all(a.iter().filter_map(|t| t.get("name")?.as_str())));
        (
            html_to_text(content),
            tags,
            s(&v, &["account", "acct"]).map(str::to_string),
            s(&v, &["language"]).map(str::to_string),
            s(&v, &["url"]).or(s(&v, &["uri"])).map(str::to_string),
        )
    } else {
        let ext = v.get("extended_tweet");
        let text = ext
            .and_then(|e| s(e, &["full_text"]))
            .or(s(&v, &["full_text"]))
            .or(s(&v, &["text"]))
            .ok_or_else(|| PostError::NotAPost("no text or content".into()))?;
        let entities = ext
            .and_then(|e| e.get("entities"))
            .or_else(|| v.get("entities"));
        // X v2 tags are `tag`, v1.1 `text`; a plain line may carry `hashtags`.
        let tags = entities
            .map(|e| {
                let list = e.get("hashtags").and_then(Value::as_array);
                hashtag::normalize_all(
                    list.into_iter()
                        .flatten()
                        .filter_map(|h| h.get("tag").or_else(|| h.get("text"))?.as_str()),
                )
            })
            .or_else(|| {
                v.get("hashtags")
                    .and_then(Value::as_array)
                    .map(|a| hashtag::normalize_all(a.iter().filter_map(Value::as_str)))
            });
        let author = s(&v, &["user", "screen_name"])
            .or(s(&v, &["author_id"]))
            .or(s(&v, &["author"]))
            .map(str::to_string);
        (
            text.to_string(),
            tags,
            author,
            s(&v, &["lang"]).map(str::to_string),
            s(&v, &["url"]).map(str::to_string),
        )
    };
    let hashtags = tags.unwrap_or_else(|| hashtag::extract(&text));
    Ok(Post {
        id: format!("post:{source}:{id}"),
        source: source.to_string(),
        platform: platform.to_string(),
        created_at,
        author,
        text,
        lang,
        hashtags,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_extracts_from_text() {
        let p = parse(
            "f",
            "jsonl",
            r##"{"id":"1","created_at":"2024-01-01T00:00:05Z","text":"#Rust and #rust, #Go"}"##,
        )
        .unwrap();
        assert_eq!(p.hashtags, vec!["rust", "go"]);
        assert_eq!(p.id, "post:f:1");
    }

    #[test]
    fn mastodon_uses_tags_and_strips_html() {
        let p = parse(
            "m",
            "mastodon",
            r##"{"id":"9","created_at":"2022-11-07T10:00:00.000Z","content":"<p>Hi &amp; <a href=\"x\">#<span>Fedi</span></a></p><p>two</p>","tags":[{"name":"Fedi"}],"account":{"acct":"a@b"}}"##,
        )
        .unwrap();
        assert_eq!(p.text, "Hi & #Fedi\ntwo");
        assert_eq!(p.hashtags, vec!["fedi"]);
        assert_eq!(p.author.as_deref(), Some("a@b"));
    }

    #[test]
    fn x_entities_win_over_text() {
        let p = parse(
            "x",
            "x",
            r##"{"id":"5","created_at":"2023-01-01T00:00:00.000Z","text":"#a #b","entities":{"hashtags":[{"start":0,"end":2,"tag":"A"}]}}"##,
        )
        .unwrap();
        assert_eq!(p.hashtags, vec!["a"]);
        let v1 = parse(
            "x",
            "x",
            r##"{"id_str":"6","created_at":"Wed Aug 27 13:08:45 +0000 2008","text":"#q","entities":{"hashtags":[{"text":"Q"}]},"user":{"screen_name":"u"}}"##,
        )
        .unwrap();
        assert_eq!(
            (v1.hashtags, v1.author.as_deref()),
            (vec!["q".to_string()], Some("u"))
        );
    }

    #[test]
    fn ids_date_posts_without_created_at() {
        // (id >> 22) + 1288834974657 ms, computed independently: 2022-10-07 23:06:33.414.
        let t = snowflake_ms("x", "1578522194770296832").unwrap();
        assert_eq!(farol_common::time::rfc3339(t), "2022-10-07T23:06:33.414Z");
        // Mastodon: 109381959558229264 has created_at 2022-11-21T13:10:48.151Z;
        // its id's time part says 13:10:48.141.
        let m = snowflake_ms("mastodon", "109381959558229264").unwrap();
        let created = farol_common::time::parse_rfc3339("2022-11-21T13:10:48.151Z").unwrap();
        assert!((created - m).abs() < 1000);
        assert_eq!(snowflake_ms("jsonl", "1"), None);
    }

    #[test]
    fn broken_and_foreign_json_are_errors() {
        assert!(matches!(
            parse("f", "jsonl", "{\"id\":"),
            Err(PostError::Json(_))
        ));
        assert!(matches!(
            parse("f", "jsonl", r#"{"delete":{"status":{"id":1}}}"#),
            Err(PostError::NotAPost(_))
        ));
    }
}
