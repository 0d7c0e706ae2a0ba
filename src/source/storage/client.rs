//! The Storage API over HTTP (reqwest on tokio): authentication headers, URL encoding of names,
//! retries with exponential backoff and jitter. Every call returns the server's classified
//! failure ([`ApiError`]); callers decide what a failure means for them.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use zeroize::Zeroizing;

use super::api::{
    ApiError, Bucket, BucketUpdate, Failure, InfoAnswer, ListItem, ListV2Page, classify,
};

/// How patiently transient failures (timeouts, resets, refused connections, 429, 5xx) are
/// retried: with growing delays until they have gone on for `patience` (a server restart or a
/// short outage is waited out; `--retry-for` sets it).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// How long a run of failures of one request may last before it is given up.
    pub patience: Duration,
    /// Delay before the first retry; doubled each time, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            patience: Duration::from_secs(120),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Whether failures that started at `since` have lasted long enough to give up.
    pub fn exhausted(&self, since: std::time::Instant) -> bool {
        since.elapsed() >= self.patience
    }

    /// Delay before retry number `retry` (1-based): `base·2^(retry-1)` capped, times a random
    /// factor in [0.5, 1) so that parallel transfers do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        let jitter = 0.5 + (getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64) * 0.5;
        capped.mul_f64(jitter)
    }
}

/// Percent-encode an object name for a URL path, keeping its `/` separators.
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_segment(s: &str) -> String {
    encode_name(s).replace('/', "%2F")
}

