//! The connection to an Elasticsearch-API server: URL, authentication
//! (basic auth or API key, read from environment variables named in the
//! config, never logged) and TLS with an optional CA file. Every request
//! goes through [`EsClient::request`], which returns the status and the JSON
//! body and classifies transport failures as retryable.

use super::lifecycle::IlmPolicy;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use farol_common::config::EsEvents;
use serde_json::Value;
use std::time::Duration;

/// How to reach and authenticate to the server.
#[derive(Clone, Default)]
pub struct EsSettings {
    /// Base URL (`http://127.0.0.1:9200`).
    pub url: String,
    /// Prefix of every index name.
    pub index_prefix: String,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password (the value, read from the configured variable).
    pub password: Option<String>,
    /// API key, base64 `id:key` as Kibana shows it (the value).
    pub api_key: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    pub ca_file: Option<std::path::PathBuf>,
    /// Most documents in one bulk request.
    pub bulk_max_docs: usize,
    /// Most bytes in one bulk request.
    pub bulk_max_bytes: usize,
    /// Bulk requests in flight at once.
    pub bulk_concurrency: usize,
    /// Longest time one failing bulk request is retried before the commit fails.
    pub retry_for: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Data streams or monthly indices for events.
    pub events: EsEvents,
    /// The ILM policy of the event data streams (`None`: no ILM).
    pub ilm: Option<IlmPolicy>,
}

impl std::fmt::Debug for EsSettings {
    // Credentials never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSettings")
            .field("url", &self.url)
            .field("index_prefix", &self.index_prefix)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("events", &self.events)
            .field("ilm", &self.ilm)
            .finish_non_exhaustive()
    }
}

/// Failures talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// Bad settings (URL, CA file).
    #[error("elasticsearch settings: {0}")]
    Settings(String),
    /// The server could not be reached or the connection broke (retryable).
    #[error("elasticsearch unreachable: {0}")]
    Transport(String),
    /// The server answered with an error status.
    #[error("elasticsearch answered {status} to {what}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
        /// The answer (shortened).
        body: String,
    },
    /// The answer was not what the API promises.
    #[error("elasticsearch answer to {0} not understood: {1}")]
    Answer(String, String),
}

impl EsError {
    /// True for failures worth retrying: 429, 5xx and connection errors.
    pub fn retryable(&self) -> bool {
        match self {
            EsError::Transport(_) => true,
            EsError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A configured client.
#[derive(Clone)]
pub struct EsClient {
    es: Elasticsearch,
    timeout: Duration,
}

impl EsClient {
    /// Builds the client (no request is made).
    pub fn new(s: &EsSettings) -> Result<Self, EsError> {
        let url = url::Url::parse(&s.url)
            .map_err(|e| EsError::Settings(format!("url '{}': {e}", s.url)))?;
        let mut b = TransportBuilder::new(SingleNodeConnectionPool::new(url)).disable_proxy();
        if let Some(key) = &s.api_key {
            b = b.auth(Credentials::EncodedApiKey(key.clone()));
        } else if let Some(user) = &s.username {
            b = b.auth(Credentials::Basic(
                user.clone(),
                s.password.clone().unwrap_or_default(),
            ));
        }
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| EsError::Settings(format!("ca_file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| EsError::Settings(format!("ca_file {}: {e}", ca.display())))?;
            b = b.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = b
            .build()
            .map_err(|e| EsError::Settings(format!("building the client: {e}")))?;
        Ok(EsClient {
            es: Elasticsearch::new(transport),
            timeout: s.request_timeout,
        })
    }

    /// Sends one request; `Ok` for every answer the server gave (any status),
    /// with its JSON body (`Null` when empty or not JSON).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        ndjson: bool,
    ) -> Result<(u16, Value), EsError> {
        let mut headers = HeaderMap::new();
        let ct = if ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        let resp = self
            .es
            .send::<Vec<u8>, ()>(method, path, headers, None, body, Some(self.timeout))
            .await
            .map_err(|e| EsError::Transport(e.to_string()))?;
        let status = resp.status_code().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| EsError::Transport(e.to_string()))?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }

    /// Sends one request and turns an error status into [`EsError::Status`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, EsError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let what = format!("{} {path}", format!("{method:?}").to_uppercase());
        let (status, v) = self.raw(method, path, bytes, false).await?;
        if status >= 300 {
            return Err(EsError::Status {
                status,
                what,
                body: short(&v.to_string()),
            });
        }
        Ok(v)
    }
}

/// A server message cut to a loggable length.
pub fn short(s: &str) -> String {
    const MAX: usize = 512;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
