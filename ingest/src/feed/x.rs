//! X API v2 recent search (`GET /2/tweets/search/recent`): `since_id` from
//! the cursor, `next_token` paging within one poll, errors reported inside
//! a 200 body surfaced as warnings.

use super::http::{encode, get, post_id, rate_wait, redact, FeedError, Page};
use super::Fetcher;

/// Tweets per page (the endpoint's maximum).
pub const MAX_RESULTS: u32 = 100;

/// An X recent-search client.
pub struct X {
    client: reqwest::Client,
    name: String,
    endpoint: String,
    token: String,
}

impl X {
    /// A client for `query` against `base` (e.g. `https://api.x.com`; a path
    /// prefix and query parameters in `base` are kept).
    pub fn new(
        client: reqwest::Client,
        name: &str,
        base: &str,
        query: &str,
        token: String,
    ) -> Result<Self, FeedError> {
        let mut url = url::Url::parse(base).map_err(|e| {
            FeedError::Config(format!("feed '{name}': url '{}': {e}", redact(base)))
        })?;
        url.path_segments_mut()
            .map_err(|()| FeedError::Config(format!("feed '{name}': url cannot have a path")))?
            .pop_if_empty()
            .extend(["2", "tweets", "search", "recent"]);
        url.set_fragment(None);
        let ours = format!(
            "query={}&max_results={MAX_RESULTS}&tweet.fields=created_at,entities,lang,author_id",
            encode(query)
        );
        let all = match url.query() {
            Some(theirs) if !theirs.is_empty() => format!("{theirs}&{ours}"),
            _ => ours,
        };
        url.set_query(Some(&all));
        Ok(X {
            client,
            name: name.to_string(),
            endpoint: url.into(),
            token,
        })
    }
}

#[async_trait::async_trait]
impl Fetcher for X {
    async fn page(&self, cursor: Option<u64>, next: Option<&str>) -> Result<Page, FeedError> {
        let mut url = self.endpoint.clone();
        if let Some(c) = cursor {
            url.push_str(&format!("&since_id={c}"));
        }
        if let Some(n) = next {
            url.push_str(&format!("&next_token={}", encode(n)));
        }
        let f = get(&self.client, &self.name, &url, Some(&self.token)).await?;
        let body: serde_json::Value =
            serde_json::from_slice(&f.body).map_err(|e| FeedError::Body(e.to_string()))?;
        if !body.is_object() {
            return Err(FeedError::Body("expected a JSON object".into()));
        }
        let mut page = Page {
            wait: rate_wait(&f.headers, false),
            ..Page::default()
        };
        for e in body["errors"].as_array().into_iter().flatten() {
            let detail = e["detail"]
                .as_str()
                .or(e["message"].as_str())
                .or(e["title"].as_str())
                .unwrap_or("unknown error");
            page.warnings.push(detail.to_string());
        }
        for t in body["data"].as_array().into_iter().flatten() {
            match post_id(t) {
                Some(id) => page
                    .posts
                    .push((id, serde_json::to_vec(t).unwrap_or_default())),
                None => page.warnings.push("tweet without a numeric id".into()),
            }
        }
        page.next = body["meta"]["next_token"].as_str().map(str::to_string);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_encoded_once() {
        let x = X::new(
            reqwest::Client::new(),
            "f",
            "https://api.x.com/",
            "#rust lang",
            "t".into(),
        )
        .unwrap();
        assert!(x.endpoint.starts_with(
            "https://api.x.com/2/tweets/search/recent?query=%23rust%20lang&max_results=100"
        ));
    }

    #[test]
    fn the_path_goes_in_the_path_even_with_a_query_in_the_base() {
        let x = X::new(
            reqwest::Client::new(),
            "f",
            "https://proxy.example/x?access_token=SECRET",
            "rust",
            "t".into(),
        )
        .unwrap();
        assert_eq!(
            x.endpoint,
            "https://proxy.example/x/2/tweets/search/recent?access_token=SECRET&query=rust&max_results=100&tweet.fields=created_at,entities,lang,author_id"
        );
        assert!(X::new(reqwest::Client::new(), "f", "nope", "q", "t".into()).is_err());
    }
}
