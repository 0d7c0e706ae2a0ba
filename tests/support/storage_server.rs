//! A Supabase Storage API server inside the test process (hyper on a tokio runtime of its own
//! thread, 127.0.0.1:0), answering as the real one does: every route, field name, null-vs-missing,
//! status and error body follows the recorded answers of supabase/storage v1.70.6
//! (`../shared/storage-api-transcript.md`, § numbers below), and tests/storage_server_conformance.rs
//! holds this server to those recordings. In short: errors are HTTP 400 (416 for ranges) with the
//! real status as a string in `statusCode`, plus `error`, `message` and `code`; user metadata is
//! only in `GET /object/info` (as `metadata`); a refused key counts as anonymous on the plain
//! download and info routes but is refused on every other; listings of unknown buckets are empty.
//! Served both at `/storage/v1/…` (a project URL, behind a gateway that checks `apikey`) and at
//! `/` (a storage server of its own). Object content is either held bytes or generated on the fly
//! from a seed (never held in memory), so multi-GB buckets cost nothing. Faults are switchable:
//! 5xx bursts, slow answers, connections reset mid-body, outages, a revoked key, objects deleted
//! or replaced between listing and download.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Clone, Debug)]
pub enum Content {
    Bytes(Bytes),
    /// Deterministic pseudo-random bytes, produced while serving.
    Generated {
        seed: u64,
        len: u64,
    },
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Generated { len, .. } => *len,
        }
    }
    /// Bytes `[from, to)`.
    pub fn slice(&self, from: u64, to: u64) -> Bytes {
        match self {
            Content::Bytes(b) => b.slice(from as usize..to as usize),
            Content::Generated { seed, .. } => {
                Bytes::from(generated(*seed, from, (to - from) as usize))
            }
        }
    }
    pub fn all(&self) -> Vec<u8> {
        self.slice(0, self.len()).to_vec()
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Byte `i` of a generated object is byte `i % 8` of `splitmix(seed ^ i / 8)`.
pub fn generated(seed: u64, from: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = from;
    while out.len() < len {
        let w = splitmix(seed ^ (i / 8)).to_le_bytes();
        let start = (i % 8) as usize;
        let take = (8 - start).min(len - out.len());
        out.extend_from_slice(&w[start..start + take]);
        i += take as u64;
    }
    out
}

#[derive(Clone, Debug)]
pub struct Obj {
    pub id: String,
    pub content: Content,
    pub content_type: String,
    pub cache_control: String,
    pub user_metadata: Option<Value>,
    pub etag: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BucketRec {
    pub id: String,
    pub public: bool,
    pub file_size_limit: Option<u64>,
    pub allowed_mime_types: Option<Vec<String>>,
    pub created_at: String,
}

impl BucketRec {
    /// §2.2 (`GET /bucket` items carry `type`) and §2.3 (`GET /bucket/{id}` does not);
    /// `updated_at` stays the creation time, even after a PUT (§2.4).
    fn json(&self, with_type: bool) -> Value {
        let mut v = json!({
            "id": self.id, "name": self.id, "owner": "", "public": self.public,
            "file_size_limit": self.file_size_limit, "allowed_mime_types": self.allowed_mime_types,
            "created_at": self.created_at, "updated_at": self.created_at,
        });
        if with_type {
            v["type"] = json!("STANDARD");
        }
        v
    }
}

#[derive(Default)]
struct Data {
    buckets: BTreeMap<String, BucketRec>,
    objects: BTreeMap<String, BTreeMap<String, Obj>>,
    seq: u64,
}

/// Switchable faults.
#[derive(Default, Debug, Clone)]
pub struct Faults {
    /// The next N requests answer 503 (or 500 / 429 in turn).
    pub errors_5xx: u32,
    /// The next N requests wait this long before answering.
    pub slow_next: u32,
    pub slow_ms: u64,
    /// The next N downloads break (connection reset) after half their body.
    pub reset_mid_body: u32,
    /// The next N downloads are sent without `content-length` (chunked) and break after their
    /// last byte, before the body's end: the resumed range starts at the end (416).
    pub reset_after_last_byte: u32,
    /// The service key is no longer valid (the project's JWT secret was rotated): the gateway
    /// answers 401 `Invalid API key`; the server refuses it (`signature verification failed`)
    /// where a key is required and takes the caller for anonymous where it is not (§10).
    pub unauthorized: bool,
    /// `unauthorized` is switched on right after the next listing answer.
    pub revoke_key_after_list: bool,
    /// Deleted right after the next listing answer is made (so they are listed but gone).
    pub delete_after_list: Vec<(String, String)>,
    /// At the next object download, the server goes away for this long (a restart): every
    /// connection is closed without an answer, new ones and open ones alike.
    pub outage_at_next_download: Option<Duration>,
    /// The next download breaks after half its body and the server goes away for this long
    /// (it restarts in the middle of a transfer).
    pub outage_mid_body: Option<Duration>,
    /// Until when the current outage lasts.
    pub outage_until: Option<std::time::Instant>,
    /// (bucket, name, new content, new content type): re-uploaded just before its next download
    /// is answered, as if a client replaced it between the listing and the download.
    pub replace_at_download: Option<(String, String, Content, String)>,
    /// Not the real server (the transcript never echoes): a misconfigured proxy in front that
    /// answers every request 400 with the request's credentials in its message.
    pub echo_request_headers: bool,
}

pub struct Shared {
    pub key: String,
    /// The project's anon key: a valid JWT whose role sees no private bucket (RLS).
    pub anon_key: String,
    data: Mutex<Data>,
    pub faults: Mutex<Faults>,
    /// list-v2 enabled (else: HTTP 400, statusCode 400, FeatureNotEnabled).
    pub v2: AtomicBool,
    /// Refuse object names outside Supabase's safe ASCII set at upload.
    pub strict_names: AtomicBool,
    /// Answer `GET /object/info` with the database row (older servers: `metadata` = system,
    /// `user_metadata` = the user's) instead of storage v1.70's shape.
    pub info_row_shape: AtomicBool,
    /// Object content downloads answered (GET /object/…, full or ranged).
    pub downloads: AtomicU64,
    pub bytes_served: AtomicU64,
    pub list_v1_calls: AtomicU64,
    pub list_v2_calls: AtomicU64,
    pub uploads: AtomicU64,
}

pub struct StorageServer {
    pub addr: SocketAddr,
    pub state: Arc<Shared>,
}

/// The anon key every in-test server accepts (a JWT's three parts).
pub const ANON_KEY: &str = "anon-key.for.tests";

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `2026-12-02T05:01:37.874Z` as an HTTP date (`Wed, 02 Dec 2026 05:01:37 GMT`), as in the
/// `last-modified` headers (§6–8).
fn http_date(iso: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

fn etag_of(c: &Content) -> String {
    match c {
        Content::Bytes(b) => format!("\"{}\"", &blake3::hash(b).to_hex()[..32]),
        Content::Generated { seed, len } => format!("\"gen-{seed}-{len}\""),
    }
}

/// Supabase's rule for object names (letters, digits and `/ ! - . * ' ( ) space & $ @ = ; : + , ?` and `_`).
pub fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/!-.*'() &$@=;:+,?_".contains(c))
}

/// Bucket names: the object-name characters without `/` (`Bad Name/x` is refused, §2.1).
fn bucket_name_ok(name: &str) -> bool {
    safe_name(name) && !name.contains('/')
}

/// `file_size_limit` as a number or a string with a decimal unit (`"2MB"` = 2000000, §2.1).
fn size_limit(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let s = v.as_str()?.trim().to_ascii_uppercase();
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = match s[digits.len()..].trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok().map(|n| n * unit)
}

impl StorageServer {
    pub fn start(key: &str) -> StorageServer {
        let state = Arc::new(Shared {
            key: key.to_string(),
            anon_key: ANON_KEY.to_string(),
            data: Mutex::new(Data::default()),
            faults: Mutex::new(Faults::default()),
            v2: AtomicBool::new(true),
            strict_names: AtomicBool::new(true),
            info_row_shape: AtomicBool::new(false),
            downloads: AtomicU64::new(0),
            bytes_served: AtomicU64::new(0),
            list_v1_calls: AtomicU64::new(0),
            list_v2_calls: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    if st
                        .faults
                        .lock()
                        .unwrap()
                        .outage_until
                        .is_some_and(|t| std::time::Instant::now() < t)
                    {
                        drop(sock);
                        continue;
                    }
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        StorageServer { addr, state }
    }

    /// The project URL (routes under /storage/v1), as given to `--url`.
    pub fn project_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The storage server's own root, as given to `--storage-url`.
    pub fn storage_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state.faults.lock().unwrap()
    }
    pub fn set_v2(&self, on: bool) {
        self.state.v2.store(on, Ordering::SeqCst);
    }
    pub fn set_info_row_shape(&self, on: bool) {
        self.state.info_row_shape.store(on, Ordering::SeqCst);
    }

    pub fn set_strict_names(&self, on: bool) {
        self.state.strict_names.store(on, Ordering::SeqCst);
    }
    pub fn downloads(&self) -> u64 {
        self.state.downloads.load(Ordering::SeqCst)
    }

    pub fn create_bucket(
        &self,
        id: &str,
        public: bool,
        file_size_limit: Option<u64>,
        mimes: Option<&[&str]>,
    ) {
        let mut d = self.state.data.lock().unwrap();
        d.buckets.insert(
            id.into(),
            BucketRec {
                id: id.into(),
                public,
                file_size_limit,
                allowed_mime_types: mimes.map(|m| m.iter().map(|s| s.to_string()).collect()),
                created_at: now(),
            },
        );
        d.objects.entry(id.into()).or_default();
    }

    /// Put an object directly (no name rule: objects made by older servers or other tools).
    pub fn put(
        &self,
        bucket: &str,
        name: &str,
        content: Content,
        content_type: &str,
        cache_control: &str,
        user_metadata: Option<Value>,
    ) {
        let mut d = self.state.data.lock().unwrap();
        d.seq += 1;
        let t = now();
        let obj = Obj {
            id: format!("00000000-0000-4000-8000-{:012}", d.seq),
            etag: etag_of(&content),
            content,
            content_type: content_type.into(),
            cache_control: cache_control.into(),
            user_metadata,
            created_at: t.clone(),
            updated_at: t,
        };
        d.objects
            .get_mut(bucket)
            .expect("bucket exists")
            .insert(name.into(), obj);
    }

    pub fn delete(&self, bucket: &str, name: &str) {
        self.state
            .data
            .lock()
            .unwrap()
            .objects
            .get_mut(bucket)
            .unwrap()
            .remove(name);
    }

    pub fn buckets(&self) -> BTreeMap<String, BucketRec> {
        self.state.data.lock().unwrap().buckets.clone()
    }

    pub fn objects(&self, bucket: &str) -> BTreeMap<String, Obj> {
        self.state
            .data
            .lock()
            .unwrap()
            .objects
            .get(bucket)
            .cloned()
            .unwrap_or_default()
    }

    pub fn object_count(&self) -> usize {
        self.state
            .data
            .lock()
            .unwrap()
            .objects
            .values()
            .map(|o| o.len())
            .sum()
    }
}

fn full(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(Full::new(body).map_err(|never| match never {}).boxed())
        .unwrap()
}

fn json_resp(status: StatusCode, v: Value) -> Response<Body> {
    full(
        status,
        "application/json; charset=utf-8",
        Bytes::from(v.to_string()),
    )
}

/// The server's error shape (§9): HTTP 400 whatever the failure — 416 for ranges — with the
/// real status as a string in `statusCode`, and `error`, `message`, `code`.
fn err(status: &str, error: &str, message: &str, code: &str) -> Response<Body> {
    let http = if status == "416" {
        StatusCode::RANGE_NOT_SATISFIABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    json_resp(
        http,
        json!({"statusCode": status, "error": error, "message": message, "code": code}),
    )
}

/// A route the server does not have (the web framework's answer, not a Storage error).
fn route_not_found(method: &Method, path: &str) -> Response<Body> {
    json_resp(
        StatusCode::NOT_FOUND,
        json!({"message": format!("Route {method}:{path} not found"), "error": "Not Found", "statusCode": 404}),
    )
}

fn no_such_bucket() -> Response<Body> {
    err(
        "404",
        "Bucket not found",
        "Bucket not found",
        "NoSuchBucket",
    )
}
fn no_such_key() -> Response<Body> {
    err("404", "not_found", "Object not found", "NoSuchKey")
}
fn rls_refused() -> Response<Body> {
    err(
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
        "AccessDenied",
    )
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request answered during an outage: the connection is closed without an answer.
fn outage() -> std::io::Error {
    std::io::Error::other("the storage server is down (simulated outage)")
}

/// Who sent a request, from its `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Service,
    Anon,
    /// No `Authorization` header.
    Missing,
    /// A token that does not verify: the message the server refuses it with (§3.3).
    Refused(&'static str),
}

fn caller(st: &Shared, authorization: Option<&str>) -> Caller {
    let Some(a) = authorization else {
        return Caller::Missing;
    };
    let token = a.strip_prefix("Bearer ").unwrap_or(a);
    if token == st.key && !st.faults.lock().unwrap().unauthorized {
        Caller::Service
    } else if token == st.anon_key {
        Caller::Anon
    } else if token.split('.').count() == 3 {
        Caller::Refused("signature verification failed")
    } else {
        Caller::Refused("Invalid Compact JWS")
    }
}

/// The routes (§1–8). `Plain` object and info routes take a refused or missing key for
/// anonymous; `Authenticated` ones need a valid key; `Public` ones ignore it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Plain,
    Authenticated,
    Public,
}

#[derive(Debug)]
enum Route {
    Buckets,
    Bucket(String),
    BucketEmpty(String),
    ListV1(String),
    ListV2(String),
    Info(Access, String, String),
    Object(Access, String, String),
    Version,
    Status,
}

fn route(path: &str) -> Option<Route> {
    let p = path.trim_start_matches('/');
    let bucket_and_name = |rest: &str| {
        let (b, n) = rest.split_once('/').unwrap_or((rest, ""));
        (pct_decode(b), pct_decode(n))
    };
    let access = |rest: &str| match rest.split_once('/') {
        Some(("authenticated", r)) => (Access::Authenticated, r.to_string()),
        Some(("public", r)) => (Access::Public, r.to_string()),
        _ => (Access::Plain, rest.to_string()),
    };
    Some(match p.split('/').collect::<Vec<_>>().as_slice() {
        ["version"] => Route::Version,
        ["status"] => Route::Status,
        ["bucket"] => Route::Buckets,
        ["bucket", id] => Route::Bucket(pct_decode(id)),
        ["bucket", id, "empty"] => Route::BucketEmpty(pct_decode(id)),
        ["object", "list", b] => Route::ListV1(pct_decode(b)),
        ["object", "list-v2", b] => Route::ListV2(pct_decode(b)),
        ["object", "info", ..] => {
            let (a, rest) = access(p.strip_prefix("object/info/")?);
            let (b, n) = bucket_and_name(&rest);
            Route::Info(a, b, n)
        }
        ["object", _, _, ..] => {
            let (a, rest) = access(p.strip_prefix("object/")?);
            let (b, n) = bucket_and_name(&rest);
            Route::Object(a, b, n)
        }
        _ => return None,
    })
}

/// The faults that answer before any route: outage, slowness, 5xx bursts.
async fn faults_first(
    st: &Shared,
    req: &Request<Incoming>,
) -> Result<Option<Response<Body>>, std::io::Error> {
    let (slow, fail) = {
        let mut f = st.faults.lock().unwrap();
        if f.echo_request_headers {
            // Values only, as some proxies log them: nothing names them as secrets.
            let seen: Vec<&str> = ["authorization", "apikey"]
                .iter()
                .filter_map(|h| req.headers().get(*h).and_then(|v| v.to_str().ok()))
                .collect();
            let message = format!(
                "proxy: request refused, credentials seen: {}",
                seen.join(" and ")
            );
            return Ok(Some(json_resp(
                StatusCode::BAD_REQUEST,
                json!({"statusCode": "400", "error": "Bad Request", "message": message}),
            )));
        }
        if f.outage_until
            .is_some_and(|t| std::time::Instant::now() < t)
        {
            return Err(outage());
        }
        let path = req.uri().path();
        let is_download = req.method() == Method::GET
            && path.contains("/object/")
            && !path.contains("/object/info/")
            && !path.contains("/object/list");
        if is_download && let Some(d) = f.outage_at_next_download.take() {
            f.outage_until = Some(std::time::Instant::now() + d);
            return Err(outage());
        }
        let slow = if f.slow_next > 0 {
            f.slow_next -= 1;
            f.slow_ms
        } else {
            0
        };
        let fail = if f.errors_5xx > 0 {
            f.errors_5xx -= 1;
            Some(f.errors_5xx)
        } else {
            None
        };
        (slow, fail)
    };
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    Ok(fail.map(|n| {
        // What a gateway or load balancer in front answers while the server is unwell.
        let status = [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::TOO_MANY_REQUESTS,
        ][n as usize % 3];
        json_resp(status, json!({"message": "try again"}))
    }))
}

async fn handle(st: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    if let Some(r) = faults_first(&st, &req).await? {
        return Ok(r);
    }
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let raw_path = req.uri().path().to_string();
    // Behind the gateway (`/storage/v1/…`) `apikey` must be one of the project's keys.
    if raw_path.starts_with("/storage/v1/") {
        let apikey = header("apikey");
        let key_ok =
            apikey.as_deref() == Some(st.key.as_str()) && !st.faults.lock().unwrap().unauthorized;
        if !key_ok && apikey.as_deref() != Some(st.anon_key.as_str()) {
            return Ok(json_resp(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Invalid API key"}),
            ));
        }
    }
    let who = caller(&st, header("authorization").as_deref());
    let path = raw_path
        .strip_prefix("/storage/v1")
        .unwrap_or(&raw_path)
        .to_string();
    let method = req.method().clone();
    let Some(r) = route(&path) else {
        return Ok(route_not_found(&method, &raw_path));
    };
    if let Some(refused) = refuse(&r, &method, who) {
        return Ok(if method == Method::HEAD {
            without_body(refused)
        } else {
            refused
        });
    }
    let resp = match (method.clone(), r) {
        (Method::GET, Route::Version) => full(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"0.0.0"),
        ),
        (Method::GET, Route::Status) => {
            full(StatusCode::OK, "text/plain; charset=utf-8", Bytes::new())
        }
        (Method::GET, Route::Buckets) => {
            let d = st.data.lock().unwrap();
            let visible = d
                .buckets
                .values()
                .filter(|_| who == Caller::Service)
                .map(|b| b.json(true));
            json_resp(StatusCode::OK, Value::Array(visible.collect()))
        }
        (Method::POST, Route::Buckets) => create_bucket(&st, who, read_json(req).await),
        (m @ (Method::GET | Method::PUT | Method::DELETE), Route::Bucket(id)) => {
            let body = if m == Method::PUT {
                read_json(req).await
            } else {
                Value::Null
            };
            bucket_op(&st, who, &m, &id, &body)
        }
        (Method::POST, Route::BucketEmpty(id)) => {
            let mut d = st.data.lock().unwrap();
            match d.objects.get_mut(&id) {
                Some(o) if who == Caller::Service => {
                    o.clear();
                    json_resp(
                        StatusCode::OK,
                        json!({"message": "Empty bucket has been queued. Completion may take up to an hour."}),
                    )
                }
                _ => no_such_bucket(),
            }
        }
        (Method::POST, Route::ListV1(bucket)) => {
            st.list_v1_calls.fetch_add(1, Ordering::SeqCst);
            let body = read_json(req).await;
            let r = list_v1(&st, who, &bucket, &body);
            after_list(&st);
            r
        }
        (Method::POST, Route::ListV2(bucket)) => {
            st.list_v2_calls.fetch_add(1, Ordering::SeqCst);
            if !st.v2.load(Ordering::SeqCst) {
                return Ok(err(
                    "400",
                    "FeatureNotEnabled",
                    "feature not enabled for this tenant",
                    "FeatureNotEnabled",
                ));
            }
            let body = read_json(req).await;
            let r = list_v2(&st, who, &bucket, &body);
            after_list(&st);
            r
        }
        (Method::GET, Route::Info(access, bucket, name)) => info(&st, who, access, &bucket, &name),
        (m @ (Method::GET | Method::HEAD), Route::Object(access, bucket, name)) => {
            let r = download(
                &st,
                who,
                access,
                &bucket,
                &name,
                header("range").as_deref(),
                header("if-none-match").as_deref(),
            );
            if m == Method::HEAD {
                without_body(r)
            } else {
                r
            }
        }
        (m @ (Method::POST | Method::PUT), Route::Object(Access::Plain, bucket, name)) => {
            upload(&st, who, &bucket, &name, m == Method::PUT, req).await
        }
        (m, _) => route_not_found(&m, &raw_path),
    };
    Ok(resp)
}

/// The answer for a caller a route does not serve (§3.3): routes that need a key refuse a
/// missing one (400, `InvalidRequest`; list-v2: 403) and one that does not verify (403).
fn refuse(r: &Route, method: &Method, who: Caller) -> Option<Response<Body>> {
    let anonymous_ok = match r {
        Route::Version | Route::Status => true,
        Route::Info(a, ..) => *a != Access::Authenticated,
        Route::Object(a, ..) => {
            *a != Access::Authenticated && (*method == Method::GET || *method == Method::HEAD)
        }
        _ => false,
    };
    if anonymous_ok {
        return None;
    }
    match who {
        Caller::Missing if matches!(r, Route::ListV2(_)) => Some(err(
            "403",
            "Unauthorized",
            "Invalid Compact JWS",
            "AccessDenied",
        )),
        Caller::Missing => Some(err(
            "400",
            "Error",
            "headers must have required property 'authorization'",
            "InvalidRequest",
        )),
        Caller::Refused(m) => Some(err("403", "Unauthorized", m, "AccessDenied")),
        Caller::Service | Caller::Anon => None,
    }
}

/// A HEAD answer: the same status and headers, no body (§7).
fn without_body(r: Response<Body>) -> Response<Body> {
    let (parts, _) = r.into_parts();
    Response::from_parts(
        parts,
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    )
}

async fn read_json(req: Request<Incoming>) -> Value {
    let b = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

fn mime_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from))
            .collect()
    })
}

