//! `snap restore --storage`: put a snapshot's buckets and objects back into a Storage API.
//! Plan (what the snapshot holds, what the destination already has), then execute: missing
//! buckets are created with their configuration, objects uploaded with their content type,
//! cache control and user metadata, `concurrency` at a time, each streamed from the repository
//! (bounded memory) and retried on transient failures. Existing objects are skipped (counted)
//! unless `overwrite`, so running it again after a partial failure completes the rest.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{Entry, Snapshot};
use crate::source::storage::api::{ApiError, Bucket, BucketUpdate, Failure};
use crate::source::storage::client::Client;
use crate::source::storage::layout::{self, StoredObject};
use crate::source::storage::{StorageOptions, api_error};

#[derive(Debug, Clone, Default)]
pub struct StorageRestoreOptions {
    /// The destination (its `buckets` limits which buckets of the snapshot are restored).
    pub storage: StorageOptions,
    /// Restore only objects whose name starts with this.
    pub prefix: Option<String>,
    /// Replace existing objects (`x-upsert: true`); otherwise they are skipped.
    pub overwrite: bool,
    /// Give existing buckets the snapshot's configuration (`PUT /bucket/{id}`) instead of
    /// keeping theirs.
    pub apply_bucket_config: bool,
}

/// One bucket to restore.
#[derive(Debug, Clone)]
pub struct BucketPlan {
    pub bucket: Bucket,
    /// The destination already has a bucket with this id.
    pub exists: bool,
    /// … and it holds objects.
    pub non_empty: bool,
    /// … with another configuration than the snapshot's (kept as the destination has it).
    pub config_differs: Vec<String>,
    pub objects: Vec<(StoredObject, Entry)>,
}

#[derive(Debug, Clone)]
pub struct StorageRestorePlan {
    pub buckets: Vec<BucketPlan>,
}

