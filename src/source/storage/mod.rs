//! Supabase Storage as a backup source: every bucket's configuration and every object, with its
//! metadata, under `storage/<bucket>/<object name>` (layout: repo-format.md §7.4).
//!
//! Listing first (list-v2 with cursors, or v1 folder by folder), then downloads: up to
//! `concurrency` transfers run ahead on a tokio runtime, each into a small bounded channel, while
//! the (synchronous) sink stores the objects one after another in listing order. Memory is bounded
//! by `concurrency × channel depth × body chunk`, whatever the object sizes. A transfer that
//! breaks mid-body resumes with a `Range` request.

pub mod api;
pub mod client;
pub mod layout;
pub mod list;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use self::api::{ApiError, Bucket, Failure, ObjectInfo};
use self::client::{Client, RetryPolicy};
use crate::error::{Error, Result};
use crate::snapshot::{Entry, SourceKind};
use crate::source::{EntrySink, Source};

/// Where the Storage API is and how to use it.
#[derive(Clone)]
pub struct StorageOptions {
    /// The Storage API base: `https://<ref>.supabase.co/storage/v1`, or a storage server's root.
    pub api_base: String,
    /// The project's service_role key (sent as `Authorization: Bearer` and `apikey`).
    pub service_key: Zeroizing<String>,
    /// Buckets to back up (empty = all).
    pub buckets: Vec<String>,
    /// Transfers running at once.
    pub concurrency: usize,
    /// Longest wait for a connection or for the next bytes of an answer.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            api_base: String::new(),
            service_key: Zeroizing::new(String::new()),
            buckets: Vec::new(),
            concurrency: 4,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("api_base", &self.api_base)
            .field("service_key", &"***")
            .field("buckets", &self.buckets)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl StorageOptions {
    pub fn client(&self) -> Result<Client> {
        Client::new(
            &self.api_base,
            &self.service_key,
            self.timeout,
            self.retry.clone(),
        )
    }
}

/// The Storage API base from a project URL (`SUPABASE_URL`; `/storage/v1` is appended) or from a
/// Storage API base given as is (self-hosted, or a storage server run on its own).
pub fn resolve_api_base(project_url: Option<&str>, storage_url: Option<&str>) -> Result<String> {
    let (raw, append) = match (project_url, storage_url) {
        (Some(u), None) => (u, true),
        (None, Some(u)) => (u, false),
        (Some(_), Some(_)) => {
            return Err(Error::Invalid(
                "give either --url or --storage-url, not both".into(),
            ));
        }
        (None, None) => {
            return Err(Error::Invalid(
                "no Storage API given: pass --url https://<ref>.supabase.co or --storage-url"
                    .into(),
            ));
        }
    };
    let parsed = url::Url::parse(raw).map_err(|e| {
        Error::Invalid(format!(
            "{}: not a URL ({e})",
            crate::redact::url_passwords(raw)
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(Error::Invalid(format!(
            "{}: expected an http(s) URL",
            crate::redact::url_passwords(raw)
        )));
    }
    if parsed.password().is_some() || !parsed.username().is_empty() {
        return Err(Error::Invalid("the Storage URL must not hold credentials; give the service key with --service-key-file or SUPABASE_SERVICE_ROLE_KEY".into()));
    }
    let base = raw.trim_end_matches('/');
    Ok(if append && !base.ends_with("/storage/v1") {
        format!("{base}/storage/v1")
    } else {
        base.to_string()
    })
}

/// Turn a failed API call into the library error, with what the user can do.
pub fn api_error(what: &str, e: ApiError) -> Error {
    match e.failure {
        Failure::Auth => Error::StorageApi(format!(
            "{what}: the Storage API refused the key ({e}). Give the project's service_role key \
             (--service-key-file or SUPABASE_SERVICE_ROLE_KEY), not the anon key, and check the URL's project"
        )),
        Failure::Transient => Error::StorageApi(format!(
            "{what}: {e}; still failing after retrying for the whole --retry-for time. Check that the Storage API is reachable and run again (or raise --retry-for)"
        )),
        _ => Error::StorageApi(format!("{what}: {e}")),
    }
}

/// A bucket's figures in the backup summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BucketSummary {
    pub bucket: String,
    pub objects: u64,
    pub bytes: u64,
}

/// What a storage backup did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSummary {
    pub api_base: String,
    /// v2 (cursor) or v1 (folder by folder).
    pub listing: String,
    pub buckets: Vec<BucketSummary>,
    /// Objects in the snapshot.
    pub objects: u64,
    /// Objects downloaded (new or changed).
    pub downloaded: u64,
    pub bytes_downloaded: u64,
    /// Objects unchanged since the parent snapshot (same eTag, size, updated_at): not downloaded.
    pub reused: u64,
    /// Objects listed but gone (404) or changed when downloaded: not in the snapshot.
    pub vanished: u64,
    /// Objects the server refused to serve (not in the snapshot).
    pub failed: u64,
    pub failed_objects: Vec<String>,
    /// Transient failures (timeouts, resets, 429, 5xx) retried.
    pub retries: u64,
}

/// Supabase Storage (some or all buckets) as a [`Source`].
pub struct StorageSource {
    opts: StorageOptions,
    summary: StorageSummary,
}

impl StorageSource {
    pub fn new(opts: StorageOptions) -> Result<StorageSource> {
        if opts.api_base.is_empty() {
            return Err(Error::Invalid("no Storage API base given".into()));
        }
        if opts.concurrency == 0 {
            return Err(Error::Invalid("concurrency must be at least 1".into()));
        }
        let summary = StorageSummary {
            api_base: opts.api_base.clone(),
            ..Default::default()
        };
        Ok(StorageSource { opts, summary })
    }

    pub fn storage_summary(&self) -> &StorageSummary {
        &self.summary
    }
}

/// What the download's own answer said of the object (its headers): recorded rather than the
/// listing's, so the attributes stored are those of the bytes stored.
#[derive(Debug, Default)]
struct Served {
    content_type: Option<String>,
    cache_control: Option<String>,
    etag: Option<String>,
    size: Option<u64>,
}

impl Served {
    fn of(resp: &reqwest::Response) -> Served {
        let h = |n: reqwest::header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let full = resp.status() == reqwest::StatusCode::OK;
        Served {
            content_type: h(reqwest::header::CONTENT_TYPE),
            cache_control: h(reqwest::header::CACHE_CONTROL),
            etag: h(reqwest::header::ETAG),
            size: if full { resp.content_length() } else { None },
        }
    }

    /// `info` with the served attributes in place of the listing's.
    fn apply(&self, info: &ObjectInfo) -> ObjectInfo {
        let mut out = info.clone();
        if let Value::Object(m) = &mut out.metadata {
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            set("mimetype", self.content_type.clone().map(Value::from));
            set("cacheControl", self.cache_control.clone().map(Value::from));
            set("eTag", self.etag.clone().map(Value::from));
            set("size", self.size.map(Value::from));
        }
        out
    }
}

/// Whether the object is still the version whose eTag is `etag` and `len` bytes long (asked
/// when a resumed download's range is refused and its answers gave no length).
async fn ended_at(client: &Client, bucket: &str, name: &str, etag: Option<&str>, len: u64) -> bool {
    match client.object_info(bucket, name).await {
        Ok(info) => {
            etag.is_some() && same_etag(info.etag.as_deref(), etag) && info.size == Some(len)
        }
        Err(_) => false,
    }
}

/// The whole object's length from a download answer: `Content-Length` of a 200, the total of
/// a 206's `Content-Range: bytes a-b/total`.
fn object_length(resp: &reqwest::Response) -> Option<u64> {
    if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT {
        let range = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)?
            .to_str()
            .ok()?;
        range.rsplit_once('/')?.1.trim().parse().ok()
    } else {
        resp.content_length()
    }
}

/// Whether two eTags name the same version (a missing one cannot say otherwise; `W/` and the
/// quotes are spelling).
fn same_etag(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |e: &str| {
        e.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    match (a, b) {
        (Some(a), Some(b)) => norm(a) == norm(b),
        _ => true,
    }
}

/// Messages from a download task to the sink, in order: `Start`, `Data`…, `End` — or one of the
/// others instead.
enum Msg {
    Start {
        user_metadata: Option<Value>,
        served: Served,
    },
    Data(Bytes),
    End,
    /// 404 before the first byte: deleted since the listing.
    Vanished,
    /// The object changed while being downloaded (a resumed transfer saw another version).
    Changed(String),
    Failed(ApiError),
}

/// Channel depth per transfer (messages are body chunks of a few KiB to a few hundred KiB).
const DEPTH: usize = 8;

impl Source for StorageSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Storage
    }