/// `POST /bucket` (§2.1).
fn create_bucket(st: &Shared, who: Caller, body: Value) -> Response<Body> {
    if who != Caller::Service {
        return rls_refused();
    }
    let Some(name) = body["name"].as_str() else {
        return err(
            "400",
            "Error",
            "body must have required property 'name'",
            "InvalidRequest",
        );
    };
    let id = body["id"].as_str().unwrap_or(name).to_string();
    if !bucket_name_ok(&id) {
        return err(
            "400",
            "Invalid Input",
            "Bucket name invalid",
            "InvalidBucketName",
        );
    }
    let mut d = st.data.lock().unwrap();
    if d.buckets.contains_key(&id) {
        return err(
            "409",
            "Duplicate",
            "The resource already exists",
            "BucketAlreadyExists",
        );
    }
    let rec = BucketRec {
        id: id.clone(),
        public: body["public"].as_bool().unwrap_or(false),
        file_size_limit: size_limit(&body["file_size_limit"]),
        allowed_mime_types: mime_list(&body["allowed_mime_types"]),
        created_at: now(),
    };
    d.buckets.insert(id.clone(), rec);
    d.objects.entry(id.clone()).or_default();
    json_resp(StatusCode::OK, json!({"name": id}))
}

/// `GET`, `PUT`, `DELETE /bucket/{id}` (§2.3–2.5). A PUT changes only the fields it sends.
fn bucket_op(st: &Shared, who: Caller, m: &Method, id: &str, body: &Value) -> Response<Body> {
    let mut d = st.data.lock().unwrap();
    if who != Caller::Service || !d.buckets.contains_key(id) {
        return no_such_bucket();
    }
    match *m {
        Method::GET => json_resp(StatusCode::OK, d.buckets[id].json(false)),
        Method::PUT => {
            // The route's schema: `file_size_limit` an integer or a string, `allowed_mime_types`
            // an array; anything else (null included) is refused before the update.
            let limit = match body.get("file_size_limit") {
                None => None,
                Some(v) => match size_limit(v) {
                    Some(n) => Some(n),
                    None => {
                        return err(
                            "400",
                            "Error",
                            "body/file_size_limit must be integer",
                            "InvalidRequest",
                        );
                    }
                },
            };
            let mimes = match body.get("allowed_mime_types") {
                None => None,
                Some(v) => match mime_list(v) {
                    Some(m) => Some(m),
                    None => {
                        return err(
                            "400",
                            "Error",
                            "body/allowed_mime_types must be array",
                            "InvalidRequest",
                        );
                    }
                },
            };
            let b = d.buckets.get_mut(id).unwrap();
            if let Some(p) = body["public"].as_bool() {
                b.public = p;
            }
            if let Some(n) = limit {
                b.file_size_limit = Some(n);
            }
            if let Some(m) = mimes {
                b.allowed_mime_types = Some(m);
            }
            json_resp(StatusCode::OK, json!({"message": "Successfully updated"}))
        }
        _ => {
            if d.objects.get(id).is_some_and(|o| !o.is_empty()) {
                err(
                    "409",
                    "ResourceNotEmpty",
                    "The bucket you tried to delete is not empty",
                    "ResourceNotEmpty",
                )
            } else {
                d.buckets.remove(id);
                d.objects.remove(id);
                json_resp(StatusCode::OK, json!({"message": "Successfully deleted"}))
            }
        }
    }
}