impl StorageRestorePlan {
    pub fn objects(&self) -> usize {
        self.buckets.iter().map(|b| b.objects.len()).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.buckets
            .iter()
            .flat_map(|b| &b.objects)
            .map(|(_, e)| e.size)
            .sum()
    }
    /// Buckets of the destination that already hold objects (ask before writing into them).
    pub fn non_empty(&self) -> Vec<&str> {
        self.buckets
            .iter()
            .filter(|b| b.non_empty)
            .map(|b| b.bucket.id.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedObject {
    pub bucket: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageRestoreSummary {
    pub buckets: u64,
    pub buckets_created: Vec<String>,
    /// Existing buckets configured otherwise than in the snapshot, kept as they are: one line each.
    pub buckets_kept_as_they_are: Vec<String>,
    /// Existing buckets given the snapshot's configuration (`apply_bucket_config`): one line each.
    pub buckets_updated: Vec<String>,
    pub uploaded: u64,
    pub bytes_uploaded: u64,
    /// Objects that already existed (not replaced without `overwrite`).
    pub skipped: u64,
    pub failed: Vec<FailedObject>,
    /// Transient failures (timeouts, resets, 429, 5xx) retried.
    pub retries: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

/// How the destination's bucket `target` is configured otherwise than the snapshot's `want`
/// (public, size limit, MIME types). Pure.
pub fn config_differences(want: &Bucket, target: &Bucket) -> Vec<String> {
    let show = |v: &Option<Vec<String>>| v.as_ref().map_or("any".to_string(), |m| m.join(", "));
    let limit = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    // No list and an empty list both allow any type.
    let mimes = |b: &Bucket| b.allowed_mime_types.clone().filter(|m| !m.is_empty());
    let mut out = Vec::new();
    if want.public != target.public {
        out.push(format!(
            "public: {} here, {} in the snapshot",
            target.public, want.public
        ));
    }
    if want.file_size_limit != target.file_size_limit {
        out.push(format!(
            "file size limit: {} here, {} in the snapshot",
            limit(target.file_size_limit),
            limit(want.file_size_limit)
        ));
    }
    if mimes(want) != mimes(target) {
        out.push(format!(
            "allowed MIME types: {} here, {} in the snapshot",
            show(&target.allowed_mime_types),
            show(&want.allowed_mime_types)
        ));
    }
    out
}

/// What restoring `snap` would do: its buckets and objects (filtered), and the destination's state.
pub fn plan(
    repo: &Repository,
    snap: &Snapshot,
    opts: &StorageRestoreOptions,
) -> Result<StorageRestorePlan> {
    let tree = repo.load_tree(&snap.manifest)?;
    let mut buckets: Vec<BucketPlan> = Vec::new();
    for e in tree.under(layout::ROOT) {
        if let Some(b) = layout::bucket_of(e) {
            if e.path == layout::bucket_path(&b.id) {
                buckets.push(BucketPlan {
                    bucket: b,
                    exists: false,
                    non_empty: false,
                    config_differs: Vec::new(),
                    objects: Vec::new(),
                });
            }
            continue;
        }
        let Some(o) = layout::object_of(e) else {
            continue;
        };
        let Some(bp) = buckets
            .iter_mut()
            .rev()
            .find(|b| crate::snapshot::tree::is_under(&e.path, &layout::bucket_path(&b.bucket.id)))
        else {
            continue;
        };
        if opts.prefix.as_deref().is_none_or(|p| o.name.starts_with(p)) {
            bp.objects.push((o, e.clone()));
        }
    }
    if buckets.is_empty() {
        return Err(Error::Invalid(format!(
            "snapshot {} holds no storage buckets",
            snap.id.short()
        )));
    }
    let wanted = &opts.storage.buckets;
    for w in wanted {
        if !buckets.iter().any(|b| &b.bucket.id == w) {
            let names: Vec<&str> = buckets.iter().map(|b| b.bucket.id.as_str()).collect();
            return Err(Error::Invalid(format!(
                "bucket {w:?} is not in snapshot {}; it holds {names:?}",
                snap.id.short()
            )));
        }
    }
    buckets.retain(|b| wanted.is_empty() || wanted.contains(&b.bucket.id));

    let rt = runtime()?;
    let client = opts.storage.client()?;
    let existing = rt
        .block_on(client.list_buckets())
        .map_err(|e| api_error("listing the destination's buckets", e))?;
    for bp in &mut buckets {
        let there = existing.iter().find(|x| x.id == bp.bucket.id);
        bp.exists = there.is_some();
        bp.config_differs = there
            .map(|t| config_differences(&bp.bucket, t))
            .unwrap_or_default();
        if bp.exists {
            let body = serde_json::json!({"prefix": "", "limit": 1, "offset": 0, "sortBy": {"column": "name", "order": "asc"}});
            let items = rt
                .block_on(client.list_v1(&bp.bucket.id, &body))
                .map_err(|e| {
                    api_error(
                        &format!("listing bucket {:?} of the destination", bp.bucket.id),
                        e,
                    )
                })?;
            bp.non_empty = !items.is_empty();
        }
    }
    rt.shutdown_background();
    Ok(StorageRestorePlan { buckets })
}

/// Carry out `plan`. Fails as a whole only when the key is refused or the server is unreachable;
/// objects the server refuses are listed in the summary's `failed`.
pub fn execute(
    repo: &Repository,
    plan: &StorageRestorePlan,
    opts: &StorageRestoreOptions,
    progress: &dyn Progress,
) -> Result<StorageRestoreSummary> {
    let rt = runtime()?;
    let client = opts.storage.client()?;
    let mut summary = StorageRestoreSummary {
        buckets: plan.buckets.len() as u64,
        ..Default::default()
    };
    bucket_configs(&rt, &client, plan, opts, &mut summary)?;
    create_buckets(&rt, &client, plan, &mut summary)?;
    progress.start("restore", Some(plan.bytes()));
    let (done, fatal) = upload_all(&rt, &client, repo, plan, opts, progress);
    summary.uploaded = done.uploaded;
    summary.bytes_uploaded = done.bytes_uploaded;
    summary.skipped = done.skipped;
    summary.failed = done.failed;
    summary.retries = client.retries();
    summary
        .failed
        .sort_by(|a, b| (&a.bucket, &a.name).cmp(&(&b.bucket, &b.name)));
    rt.shutdown_background();
    progress.finish();
    if let Some(e) = fatal {
        return Err(e);
    }
    Ok(summary)
}

/// Existing buckets configured otherwise than in the snapshot: with `--apply-bucket-config`
/// update them; note in `summary` what is kept as it is.
fn bucket_configs(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    plan: &StorageRestorePlan,
    opts: &StorageRestoreOptions,
    summary: &mut StorageRestoreSummary,
) -> Result<()> {
    for bp in plan.buckets.iter().filter(|b| !b.config_differs.is_empty()) {
        let left = if opts.apply_bucket_config {
            let left = apply_config(rt, client, &bp.bucket)?;
            summary.buckets_updated.push(format!(
                "{} ({})",
                bp.bucket.id,
                bp.config_differs.join("; ")
            ));
            left
        } else {
            bp.config_differs.clone()
        };
        if !left.is_empty() {
            summary.buckets_kept_as_they_are.push(format!(
                "{} ({})",
                bp.bucket.id,
                left.join("; ")
            ));
        }
    }
    Ok(())
}

/// Create the buckets the destination lacks.
fn create_buckets(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    plan: &StorageRestorePlan,
    summary: &mut StorageRestoreSummary,
) -> Result<()> {
    for bp in plan.buckets.iter().filter(|b| !b.exists) {
        match rt.block_on(client.create_bucket(&bp.bucket)) {
            Ok(()) => summary.buckets_created.push(bp.bucket.id.clone()),
            Err(e) if e.failure == Failure::Exists => {}
            Err(e) => return Err(api_error(&format!("creating bucket {:?}", bp.bucket.id), e)),
        }
    }
    Ok(())
}

/// Upload every object of `plan` on `opts.storage.concurrency` threads. Returns what was done,
/// and the first fatal error (which stops the threads).
fn upload_all(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    repo: &Repository,
    plan: &StorageRestorePlan,
    opts: &StorageRestoreOptions,
    progress: &dyn Progress,
) -> (StorageRestoreSummary, Option<Error>) {
    let work: Mutex<_> = Mutex::new(
        plan.buckets
            .iter()
            .flat_map(|b| b.objects.iter().map(move |o| (b.bucket.id.as_str(), o))),
    );
    let out = Mutex::new(StorageRestoreSummary::default());
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..opts.storage.concurrency.max(1) {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some((bucket, (obj, entry))) = work.lock().unwrap().next() else {
                        break;
                    };
                    progress.item(&entry.path);
                    match upload(
                        rt,
                        client,
                        repo,
                        bucket,
                        obj,
                        entry,
                        opts.overwrite,
                        progress,
                    ) {
                        Ok(outcome) => record(&out, progress, bucket, obj, entry, outcome),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            fatal.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    (out.into_inner().unwrap(), fatal.into_inner().unwrap())
}

/// Count one object's upload `outcome` in `out` (a refusal is warned and listed).
fn record(
    out: &Mutex<StorageRestoreSummary>,
    progress: &dyn Progress,
    bucket: &str,
    obj: &StoredObject,
    entry: &Entry,
    outcome: Outcome,
) {
    match outcome {
        Outcome::Uploaded => {
            let mut o = out.lock().unwrap();
            o.uploaded += 1;
            o.bytes_uploaded += entry.size;
        }
        Outcome::Exists => out.lock().unwrap().skipped += 1,
        Outcome::Refused(reason) => {
            progress.warn(&format!("{bucket}/{}: {reason}", obj.name));
            out.lock().unwrap().failed.push(FailedObject {
                bucket: bucket.into(),
                name: obj.name.clone(),
                reason,
            });
        }
    }
}

/// Give the destination's bucket `want`'s configuration, then read it back: the differences
/// that remain (what the server did not take).
fn apply_config(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    want: &Bucket,
) -> Result<Vec<String>> {
    let what = format!("updating the configuration of bucket {:?}", want.id);
    rt.block_on(client.update_bucket(&want.id, &BucketUpdate::to_match(want)))
        .map_err(|e| api_error(&what, e))?;
    let now = rt
        .block_on(client.get_bucket(&want.id))
        .map_err(|e| api_error(&what, e))?;
    Ok(config_differences(want, &now))
}

enum Outcome {
    Uploaded,
    Exists,
    /// The server refused this object (its name, type or size); the reason.
    Refused(String),
}

#[allow(clippy::too_many_arguments)]
fn upload(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    repo: &Repository,
    bucket: &str,
    obj: &StoredObject,
    entry: &Entry,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let url = client.object_url(bucket, &obj.name);
    let meta = obj.user_metadata.as_ref().map(|v| {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(v).expect("json serializes"))
    });
    let since = std::time::Instant::now();
    let mut attempt = 1;
    loop {
        let (tx, mut rx) = mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(4);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut req = client
            .http()
            .post(&url)
            .header(
                reqwest::header::CONTENT_TYPE,
                obj.content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            )
            .header(reqwest::header::CONTENT_LENGTH, entry.size)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(cc) = &obj.cache_control {
            req = req.header(reqwest::header::CACHE_CONTROL, cc);
        }
        if overwrite {
            req = req.header("x-upsert", "true");
        }
        if let Some(m) = &meta {
            req = req.header("x-metadata", m);
        }
        let c = client.clone();
        let call = rt.spawn(async move { c.send_once(req).await.map(drop) });
        let mut read_error = None;
        let ids = entry.chunks.iter().map(|c| c.id());
        let _ = repo.read_chunks(ids, &mut |_, got| match got {
            Ok(data) => {
                let n = data.len() as u64;
                // A closed channel: the request ended early; its answer says why.
                tx.blocking_send(Ok(Bytes::from(data)))
                    .map_err(|_| Error::Invalid("upload ended".into()))?;
                progress.bytes(n);
                Ok(())
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other("repository read failed")));
                read_error = Some(e);
                Err(Error::Invalid("read failed".into()))
            }
        });
        drop(tx);
        let answer = rt.block_on(call).unwrap_or_else(|e| {
            Err(ApiError::local(
                Failure::Permanent,
                format!("upload task failed: {e}"),
            ))
        });
        if let Some(e) = read_error {
            return Err(e);
        }
        match answer {
            Ok(()) => return Ok(Outcome::Uploaded),
            Err(e) => match e.failure {
                Failure::Exists => return Ok(Outcome::Exists),
                Failure::Transient if !client.retry.exhausted(since) => {
                    client.count_retry();
                    std::thread::sleep(client.retry.delay(attempt));
                    attempt += 1;
                }
                Failure::Auth | Failure::Transient => {
                    return Err(api_error(&format!("uploading {bucket}/{}", obj.name), e));
                }
                Failure::NotFound if e.message.to_ascii_lowercase().contains("bucket") => {
                    return Err(api_error(&format!("uploading {bucket}/{}", obj.name), e));
                }
                _ => return Ok(Outcome::Refused(e.to_string())),
            },
        }
    }
}