    fn paths(&self) -> Vec<String> {
        if self.opts.buckets.is_empty() {
            return vec![layout::ROOT.to_string()];
        }
        let mut p: Vec<String> = self
            .opts
            .buckets
            .iter()
            .map(|b| layout::bucket_path(b))
            .collect();
        p.sort();
        p.dedup();
        p
    }

    fn description(&self) -> String {
        format!(
            "Supabase Storage at {}",
            crate::redact::url_passwords(&self.opts.api_base)
        )
    }

    fn run(&mut self, sink: &mut dyn EntrySink) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let client = Arc::new(self.opts.client()?);
        let all = rt
            .block_on(client.list_buckets())
            .map_err(|e| api_error("listing buckets", e))?;
        let buckets = select_buckets(all, &self.opts.buckets)?;
        let mut v2 = true;
        for bucket in buckets {
            sink.dir(
                &layout::bucket_path(&bucket.id),
                layout::bucket_mtime_ns(&bucket),
                layout::bucket_attrs(&bucket),
            )?;
            let objects = rt.block_on(list_all(&client, &bucket.id, &mut v2))?;
            self.summary.listing = if v2 { "v2".into() } else { "v1".into() };
            let (planned, skipped) = layout::plan_paths(&bucket.id, objects);
            for w in skipped {
                sink.warn(w);
                self.summary.failed += 1;
            }
            let mut bs = BucketSummary {
                bucket: bucket.id.clone(),
                ..Default::default()
            };
            let mut fetch = Vec::new();
            for (info, path) in planned {
                if let Some(attrs) = unchanged(sink.parent_entry(&path), &info)
                    && let Some(size) = sink.reuse(&path, layout::mtime_ns(&info), attrs)?
                {
                    self.summary.reused += 1;
                    bs.objects += 1;
                    bs.bytes += size;
                    continue;
                }
                fetch.push((info, path));
            }
            sink.expect(fetch.iter().filter_map(|(i, _)| i.size()).sum(), false);
            self.download_all(&rt, &client, &bucket.id, fetch, sink, &mut bs)?;
            self.summary.objects += bs.objects;
            self.summary.buckets.push(bs);
        }
        self.summary.retries = client.retries();
        rt.shutdown_background();
        Ok(())
    }

    fn summary(&self) -> crate::source::SourceSummary {
        crate::source::SourceSummary::Storage(self.summary.clone())
    }
}

