//! Mastodon timelines (`/api/v1/timelines/public`, `/api/v1/timelines/tag/:hashtag`).
//! With a cursor, pages move forward with `min_id` and the `Link: rel="prev"`
//! header; the first poll takes only the newest page (no backfill).

use super::http::{encode, get, post_id, rate_wait, FeedError, Page};
use super::Fetcher;

/// Statuses per page (Mastodon's maximum).
pub const LIMIT: u32 = 40;

/// A Mastodon timeline client.
pub struct Mastodon {
    client: reqwest::Client,
    name: String,
    endpoint: String,
    token: Option<String>,
}

impl Mastodon {
    /// `timeline` is `public`, `public/local`, `public/remote` or `tag/NAME`.
    pub fn new(
        client: reqwest::Client,
        name: &str,
        base: &str,
        timeline: &str,
        token: Option<String>,
    ) -> Result<Self, FeedError> {
        let base = base.trim_end_matches('/');
        let path = match timeline {
            "public" => "timelines/public?".to_string(),
            "public/local" => "timelines/public?local=true&".to_string(),
            "public/remote" => "timelines/public?remote=true&".to_string(),
            t => match t.strip_prefix("tag/") {
                Some(tag) if !tag.is_empty() => format!("timelines/tag/{}?", encode(tag)),
                _ => {
                    return Err(FeedError::Config(format!(
                        "feed '{name}': unknown Mastodon timeline '{t}'"
                    )))
                }
            },
        };
        Ok(Mastodon {
            client,
            name: name.to_string(),
            endpoint: format!("{base}/api/v1/{path}limit={LIMIT}"),
            token,
        })
    }
}

/// The URL of `rel="prev"` (newer statuses) in a Link header.
pub fn link_prev(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"prev\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[async_trait::async_trait]
impl Fetcher for Mastodon {
    async fn page(&self, cursor: Option<u64>, next: Option<&str>) -> Result<Page, FeedError> {
        let url = match (next, cursor) {
            (Some(n), _) => n.to_string(),
            (None, Some(c)) => format!("{}&min_id={c}", self.endpoint),
            (None, None) => self.endpoint.clone(),
        };
        let f = get(&self.client, &self.name, &url, self.token.as_deref()).await?;
        let statuses: Vec<serde_json::Value> =
            serde_json::from_slice(&f.body).map_err(|e| FeedError::Body(e.to_string()))?;
        let mut page = Page {
            wait: rate_wait(&f.headers, false),
            ..Page::default()
        };
        for s in &statuses {
            match post_id(s) {
                Some(id) => page
                    .posts
                    .push((id, serde_json::to_vec(s).unwrap_or_default())),
                None => page.warnings.push("status without a numeric id".into()),
            }
        }
        // Forward paging only once a cursor exists: the first poll takes the newest page.
        if cursor.is_some() && !statuses.is_empty() {
            page.next = f
                .headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(link_prev);
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_prev_link() {
        let h = r#"<https://m.s/api/v1/timelines/public?max_id=1>; rel="next", <https://m.s/api/v1/timelines/public?min_id=9>; rel="prev""#;
        assert_eq!(
            link_prev(h).as_deref(),
            Some("https://m.s/api/v1/timelines/public?min_id=9")
        );
        assert_eq!(link_prev(r#"<https://x>; rel="next""#), None);
    }

    #[test]
    fn timelines_map_to_endpoints() {
        let c = reqwest::Client::new();
        let m = Mastodon::new(c.clone(), "f", "https://m.s/", "tag/Rust Lang", None).unwrap();
        assert_eq!(
            m.endpoint,
            "https://m.s/api/v1/timelines/tag/Rust%20Lang?limit=40"
        );
        let m = Mastodon::new(c.clone(), "f", "https://m.s", "public/local", None).unwrap();
        assert_eq!(
            m.endpoint,
            "https://m.s/api/v1/timelines/public?local=true&limit=40"
        );
        assert!(Mastodon::new(c, "f", "https://m.s", "home", None).is_err());
    }
}