/// A list entry (§4, §5): system metadata under `metadata`, never the user's.
fn object_json(name: &str, o: &Obj) -> Value {
    json!({
        "name": name,
        "id": o.id,
        "updated_at": o.updated_at,
        "created_at": o.created_at,
        "last_accessed_at": o.updated_at,
        "metadata": {
            "eTag": o.etag,
            "size": o.content.len(),
            "mimetype": o.content_type,
            "cacheControl": o.cache_control,
            "lastModified": o.updated_at,
            "contentLength": o.content.len(),
            "httpStatusCode": 200,
        },
    })
}

fn folder_json(name: &str) -> Value {
    json!({"name": name, "id": null, "updated_at": null, "created_at": null, "last_accessed_at": null, "metadata": null})
}

fn after_list(st: &Shared) {
    let gone = {
        let mut f = st.faults.lock().unwrap();
        if std::mem::take(&mut f.revoke_key_after_list) {
            f.unauthorized = true;
        }
        std::mem::take(&mut f.delete_after_list)
    };
    let mut d = st.data.lock().unwrap();
    for (b, n) in gone {
        if let Some(o) = d.objects.get_mut(&b) {
            o.remove(&n);
        }
    }
}

/// Whether `who` sees a bucket's listing (RLS: only the service role does; the anon key lists
/// nothing, §4, §10).
fn sees_listing(who: Caller) -> bool {
    who == Caller::Service
}