fn select_buckets(all: Vec<Bucket>, wanted: &[String]) -> Result<Vec<Bucket>> {
    if all.is_empty() {
        return Err(Error::StorageApi(
            "the Storage API lists no buckets. If the project has buckets, the key is probably the anon key \
             (it sees no private buckets): give the service_role key. Nothing was backed up"
                .into(),
        ));
    }
    if wanted.is_empty() {
        let mut all = all;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(all);
    }
    let mut by_id: HashMap<String, Bucket> = all.into_iter().map(|b| (b.id.clone(), b)).collect();
    let mut out = Vec::new();
    for w in wanted {
        match by_id.remove(w) {
            Some(b) => out.push(b),
            None if out.iter().any(|b: &Bucket| &b.id == w) => {}
            None => {
                let mut names: Vec<&String> = by_id.keys().collect();
                names.sort();
                return Err(Error::Invalid(format!(
                    "bucket {w:?} does not exist (or the key cannot see it); buckets: {names:?}"
                )));
            }
        }
    }
    Ok(out)
}

/// The attributes to record when `info` is unchanged since the parent's entry (same eTag, size
/// and updated_at), taking the user metadata from the parent when the listing lacks it.
fn unchanged(parent: Option<&Entry>, info: &ObjectInfo) -> Option<BTreeMap<String, Value>> {
    let p = parent?;
    let same = |k: &str, v: Option<Value>| v.is_some() && p.attrs.get(k) == v.as_ref();
    let ok = same("etag", info.etag().map(Value::from))
        && same("size", info.size().map(Value::from))
        && same("updated_at", info.updated_at.clone().map(Value::from))
        && p.size == info.size().unwrap_or(u64::MAX);
    if !ok {
        return None;
    }
    let user = info
        .user_metadata
        .clone()
        .or_else(|| p.attrs.get("user_metadata").cloned());
    Some(layout::object_attrs(info, user.as_ref()))
}

