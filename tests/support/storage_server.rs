//! A faithful Supabase Storage API server inside the test process (hyper on a tokio runtime of
//! its own thread, 127.0.0.1:0). Routes, JSON shapes and error bodies follow the real server
//! (../shared/supabase-facts.md): failures are mostly HTTP 400 with the real status in the body's
//! `statusCode`. Served both at `/storage/v1/…` (a project URL) and at `/` (a storage server of
//! its own). Object content is either held bytes or generated on the fly from a seed (never held
//! in memory), so multi-GB buckets cost nothing. Faults are switchable: 5xx bursts, slow answers,
//! connections reset mid-body, 401s, objects deleted right after a listing.

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
    fn json(&self) -> Value {
        json!({
            "id": self.id, "name": self.id, "owner": "", "public": self.public, "type": "STANDARD",
            "file_size_limit": self.file_size_limit, "allowed_mime_types": self.allowed_mime_types,
            "created_at": self.created_at, "updated_at": self.created_at,
        })
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
    /// Every request answers HTTP 401.
    pub unauthorized: bool,
    /// Deleted right after the next listing answer is made (so they are listed but gone).
    pub delete_after_list: Vec<(String, String)>,
    /// At the next object download, the server goes away for this long (a restart): every
    /// connection is closed without an answer, new ones and open ones alike.
    pub outage_at_next_download: Option<Duration>,
    /// Until when the current outage lasts.
    pub outage_until: Option<std::time::Instant>,
    /// (bucket, name, new content, new content type): re-uploaded just before its next download
    /// is answered, as if a client replaced it between the listing and the download.
    pub replace_at_download: Option<(String, String, Content, String)>,
}