/// v1 (§4): one folder level under `prefix` (required; `a` = `a/`); folders as entries with
/// every field null; names relative; `search` a name prefix; offset pages (default limit
/// 100); an unknown bucket lists empty.
fn list_v1(st: &Shared, who: Caller, bucket: &str, body: &Value) -> Response<Body> {
    let Some(prefix) = body.get("prefix").and_then(Value::as_str) else {
        return err(
            "400",
            "Error",
            "body must have required property 'prefix'",
            "InvalidRequest",
        );
    };
    let d = st.data.lock().unwrap();
    let Some(objects) = d.objects.get(bucket).filter(|_| sees_listing(who)) else {
        return json_resp(StatusCode::OK, json!([]));
    };
    let prefix = prefix.trim_matches('/').to_string();
    let search = body["search"].as_str().unwrap_or("");
    let limit = body["limit"].as_u64().unwrap_or(100) as usize;
    let offset = body["offset"].as_u64().unwrap_or(0) as usize;
    let lead = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let mut items: BTreeMap<String, Value> = BTreeMap::new();
    for (name, o) in objects.range(lead.clone()..) {
        let Some(rest) = name.strip_prefix(&lead) else {
            break;
        };
        if !rest.starts_with(search) {
            continue;
        }
        match rest.split_once('/') {
            Some((folder, _)) => {
                items
                    .entry(folder.to_string())
                    .or_insert_with(|| folder_json(folder));
            }
            None => {
                items.insert(rest.to_string(), object_json(rest, o));
            }
        }
    }
    let page: Vec<Value> = items.into_values().skip(offset).take(limit).collect();
    json_resp(StatusCode::OK, Value::Array(page))
}