fn post_json(h: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    h.post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// A client for one Storage API base (e.g. `https://<ref>.supabase.co/storage/v1`).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub retry: RetryPolicy,
    /// Transient failures retried so far (shared by clones).
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A transport failure (no HTTP answer): always worth retrying.
fn network(e: reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    // The URL is shown without its query (it never holds the key anyway).
    let mut msg = format!("{what}: {e}");
    if let Some(src) = std::error::Error::source(&e) {
        msg.push_str(&format!(" ({src})"));
    }
    ApiError::local(Failure::Transient, msg)
}

impl Client {
    pub fn new(
        base: &str,
        key: &Zeroizing<String>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> crate::Result<Client> {
        let bad_key = || {
            crate::Error::Invalid(
                "the service key contains characters that cannot be sent in an HTTP header".into(),
            )
        };
        let mut headers = HeaderMap::new();
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", key.as_str())).map_err(|_| bad_key())?;
        bearer.set_sensitive(true);
        let mut apikey = HeaderValue::from_str(key.as_str()).map_err(|_| bad_key())?;
        apikey.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        headers.insert("apikey", apikey);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout)
            .user_agent(concat!("snap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Invalid(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            retry,
            retries: Default::default(),
        })
    }

    /// Wait before retry number `retry` (and count it).
    pub async fn backoff(&self, retry: u32) {
        self.retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.retry.delay(retry)).await;
    }

    /// Transient failures retried so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Count a retry made outside [`Client::backoff`] (a blocking caller sleeps itself).
    pub fn count_retry(&self) {
        self.retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn object_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/object/{}/{}",
            self.base,
            encode_segment(bucket),
            encode_name(name)
        )
    }

    /// Send once; a non-2xx answer becomes a classified [`ApiError`].
    pub async fn send_once(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let resp = req.send().await.map_err(network)?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(classify(status, &body))
    }

    /// Send, retrying transient failures per the policy (`build` makes a fresh request each time).
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let mut attempt = 1;
        let since = std::time::Instant::now();
        loop {
            match self.send_once(build(&self.http)).await {
                Err(e) if e.failure == Failure::Transient && !self.retry.exhausted(since) => {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let mut attempt = 1;
        let since = std::time::Instant::now();
        loop {
            let resp = self.send(&build).await?;
            match resp.bytes().await {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|e| ApiError {
                        failure: Failure::Permanent,
                        status: 200,
                        message: format!("unexpected answer from the Storage API ({e}); is this a Storage API base URL?"),
                        code: None,
                    });
                }
                Err(_) if !self.retry.exhausted(since) => {
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(network(e)),
            }
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ApiError> {
        let url = format!("{}/bucket", self.base);
        self.json(|h| h.get(&url)).await
    }

    pub async fn create_bucket(&self, b: &Bucket) -> Result<(), ApiError> {
        let url = format!("{}/bucket", self.base);
        let body = serde_json::json!({
            "id": b.id,
            "name": if b.name.is_empty() { &b.id } else { &b.name },
            "public": b.public,
            "file_size_limit": b.file_size_limit,
            "allowed_mime_types": b.allowed_mime_types,
        });
        self.send(|h| post_json(h, &url, &body)).await.map(drop)
    }

    pub async fn list_v1(&self, bucket: &str, body: &Value) -> Result<Vec<ListItem>, ApiError> {
        let url = format!("{}/object/list/{}", self.base, encode_segment(bucket));
        self.json(|h| post_json(h, &url, body)).await
    }

    pub async fn list_v2(&self, bucket: &str, body: &Value) -> Result<ListV2Page, ApiError> {
        let url = format!("{}/object/list-v2/{}", self.base, encode_segment(bucket));
        self.json(|h| post_json(h, &url, body)).await
    }

    /// `GET /bucket/{id}`: one bucket's configuration.
    pub async fn get_bucket(&self, id: &str) -> Result<Bucket, ApiError> {
        let url = format!("{}/bucket/{}", self.base, encode_segment(id));
        self.json(|h| h.get(&url)).await
    }

    /// `PUT /bucket/{id}` with the given fields (the server changes only the fields sent).
    pub async fn update_bucket(&self, id: &str, fields: &BucketUpdate) -> Result<(), ApiError> {
        let url = format!("{}/bucket/{}", self.base, encode_segment(id));
        self.send(|h| {
            h.put(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_string(fields).expect("json serializes"))
        })
        .await
        .map(drop)
    }

    /// `GET /object/info/authenticated/{bucket}/{name}`: the object's attributes and user
    /// metadata. The `authenticated` route, because `/object/info/{bucket}/…` takes a refused
    /// key for anonymous and answers "Bucket not found" (transcript §6), which would read as an
    /// object deleted since the listing.
    pub async fn object_info(&self, bucket: &str, name: &str) -> Result<InfoAnswer, ApiError> {
        let url = format!(
            "{}/object/info/authenticated/{}/{}",
            self.base,
            encode_segment(bucket),
            encode_name(name)
        );
        self.json(|h| h.get(&url)).await
    }

    /// `/object/authenticated/{bucket}/{name}`: downloads that refuse a bad key instead of
    /// serving as anonymous (transcript §8, §10).
    pub fn download_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/object/authenticated/{}/{}",
            self.base,
            encode_segment(bucket),
            encode_name(name)
        )
    }

    /// One download attempt from byte `offset` on (a `Range` request when > 0). No retry: the
    /// caller resumes from where a broken transfer stopped.
    pub async fn get_object(
        &self,
        bucket: &str,
        name: &str,
        offset: u64,
    ) -> Result<reqwest::Response, ApiError> {
        let mut req = self.http.get(self.download_url(bucket, name));
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        self.send_once(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_per_byte_keeping_slashes() {
        assert_eq!(encode_name("a b/c#d%e?.txt"), "a%20b/c%23d%25e%3F.txt");
        assert_eq!(encode_name("ü"), "%C3%BC");
        assert_eq!(encode_segment("x/y"), "x%2Fy");
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy {
            patience: Duration::from_secs(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        assert!(!p.exhausted(std::time::Instant::now()));
        assert!(p.exhausted(std::time::Instant::now() - Duration::from_secs(2)));
        for _ in 0..20 {
            let d1 = p.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(100),
                "{d1:?}"
            );
            let d2 = p.delay(2);
            assert!(
                d2 >= Duration::from_millis(100) && d2 < Duration::from_millis(200),
                "{d2:?}"
            );
            let d9 = p.delay(9);
            assert!(
                d9 >= Duration::from_millis(150) && d9 < Duration::from_millis(300),
                "{d9:?}"
            );
        }
    }
}