pub struct Shared {
    pub key: String,
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

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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

impl StorageServer {
    pub fn start(key: &str) -> StorageServer {
        let state = Arc::new(Shared {
            key: key.to_string(),
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

fn json_resp(status: StatusCode, v: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(
            Full::new(Bytes::from(v.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

/// The server's error shape: HTTP 400 with the real status in the body (as Supabase answers).
fn err(code: u16, error: &str, message: &str) -> Response<Body> {
    json_resp(
        StatusCode::BAD_REQUEST,
        json!({"statusCode": code.to_string(), "error": error, "message": message}),
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

async fn handle(st: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    let (slow, fail, reset) = {
        let mut f = st.faults.lock().unwrap();
        if f.outage_until
            .is_some_and(|t| std::time::Instant::now() < t)
        {
            return Err(outage());
        }
        let is_download = req.method() == Method::GET
            && req.uri().path().contains("/object/")
            && !req.uri().path().contains("/object/info/");
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
        (slow, fail, f.unauthorized)
    };
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    if reset {
        return Ok(json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"statusCode": "401", "error": "Unauthorized", "message": "jwt expired"}),
        ));
    }
    if let Some(n) = fail {
        let status = [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::TOO_MANY_REQUESTS,
        ][n as usize % 3];
        return Ok(json_resp(
            status,
            json!({"statusCode": status.as_u16().to_string(), "error": "Unavailable", "message": "try again"}),
        ));
    }
    // Behind the gateway (`/storage/v1/…`) `apikey` must be a valid key; the storage server
    // itself checks the bearer JWT.
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if req.uri().path().starts_with("/storage/v1/")
        && header("apikey").as_deref() != Some(st.key.as_str())
    {
        return Ok(json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Invalid API key"}),
        ));
    }
    match header("authorization") {
        None => {
            return Ok(err(
                400,
                "Error",
                "headers must have required property 'authorization'",
            ));
        }
        Some(a) if a != format!("Bearer {}", st.key) => {
            return Ok(err(403, "Unauthorized", "invalid signature"));
        }
        _ => {}
    }
    let raw_path = req.uri().path().to_string();
    let path = raw_path
        .strip_prefix("/storage/v1")
        .unwrap_or(&raw_path)
        .to_string();
    let method = req.method().clone();
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let resp = match (method.clone(), segs.as_slice()) {
        (Method::GET, ["bucket"]) => {
            let d = st.data.lock().unwrap();
            json_resp(
                StatusCode::OK,
                Value::Array(d.buckets.values().map(BucketRec::json).collect()),
            )
        }
        (Method::POST, ["bucket"]) => {
            let body = read_json(req).await;
            let id = body["id"]
                .as_str()
                .or(body["name"].as_str())
                .unwrap_or_default()
                .to_string();
            let mut d = st.data.lock().unwrap();
            if id.is_empty() {
                err(
                    400,
                    "InvalidRequest",
                    "body must have required property 'name'",
                )
            } else if d.buckets.contains_key(&id) {
                err(409, "Duplicate", "The resource already exists")
            } else {
                let rec = BucketRec {
                    id: id.clone(),
                    public: body["public"].as_bool().unwrap_or(false),
                    file_size_limit: body["file_size_limit"].as_u64(),
                    allowed_mime_types: body["allowed_mime_types"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    }),
                    created_at: now(),
                };
                d.buckets.insert(id.clone(), rec);
                d.objects.entry(id.clone()).or_default();
                json_resp(StatusCode::OK, json!({"name": id}))
            }
        }
        (m, ["bucket", id]) => {
            let id = pct_decode(id);
            let body = if m == Method::PUT {
                read_json(req).await
            } else {
                Value::Null
            };
            let mut d = st.data.lock().unwrap();
            match m {
                _ if !d.buckets.contains_key(&id) => {
                    err(404, "Bucket not found", "Bucket not found")
                }
                Method::GET => json_resp(StatusCode::OK, d.buckets[&id].json()),
                Method::PUT => {
                    let b = d.buckets.get_mut(&id).unwrap();
                    if let Some(p) = body["public"].as_bool() {
                        b.public = p;
                    }
                    b.file_size_limit = body["file_size_limit"].as_u64();
                    b.allowed_mime_types = body["allowed_mime_types"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    });
                    json_resp(StatusCode::OK, json!({"message": "Successfully updated"}))
                }
                Method::DELETE => {
                    if d.objects.get(&id).is_some_and(|o| !o.is_empty()) {
                        err(
                            409,
                            "InvalidRequest",
                            "The bucket you tried to delete is not empty",
                        )
                    } else {
                        d.buckets.remove(&id);
                        d.objects.remove(&id);
                        json_resp(StatusCode::OK, json!({"message": "Successfully deleted"}))
                    }
                }
                _ => err(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        (Method::POST, ["object", "list", bucket]) => {
            st.list_v1_calls.fetch_add(1, Ordering::SeqCst);
            let bucket = pct_decode(bucket);
            let body = read_json(req).await;
            let r = list_v1(&st, &bucket, &body);
            after_list(&st);
            r
        }
        (Method::POST, ["object", "list-v2", bucket]) => {
            st.list_v2_calls.fetch_add(1, Ordering::SeqCst);
            if !st.v2.load(Ordering::SeqCst) {
                return Ok(err(
                    400,
                    "FeatureNotEnabled",
                    "feature not enabled for this tenant",
                ));
            }
            let bucket = pct_decode(bucket);
            let body = read_json(req).await;
            let r = list_v2(&st, &bucket, &body);
            after_list(&st);
            r
        }
        (Method::GET, ["object", "info", rest]) => {
            let (bucket, name) = split_object(rest);
            let d = st.data.lock().unwrap();
            match d.objects.get(&bucket).and_then(|o| o.get(&name)) {
                None => err(404, "not_found", "Object not found"),
                Some(o) if st.info_row_shape.load(Ordering::SeqCst) => json_resp(StatusCode::OK, {
                    // Servers that answer the database row: system metadata in `metadata`,
                    // the user's in `user_metadata`.
                    let mut v = object_json(&name, o);
                    v["bucket_id"] = json!(bucket);
                    v["owner"] = json!(null);
                    v["user_metadata"] = o.user_metadata.clone().unwrap_or(Value::Null);
                    v
                }),
                // storage v1.70, as recorded (storage-api-transcript.md §3.1): the user
                // metadata is `metadata`, `{}` when none; no `user_metadata` key.
                Some(o) => json_resp(
                    StatusCode::OK,
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
                    }),
                ),
            }
        }
        (Method::GET, ["object", first, rest]) => {
            let rest = if *first == "authenticated" || *first == "public" {
                rest.to_string()
            } else {
                format!("{first}/{rest}")
            };
            let (bucket, name) = split_object(&rest);
            let range = header("range");
            download(&st, &bucket, &name, range.as_deref())
        }
        (Method::POST | Method::PUT, ["object", first, rest]) => {
            let (bucket, name) = split_object(&format!("{first}/{rest}"));
            upload(&st, &bucket, &name, method == Method::PUT, req).await
        }
        _ => err(
            404,
            "not_found",
            &format!("Route {} {} not found", method, raw_path),
        ),
    };
    Ok(resp)
}

fn split_object(rest: &str) -> (String, String) {
    let (b, n) = rest.split_once('/').unwrap_or((rest, ""));
    (pct_decode(b), pct_decode(n))
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

fn after_list(st: &Shared) {
    let gone = std::mem::take(&mut st.faults.lock().unwrap().delete_after_list);
    let mut d = st.data.lock().unwrap();
    for (b, n) in gone {
        if let Some(o) = d.objects.get_mut(&b) {
            o.remove(&n);
        }
    }
}

/// v1: one folder level under `prefix`; folders as `{name, id: null, metadata: null}`; offset pages.
fn list_v1(st: &Shared, bucket: &str, body: &Value) -> Response<Body> {
    let d = st.data.lock().unwrap();
    let Some(objects) = d.objects.get(bucket) else {
        return err(404, "Bucket not found", "Bucket not found");
    };
    let prefix = body["prefix"]
        .as_str()
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
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
        match rest.split_once('/') {
            Some((folder, _)) => {
                items.entry(folder.to_string()).or_insert_with(|| {
                    json!({"name": folder, "id": null, "updated_at": null, "created_at": null, "last_accessed_at": null, "metadata": null})
                });
            }
            None => {
                items.insert(rest.to_string(), object_json(rest, o));
            }
        }
    }
    let page: Vec<Value> = items.into_values().skip(offset).take(limit).collect();
    json_resp(StatusCode::OK, Value::Array(page))
}

/// v2 without delimiter: every object under `prefix`, flat, by name, after the cursor.
fn list_v2(st: &Shared, bucket: &str, body: &Value) -> Response<Body> {
    let d = st.data.lock().unwrap();
    let Some(objects) = d.objects.get(bucket) else {
        return err(404, "Bucket not found", "Bucket not found");
    };
    let prefix = body["prefix"].as_str().unwrap_or("");
    let limit = body["limit"].as_u64().unwrap_or(1000).clamp(1, 1000) as usize;
    let after = body["cursor"]
        .as_str()
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut page = Vec::new();
    let mut more = false;
    for (name, o) in objects.range(after.clone().unwrap_or_default()..) {
        if after.as_deref() == Some(name.as_str()) || !name.starts_with(prefix) {
            continue;
        }
        if page.len() == limit {
            more = true;
            break;
        }
        page.push((name.clone(), object_json(name, o)));
    }
    let next = if more {
        page.last()
            .map(|(n, _)| base64::engine::general_purpose::STANDARD.encode(n))
    } else {
        None
    };
    json_resp(
        StatusCode::OK,
        json!({"hasNext": more, "nextCursor": next, "folders": [], "objects": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>()}),
    )
}

fn download(st: &Shared, bucket: &str, name: &str, range: Option<&str>) -> Response<Body> {
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
    let (obj, reset) = {
        let d = st.data.lock().unwrap();
        let Some(o) = d.objects.get(bucket).and_then(|o| o.get(name)).cloned() else {
            return err(404, "not_found", "Object not found");
        };
        let mut f = st.faults.lock().unwrap();
        let reset = f.reset_mid_body > 0;
        if reset {
            f.reset_mid_body -= 1;
        }
        (o, reset)
    };
    st.downloads.fetch_add(1, Ordering::SeqCst);
    let len = obj.content.len();
    let (from, to, partial) = match range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
    {
        Some((a, b)) => {
            let from: u64 = a.parse().unwrap_or(0);
            let to: u64 = b.parse::<u64>().map(|b| b + 1).unwrap_or(len).min(len);
            (from.min(len), to, true)
        }
        None => (0, len, false),
    };
    let break_at = if reset {
        from + (to - from) / 2
    } else {
        u64::MAX
    };
    let content = obj.content.clone();
    let served = Arc::new(AtomicU64::new(0));
    let stream = futures_util::stream::unfold(from, move |pos| {
        let content = content.clone();
        let served = served.clone();
        async move {
            if pos >= to {
                return None;
            }
            if pos >= break_at {
                return Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "fault: reset mid-body",
                    )),
                    to,
                ));
            }
            let end = (pos + 64 * 1024)
                .min(to)
                .min(if break_at > pos { break_at } else { to });
            let chunk = content.slice(pos, end);
            served.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Some((Ok(Frame::data(chunk)), end))
        }
    });
    st.bytes_served.fetch_add(to - from, Ordering::Relaxed);
    let mut b = Response::builder()
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header("content-type", &obj.content_type)
        .header("cache-control", &obj.cache_control)
        .header("etag", &obj.etag)
        .header("last-modified", &obj.updated_at)
        .header("content-length", to - from);
    if partial {
        b = b.header(
            "content-range",
            format!("bytes {from}-{}/{len}", to.saturating_sub(1)),
        );
    }
    b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

fn mime_allowed(allowed: &[String], ct: &str) -> bool {
    let ct = ct.split(';').next().unwrap_or("").trim();
    allowed.iter().any(|a| {
        a == ct
            || a.strip_suffix("/*")
                .is_some_and(|p| ct.split('/').next() == Some(p))
    })
}

async fn upload(
    st: &Shared,
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
    let meta = match header("x-metadata") {
        Some(m) => match base64::engine::general_purpose::STANDARD
            .decode(m)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(v) => Some(v),
            None => {
                return err(
                    400,
                    "InvalidRequest",
                    "x-metadata must be base64-encoded JSON",
                );
            }
        },
        None => None,
    };
    {
        let d = st.data.lock().unwrap();
        let Some(b) = d.buckets.get(bucket) else {
            return err(404, "Bucket not found", "Bucket not found");
        };
        if st.strict_names.load(Ordering::SeqCst) && !safe_name(name) {
            return err(400, "InvalidKey", &format!("Invalid key: {name}"));
        }
        if let Some(a) = &b.allowed_mime_types
            && !a.is_empty()
            && !mime_allowed(a, &ct)
        {
            return err(
                415,
                "invalid_mime_type",
                &format!("mime type {ct} is not supported"),
            );
        }
        if !upsert && d.objects[bucket].contains_key(name) {
            return err(409, "Duplicate", "The resource already exists");
        }
    }
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => return err(400, "InvalidRequest", &format!("body: {e}")),
    };
    let mut d = st.data.lock().unwrap();
    if let Some(limit) = d.buckets[bucket].file_size_limit
        && body.len() as u64 > limit
    {
        return err(
            413,
            "Payload too large",
            "The object exceeded the maximum allowed size",
        );
    }
    st.uploads.fetch_add(1, Ordering::SeqCst);
    d.seq += 1;
    let t = now();
    let id = format!("00000000-0000-4000-8000-{:012}", d.seq);
    let content = Content::Bytes(body);
    let created = d.objects[bucket]
        .get(name)
        .map(|o| o.created_at.clone())
        .unwrap_or_else(|| t.clone());
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