/// A list-v2 cursor (§5.1): base64 of `l:<last name>`, with `\no:asc` on pages after the first.
fn v2_cursor(last: &str, continued: bool) -> String {
    let raw = if continued {
        format!("l:{last}\no:asc")
    } else {
        format!("l:{last}")
    };
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn v2_after(cursor: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let first = text.lines().next()?;
    first.strip_prefix("l:").map(str::to_string)
}

/// v2 (§5): every object whose name starts with `prefix` (a plain string prefix), by name,
/// after the cursor; with `with_delimiter`, one level (`key` = last component, folders end in
/// `/` and count against `limit`). `nextCursor`/`nextCursorKey` only while `hasNext`.
fn list_v2(st: &Shared, who: Caller, bucket: &str, body: &Value) -> Response<Body> {
    let after = match body["cursor"].as_str() {
        None => None,
        Some(c) => match v2_after(c) {
            Some(a) => Some(a),
            None => {
                return err(
                    "400",
                    "InvalidParameter",
                    "Invalid Parameter continuation token",
                    "InvalidParameter",
                );
            }
        },
    };
    let d = st.data.lock().unwrap();
    let Some(objects) = d.objects.get(bucket).filter(|_| sees_listing(who)) else {
        return json_resp(
            StatusCode::OK,
            json!({"hasNext": false, "folders": [], "objects": []}),
        );
    };
    let prefix = body["prefix"].as_str().unwrap_or("");
    let limit = body["limit"].as_u64().unwrap_or(1000).clamp(1, 1000) as usize;
    let delimiter = body["with_delimiter"].as_bool().unwrap_or(false);
    let key_of = |name: &str| {
        name.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    // (name, is_folder, entry), by name.
    let mut entries: BTreeMap<String, (bool, Value)> = BTreeMap::new();
    for (name, o) in objects.iter().filter(|(n, _)| n.starts_with(prefix)) {
        let rest = &name[prefix.len()..];
        match rest.find('/').filter(|_| delimiter) {
            Some(i) => {
                let folder = format!("{prefix}{}/", &rest[..i]);
                let mut v = folder_json(&folder);
                v["key"] = json!(key_of(&folder));
                entries.entry(folder).or_insert((true, v));
            }
            None => {
                let mut v = object_json(name, o);
                if delimiter {
                    v["key"] = json!(key_of(name));
                }
                entries.insert(name.clone(), (false, v));
            }
        }
    }
    let mut rest = entries
        .into_iter()
        .filter(|(n, _)| after.as_deref().is_none_or(|a| n.as_str() > a))
        .peekable();
    let page: Vec<(String, (bool, Value))> = rest.by_ref().take(limit).collect();
    let has_next = rest.peek().is_some();
    let mut out = json!({"hasNext": has_next});
    if has_next && let Some((last, _)) = page.last() {
        out["nextCursor"] = json!(v2_cursor(last, after.is_some()));
        out["nextCursorKey"] = json!(last);
    }
    let (folders, objs): (Vec<_>, Vec<_>) = page.into_iter().map(|(_, e)| e).partition(|(f, _)| *f);
    out["folders"] = Value::Array(folders.into_iter().map(|(_, v)| v).collect());
    out["objects"] = Value::Array(objs.into_iter().map(|(_, v)| v).collect());
    json_resp(StatusCode::OK, out)
}

/// The object `who` may read through `access`, or the answer that says why not (§6, §8):
/// anonymous callers and the public route see public buckets only ("Bucket not found"
/// otherwise); the anon role's reads of a private bucket are hidden by RLS ("Object not found").
fn readable(
    d: &Data,
    who: Caller,
    access: Access,
    bucket: &str,
    name: &str,
) -> Result<Obj, Response<Body>> {
    let Some(b) = d.buckets.get(bucket) else {
        return Err(no_such_bucket());
    };
    let anonymous = access == Access::Public || matches!(who, Caller::Missing | Caller::Refused(_));
    if !b.public && anonymous {
        return Err(no_such_bucket());
    }
    if !b.public && who == Caller::Anon {
        return Err(no_such_key());
    }
    d.objects
        .get(bucket)
        .and_then(|o| o.get(name))
        .cloned()
        .ok_or_else(no_such_key)
}

/// `GET /object/info/…` (§6): `metadata` is the user metadata (`{}` when none).
fn info(st: &Shared, who: Caller, access: Access, bucket: &str, name: &str) -> Response<Body> {
    let d = st.data.lock().unwrap();
    let o = match readable(&d, who, access, bucket, name) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let v = if st.info_row_shape.load(Ordering::SeqCst) {
        // Servers that answer the database row: system metadata in `metadata`, the user's in
        // `user_metadata`.
        let mut v = object_json(name, &o);
        v["bucket_id"] = json!(bucket);
        v["owner"] = json!(null);
        v["user_metadata"] = o.user_metadata.clone().unwrap_or(Value::Null);
        v
    } else {
        json!({
            "id": o.id,
            "name": name,
            "version": o.id,
            "bucket_id": bucket,
            "size": o.content.len(),
            "content_type": o.content_type,
            "cache_control": o.cache_control,
            "etag": o.etag,
            "metadata": o.user_metadata.clone().unwrap_or_else(|| json!({})),
            "last_modified": o.updated_at,
            "created_at": o.created_at,
        })
    };
    let mut r = json_resp(StatusCode::OK, v);
    let h = r.headers_mut();
    h.insert("etag", o.etag.parse().unwrap());
    h.insert("last-modified", http_date(&o.updated_at).parse().unwrap());
    h.insert("cache-control", o.cache_control.parse().unwrap());
    r
}

/// A `Range` header against an object of `len` bytes: `[from, to)`, or `None` when it cannot
/// be satisfied (past the end, or any range of an empty object: 416, §8).
fn byte_range(range: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = range.trim().strip_prefix("bytes=")?.split_once('-')?;
    if len == 0 {
        return None;
    }
    if a.is_empty() {
        let n: u64 = b.parse().ok().filter(|n| *n > 0)?;
        return Some((len - n.min(len), len));
    }
    let from: u64 = a.parse().ok()?;
    let to = if b.is_empty() {
        len
    } else {
        b.parse::<u64>().ok()?.saturating_add(1).min(len)
    };
    (from < len && from < to).then_some((from, to))
}

/// Apply a `replace_at_download` fault for this object, if one is set.
fn replace_if_asked(st: &Shared, bucket: &str, name: &str) {
    let replace = {
        let mut f = st.faults.lock().unwrap();
        match &f.replace_at_download {
            Some((b, n, ..)) if b == bucket && n == name => f.replace_at_download.take(),
            _ => None,
        }
    };
    if let Some((_, _, content, ct)) = replace {
        let mut d = st.data.lock().unwrap();
        if let Some(o) = d.objects.get_mut(bucket).and_then(|o| o.get_mut(name)) {
            o.etag = etag_of(&content);
            o.content = content;
            o.content_type = ct;
            o.updated_at = now();
        }
    }
}

/// `GET /object/…` (§8): 200, 206 with `content-range`, 304 on a matching `If-None-Match`, 416.
fn download(
    st: &Arc<Shared>,
    who: Caller,
    access: Access,
    bucket: &str,
    name: &str,
    range: Option<&str>,
    if_none_match: Option<&str>,
) -> Response<Body> {
    replace_if_asked(st, bucket, name);
    let obj = match readable(&st.data.lock().unwrap(), who, access, bucket, name) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let len = obj.content.len();
    let head = |status: StatusCode, length: u64| {
        Response::builder()
            .status(status)
            .header("accept-ranges", "bytes")
            .header("content-type", &obj.content_type)
            .header("etag", &obj.etag)
            .header("x-robots-tag", "none")
            .header("last-modified", http_date(&obj.updated_at))
            .header("content-length", length)
            .header("cache-control", &obj.cache_control)
    };
    if if_none_match.is_some_and(|e| e.trim() == obj.etag) {
        return head(StatusCode::NOT_MODIFIED, 0)
            .body(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap();
    }
    let (from, to, partial) = match range {
        None => (0, len, false),
        Some(r) => match byte_range(r, len) {
            Some((from, to)) => (from, to, true),
            None => {
                return err(
                    "416",
                    "invalid_range",
                    "invalid range provided",
                    "InvalidRange",
                );
            }
        },
    };
    let (reset, at_end, outage_after) = {
        let mut f = st.faults.lock().unwrap();
        let outage_after = f.outage_mid_body.take().filter(|_| to > from);
        let reset = f.reset_mid_body > 0 || outage_after.is_some();
        if reset && outage_after.is_none() {
            f.reset_mid_body -= 1;
        }
        let at_end = !reset && f.reset_after_last_byte > 0 && to > from;
        if at_end {
            f.reset_after_last_byte -= 1;
        }
        (reset, at_end, outage_after)
    };
    let shared = st.clone();
    st.downloads.fetch_add(1, Ordering::SeqCst);
    st.bytes_served.fetch_add(to - from, Ordering::Relaxed);
    let break_at = if reset {
        from + (to - from) / 2
    } else {
        u64::MAX
    };
    // (`to + 1`: past the last byte, the stream yields one error instead of its end.)
    let to_or_error = if at_end { to + 1 } else { to };
    let content = obj.content.clone();
    let stream = futures_util::stream::unfold(from, move |pos| {
        let content = content.clone();
        let shared = shared.clone();
        async move {
            if pos >= to_or_error {
                return None;
            }
            if pos == to {
                // Let what was sent reach the client before the connection breaks.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if pos >= break_at
                && let Some(d) = outage_after
            {
                shared.faults.lock().unwrap().outage_until = Some(std::time::Instant::now() + d);
            }
            if pos >= break_at || pos == to {
                return Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "fault: reset mid-body",
                    )),
                    to_or_error,
                ));
            }
            let end = (pos + 64 * 1024)
                .min(to)
                .min(if break_at > pos { break_at } else { to });
            Some((Ok(Frame::data(content.slice(pos, end))), end))
        }
    });
    let mut b = head(
        if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        },
        to - from,
    );
    if at_end {
        b.headers_mut().unwrap().remove("content-length");
    }
    if partial {
        b = b.header("content-range", format!("bytes {from}-{}/{len}", to - 1));
    }
    b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

