//! Mastodon timelines (`/api/v1/timelines/public`, `/api/v1/timelines/tag/:hashtag`).
//! With a cursor, pages move forward with `min_id` and the `Link: rel="prev"`
//! header; the first poll takes only the newest page (no backfill). A `Link`
//! is followed only within the configured origin: the token goes nowhere else.

use super::http::{get, post_id, rate_wait, redact, FeedError, Page};
use super::Fetcher;
use farol_common::metrics::metrics;
use url::{Origin, Url};

/// Statuses per page (Mastodon's maximum).
pub const LIMIT: u32 = 40;

/// A Mastodon timeline client.
pub struct Mastodon {
    client: reqwest::Client,
    name: String,
    endpoint: String,
    origin: Origin,
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
        let mut url = Url::parse(base).map_err(|e| {
            FeedError::Config(format!("feed '{name}': url '{}': {e}", redact(base)))
        })?;
        let (segments, flag): (Vec<&str>, Option<&str>) = match timeline {
            "public" => (vec!["timelines", "public"], None),
            "public/local" => (vec!["timelines", "public"], Some("local")),
            "public/remote" => (vec!["timelines", "public"], Some("remote")),
            t => match t.strip_prefix("tag/") {
                Some(tag) if !tag.is_empty() => (vec!["timelines", "tag", tag], None),
                _ => {
                    return Err(FeedError::Config(format!(
                        "feed '{name}': unknown Mastodon timeline '{t}'"
                    )))
                }
            },
        };
        url.path_segments_mut()
            .map_err(|()| FeedError::Config(format!("feed '{name}': url cannot have a path")))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        url.set_fragment(None);
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = flag {
                q.append_pair(f, "true");
            }
            q.append_pair("limit", &LIMIT.to_string());
        }
        Ok(Mastodon {
            client,
            name: name.to_string(),
            origin: url.origin(),
            endpoint: url.into(),
            token,
        })
    }

    /// `next` when it is on the configured origin; otherwise the refusal,
    /// counted in `farol_feed_errors_total{kind="foreign_link"}` and logged
    /// with the URL redacted.
    fn same_origin(&self, next: String) -> Option<String> {
        let ok = Url::parse(&next).is_ok_and(|u| u.origin() == self.origin);
        if ok {
            return Some(next);
        }
        let e = FeedError::ForeignLink(redact(&next));
        metrics()
            .feed_errors
            .with_label_values(&[&self.name, e.kind()])
            .inc();
        tracing::warn!(feed = %self.name, error = %e, "not following the Link header");
        None
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
                .and_then(link_prev)
                .and_then(|next| self.same_origin(next));
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
        assert!(Mastodon::new(c.clone(), "f", "https://m.s", "home", None).is_err());
        // A path prefix and a query in the base are kept, in the right places.
        let m = Mastodon::new(
            c,
            "f",
            "https://m.s/proxy/?access_token=t",
            "tag/a/b#c",
            None,
        )
        .unwrap();
        assert_eq!(
            m.endpoint,
            "https://m.s/proxy/api/v1/timelines/tag/a%2Fb%23c?access_token=t&limit=40"
        );
    }

    fn status(id: u64) -> serde_json::Value {
        serde_json::json!({
            "id": id.to_string(),
            "created_at": "2024-01-01T00:00:00.000Z",
            "content": "<p>hi #rust</p>",
            "tags": [{"name": "rust"}],
            "account": {"acct": "a"},
            "language": "en",
            "url": "https://m.s/@a/1",
        })
    }

    /// The replay server names another origin in its `Link` header: the
    /// poller does not follow it (so the token is not sent there), and
    /// counts the refusal.
    #[tokio::test]
    async fn links_to_another_origin_are_refused_and_counted() {
        use super::super::replay::{Fault, Replay};
        let home = Replay::start((1..=5).map(status).collect(), vec![])
            .await
            .unwrap();
        let elsewhere = Replay::start((1..=5).map(status).collect(), vec![])
            .await
            .unwrap();
        let m = Mastodon::new(
            super::super::http::client().unwrap(),
            "linktest",
            &home.url(),
            "public",
            Some("TOKEN".into()),
        )
        .unwrap();
        let count = || {
            metrics()
                .feed_errors
                .with_label_values(&["linktest", "foreign_link"])
                .get()
        };
        // Same origin: followed.
        let page = m.page(Some(1), None).await.unwrap();
        assert!(
            page.next
                .as_deref()
                .is_some_and(|n| n.starts_with(&home.url())),
            "{:?}",
            page.next
        );
        assert_eq!(count(), 0);
        // Another port on the same host is another origin.
        home.inject([Fault::LinkTo(elsewhere.url())]);
        let page = m.page(Some(1), None).await.unwrap();
        assert_eq!(page.posts.len(), 4);
        assert_eq!(page.next, None);
        assert_eq!(count(), 1);
        assert_eq!(elsewhere.requests(), 0);
        assert_eq!(m.same_origin("not a url".into()), None);
        assert_eq!(count(), 2);
    }
}