/// Every object of a bucket: list-v2 while the server has it, else v1 (`v2` remembers which).
async fn list_all(client: &Client, bucket: &str, v2: &mut bool) -> Result<Vec<ObjectInfo>> {
    let what = || format!("listing bucket {bucket:?}");
    let mut out = Vec::new();
    if *v2 {
        let mut pager = list::V2Pager::default();
        while let Some(body) = pager.next_request() {
            match client.list_v2(bucket, &body).await {
                Ok(page) => out.extend(pager.feed(page)),
                Err(e) if out.is_empty() && matches!(e.failure, Failure::FeatureNotEnabled) => {
                    *v2 = false;
                    break;
                }
                Err(e)
                    if out.is_empty()
                        && e.failure == Failure::NotFound
                        && e.message.contains("list-v2") =>
                {
                    *v2 = false;
                    break;
                }
                Err(e) => return Err(api_error(&what(), e)),
            }
        }
        if *v2 {
            return Ok(out);
        }
    }
    let mut walker = list::V1Walker::default();
    while let Some(body) = walker.next_request() {
        let items = client
            .list_v1(bucket, &body)
            .await
            .map_err(|e| api_error(&what(), e))?;
        out.extend(walker.feed(items));
    }
    Ok(out)
}

impl StorageSource {
    fn download_all(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &Arc<Client>,
        bucket: &str,
        fetch: Vec<(ObjectInfo, String)>,
        sink: &mut dyn EntrySink,
        bs: &mut BucketSummary,
    ) -> Result<()> {
        let spawn = |(info, path): (ObjectInfo, String)| {
            let (tx, rx) = mpsc::channel(DEPTH);
            let want_info = info.user_metadata.is_none();
            rt.spawn(download(
                client.clone(),
                bucket.to_string(),
                info.name.clone(),
                want_info,
                tx,
            ));
            (info, path, rx)
        };
        let mut todo = fetch.into_iter();
        let mut running: VecDeque<_> = todo
            .by_ref()
            .take(self.opts.concurrency)
            .map(&spawn)
            .collect();
        while let Some((info, path, mut rx)) = running.pop_front() {
            if let Some(next) = todo.next() {
                running.push_back(spawn(next));
            }
            let (user_metadata, info) = match rx.blocking_recv() {
                Some(Msg::Start {
                    user_metadata,
                    served,
                }) => (
                    user_metadata.or(info.user_metadata.clone()),
                    served.apply(&info),
                ),
                Some(Msg::Vanished) => {
                    sink.warn(format!("storage object {bucket}/{} was deleted during the backup (not in the snapshot)", info.name));
                    self.summary.vanished += 1;
                    continue;
                }
                Some(Msg::Failed(e)) => {
                    self.object_failed(bucket, &info.name, e, sink)?;
                    continue;
                }
                Some(Msg::Changed(why)) => {
                    sink.warn(format!("storage object {bucket}/{} changed during the backup ({why}); not in the snapshot", info.name));
                    self.summary.vanished += 1;
                    continue;
                }
                Some(Msg::Data(_) | Msg::End) | None => {
                    return Err(Error::StorageApi(format!(
                        "download of {bucket}/{} ended unexpectedly",
                        info.name
                    )));
                }
            };
            let attrs = layout::object_attrs(&info, user_metadata.as_ref());
            let mut reader = ChannelReader {
                rx,
                buf: Bytes::new(),
                outcome: None,
            };
            match sink.file_at(&path, 0o644, layout::mtime_ns(&info), &mut reader, attrs) {
                Ok(n) => {
                    self.summary.downloaded += 1;
                    self.summary.bytes_downloaded += n;
                    bs.objects += 1;
                    bs.bytes += n;
                }
                Err(e) => match reader.outcome.take() {
                    Some(Msg::Vanished) => {
                        sink.warn(format!("storage object {bucket}/{} was deleted during its download (not in the snapshot)", info.name));
                        self.summary.vanished += 1;
                    }
                    Some(Msg::Changed(why)) => {
                        sink.warn(format!("storage object {bucket}/{} changed during its download ({why}); not in the snapshot", info.name));
                        self.summary.vanished += 1;
                    }
                    Some(Msg::Failed(api)) => self.object_failed(bucket, &info.name, api, sink)?,
                    _ => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// A download failed for good: a refused key or an unreachable server ends the backup (no
    /// snapshot); anything else is this object's problem (warned, counted, left out).
    fn object_failed(
        &mut self,
        bucket: &str,
        name: &str,
        e: ApiError,
        sink: &mut dyn EntrySink,
    ) -> Result<()> {
        let what = format!("downloading {bucket}/{name}");
        if matches!(e.failure, Failure::Auth | Failure::Transient) {
            return Err(api_error(&what, e));
        }
        sink.warn(format!("{what}: {e} (not in the snapshot)"));
        self.summary.failed += 1;
        self.summary.failed_objects.push(format!("{bucket}/{name}"));
        Ok(())
    }
}

/// Reads a transfer's body from its channel; remembers why it stopped early.
struct ChannelReader {
    rx: mpsc::Receiver<Msg>,
    buf: Bytes,
    outcome: Option<Msg>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Msg::Data(b)) => self.buf = b,
                Some(Msg::End) => return Ok(0),
                Some(m @ (Msg::Vanished | Msg::Changed(_) | Msg::Failed(_))) => {
                    self.outcome = Some(m);
                    return Err(std::io::Error::other("download failed"));
                }
                Some(Msg::Start { .. }) | None => {
                    self.outcome = Some(Msg::Failed(ApiError::local(
                        Failure::Permanent,
                        "download ended unexpectedly",
                    )));
                    return Err(std::io::Error::other("download ended unexpectedly"));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// One object's transfer: the body, resumed with `Range` after a broken connection, retried
/// with backoff on transient failures; after its first answer, `GET /object/info` for the user
/// metadata when the listing lacked it.
async fn download(
    client: Arc<Client>,
    bucket: String,
    name: String,
    want_info: bool,
    tx: mpsc::Sender<Msg>,
) {
    Transfer {
        client,
        bucket,
        name,
        want_info,
        tx,
        offset: 0,
        started: false,
        first_etag: None,
        total: None,
        retry: 0,
        last_error: None,
        failing_since: None,
    }
    .run()
    .await
}

/// How a transfer goes on after asking for the object.
enum Next {
    /// The server answered: read the body.
    Body(reqwest::Response),
    /// A transient failure: ask again after a backoff.
    Retry,
    /// Finished (the outcome is sent).
    Stop,
}

/// The state of one object's transfer ([`download`]).
struct Transfer {
    client: Arc<Client>,
    bucket: String,
    name: String,
    want_info: bool,
    tx: mpsc::Sender<Msg>,
    /// Bytes sent so far.
    offset: u64,
    started: bool,
    first_etag: Option<String>,
    /// The object's length, as its first answer gave it.
    total: Option<u64>,
    retry: u32,
    last_error: Option<ApiError>,
    /// When the current run of failures began (reset once bytes flow again).
    failing_since: Option<std::time::Instant>,
}

impl Transfer {
    /// Ask, resume and retry until the transfer ends one way or another.
    async fn run(mut self) {
        loop {
            if let Some(e) = self.last_error.take()
                && !self.backoff(e).await
            {
                return;
            }
            let resp = match self.request().await {
                Next::Body(r) => r,
                Next::Retry => continue,
                Next::Stop => return,
            };
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // A server that ignores Range sends everything again: skip what was already stored.
            let skip = if self.offset > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                self.offset
            } else {
                0
            };
            if self.started {
                if etag.is_some() && self.first_etag.is_some() && etag != self.first_etag {
                    let _ = self
                        .tx
                        .send(Msg::Changed("its eTag changed while resuming".into()))
                        .await;
                    return;
                }
            } else if !self.first_answer(&resp, etag).await {
                return;
            }
            if !self.stream(resp, skip).await {
                return;
            }
        }
    }

    /// Wait before the next attempt after the failure `e`; false (with `e` sent) once the
    /// retries are exhausted.
    async fn backoff(&mut self, e: ApiError) -> bool {
        self.retry += 1;
        let since = *self
            .failing_since
            .get_or_insert_with(std::time::Instant::now);
        if self.client.retry.exhausted(since) {
            let _ = self.tx.send(Msg::Failed(e)).await;
            return false;
        }
        self.client.backoff(self.retry).await;
        true
    }

    /// Ask for the object from `offset` on.
    async fn request(&mut self) -> Next {
        let (client, bucket, name) = (&self.client, &self.bucket, &self.name);
        let msg = match client.get_object(bucket, name, self.offset).await {
            Ok(r) => return Next::Body(r),
            // A transfer that broke after its last byte: the resumed range starts at the end,
            // which the server refuses with 416 (transcript §8). Nothing is missing if the
            // object is still the version begun and `offset` long.
            Err(e) if e.status == 416 && self.started => {
                let whole = self.total == Some(self.offset)
                    || ended_at(
                        client,
                        bucket,
                        name,
                        self.first_etag.as_deref(),
                        self.offset,
                    )
                    .await;
                if whole {
                    Msg::End
                } else {
                    Msg::Changed("it changed while resuming".into())
                }
            }
            Err(e) if e.failure == Failure::NotFound => {
                if self.started {
                    Msg::Changed("deleted while downloading".into())
                } else {
                    Msg::Vanished
                }
            }
            Err(e) if e.failure == Failure::Transient => {
                self.last_error = Some(e);
                return Next::Retry;
            }
            Err(e) => Msg::Failed(e),
        };
        let _ = self.tx.send(msg).await;
        Next::Stop
    }

    /// The object's first answer: note its length and eTag, read the user metadata when asked
    /// for, and send the start; false when the transfer ends here.
    async fn first_answer(&mut self, resp: &reqwest::Response, etag: Option<String>) -> bool {
        self.started = true;
        self.total = object_length(resp);
        let served = Served::of(resp);
        // The user metadata (only `GET /object/info` has it), read after the download's
        // answer and checked against its eTag: a re-upload in between is not paired up.
        let mut user_metadata = None;
        if self.want_info {
            let stop = match self.client.object_info(&self.bucket, &self.name).await {
                Ok(v) if !same_etag(v.etag.as_deref(), etag.as_deref()) => {
                    Some(Msg::Changed("re-uploaded during its download".into()))
                }
                Ok(v) => {
                    user_metadata = v.user_metadata();
                    None
                }
                Err(e) if e.failure == Failure::NotFound => {
                    Some(Msg::Changed("deleted during its download".into()))
                }
                Err(e) => Some(Msg::Failed(e)),
            };
            if let Some(m) = stop {
                let _ = self.tx.send(m).await;
                return false;
            }
        }
        self.first_etag = etag;
        self.tx
            .send(Msg::Start {
                user_metadata,
                served,
            })
            .await
            .is_ok()
    }

    /// Send the body on, `skip` bytes left out first; true when the connection broke and the
    /// transfer is to be resumed.
    async fn stream(&mut self, resp: reqwest::Response, mut skip: u64) -> bool {
        let mut body = resp.bytes_stream();
        loop {
            match body.next().await {
                Some(Ok(mut b)) => {
                    if skip > 0 {
                        let n = (skip as usize).min(b.len());
                        let _ = b.split_to(n);
                        skip -= n as u64;
                        if b.is_empty() {
                            continue;
                        }
                    }
                    self.offset += b.len() as u64;
                    self.retry = 0;
                    self.failing_since = None;
                    if self.tx.send(Msg::Data(b)).await.is_err() {
                        return false;
                    }
                }
                Some(Err(e)) => {
                    self.last_error = Some(ApiError::local(
                        Failure::Transient,
                        format!("connection broke during the download: {e}"),
                    ));
                    return true;
                }
                None => {
                    let _ = self.tx.send(Msg::End).await;
                    return false;
                }
            }
        }
    }
}