/// `allowed_mime_types` matching (§3.2): exact, parameters included; `type/*` takes any subtype.
fn mime_allowed(allowed: &[String], ct: &str) -> bool {
    allowed.iter().any(|a| {
        a == ct
            || a.strip_suffix("/*")
                .is_some_and(|p| ct.split_once('/').is_some_and(|(t, _)| t == p))
    })
}

/// `POST`/`PUT /object/{bucket}/{name}` (§3): PUT and `x-upsert` replace (keeping the `Id`),
/// and replace the user metadata and cache control with what is sent (none: `{}`, `no-cache`);
/// an `x-metadata` that is not base64 JSON is dropped silently.
async fn upload(
    st: &Shared,
    who: Caller,
    bucket: &str,
    name: &str,
    is_put: bool,
    req: Request<Incoming>,
) -> Response<Body> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ct = header("content-type").unwrap_or_else(|| "text/plain;charset=UTF-8".into());
    let cc = header("cache-control").unwrap_or_else(|| "no-cache".into());
    let upsert = header("x-upsert").as_deref() == Some("true") || is_put;
    let meta = header("x-metadata")
        .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    {
        let d = st.data.lock().unwrap();
        let Some(b) = d.buckets.get(bucket) else {
            return no_such_bucket();
        };
        if who != Caller::Service {
            return rls_refused();
        }
        if st.strict_names.load(Ordering::SeqCst) && !safe_name(name) {
            return err(
                "400",
                "InvalidKey",
                &format!("Invalid key: {name}"),
                "InvalidKey",
            );
        }
        if let Some(a) = &b.allowed_mime_types
            && !a.is_empty()
            && !mime_allowed(a, &ct)
        {
            return err(
                "415",
                "invalid_mime_type",
                &format!("mime type {ct} is not supported"),
                "InvalidMimeType",
            );
        }
        if !upsert && d.objects[bucket].contains_key(name) {
            return err(
                "409",
                "Duplicate",
                "The resource already exists",
                "KeyAlreadyExists",
            );
        }
    }
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return err("400", "Error", &format!("body: {e}"), "InvalidRequest"),
    };
    let mut d = st.data.lock().unwrap();
    if let Some(limit) = d.buckets[bucket].file_size_limit
        && body.len() as u64 > limit
    {
        return err(
            "413",
            "Payload too large",
            "The object exceeded the maximum allowed size",
            "EntityTooLarge",
        );
    }
    st.uploads.fetch_add(1, Ordering::SeqCst);
    d.seq += 1;
    let t = now();
    let old = d.objects[bucket]
        .get(name)
        .map(|o| (o.id.clone(), o.created_at.clone()));
    let (id, created) =
        old.unwrap_or_else(|| (format!("00000000-0000-4000-8000-{:012}", d.seq), t.clone()));
    let content = Content::Bytes(body);
    let obj = Obj {
        id: id.clone(),
        etag: etag_of(&content),
        content,
        content_type: ct,
        cache_control: cc,
        user_metadata: meta,
        created_at: created,
        updated_at: t,
    };
    d.objects
        .get_mut(bucket)
        .unwrap()
        .insert(name.to_string(), obj);
    json_resp(
        StatusCode::OK,
        json!({"Key": format!("{bucket}/{name}"), "Id": id}),
    )
}
