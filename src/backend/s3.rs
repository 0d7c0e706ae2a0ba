//! A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, R2, B2, Supabase
//! Storage's S3 endpoint), through the `object_store` crate (SigV4 signing, retries with
//! backoff, multipart uploads, conditional puts), driven by a private tokio runtime so the
//! [`Backend`] trait stays synchronous.
//!
//! Locations:
//! * `s3:https://host[:port]/bucket[/prefix]` — a custom endpoint, path-style requests
//!   (`s3:http://…` for plain-HTTP test servers on loopback);
//! * `s3:bucket[/prefix]` — AWS S3, region from `AWS_REGION` / `AWS_DEFAULT_REGION`.
//!
//! Credentials come from the environment as `object_store` reads it: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), ECS container credentials, and EC2 instance
//! metadata. Profiles in `~/.aws/config` / `~/.aws/credentials` are not read.

use std::ops::Range;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

/// Objects larger than this are uploaded in parts of [`PART_SIZE`] (S3 caps single puts at 5 GB).
const MULTIPART_FROM: usize = 64 << 20;
const PART_SIZE: usize = 16 << 20;

/// Where an `s3:` location points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `https://host:port` for custom endpoints; `None` for AWS.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parse the part after `s3:`.
    pub fn parse(rest: &str) -> Result<S3Location> {
        let bad = |why: &str| {
            // Whatever precedes an `@` may be a secret: never echo it.
            let shown = match rest.rfind('@') {
                Some(at) => format!("***{}", &rest[at..]),
                None => rest.to_string(),
            };
            Error::Invalid(format!(
                "repository location s3:{shown}: {why}; use s3:https://host[:port]/bucket/prefix or s3:bucket/prefix"
            ))
        };
        // `s3://bucket/prefix` (the usual URL form) is `s3:bucket/prefix`.
        let rest_aws = rest.strip_prefix("//");
        let (endpoint, path) = if rest.starts_with("http://") || rest.starts_with("https://") {
            let url = url::Url::parse(rest).map_err(|e| bad(&e.to_string()))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(
                    "credentials do not belong in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                ));
            }
            let host = url.host_str().ok_or_else(|| bad("no host"))?;
            let endpoint = match url.port() {
                Some(p) => format!("{}://{host}:{p}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            };
            (Some(endpoint), url.path().to_string())
        } else if rest.contains("://") {
            return Err(bad("only http:// and https:// endpoints are supported"));
        } else {
            (None, rest_aws.unwrap_or(rest).to_string())
        };
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.contains('@') {
            return Err(bad(
                "credentials do not belong in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        }
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        // S3 bucket names: 3 to 63 of a-z, 0-9, `.` and `-`.
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(bad(
                "the bucket name must be 3 to 63 characters of a-z, 0-9, `.` and `-`",
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|c| c == "." || c == "..") || prefix.contains("//") {
            return Err(bad("the prefix has empty, `.` or `..` components"));
        }
        Ok(S3Location {
            endpoint,
            bucket: bucket.to_string(),
            prefix,
        })
    }

    fn display(&self) -> String {
        let mut s = match &self.endpoint {
            Some(e) => format!("s3:{e}/{}", self.bucket),
            None => format!("s3:{}", self.bucket),
        };
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        s
    }
}

pub struct S3Backend {
    store: Arc<AmazonS3>,
    /// Key prefix with a trailing `/`, or empty.
    prefix: String,
    display: String,
    rt: tokio::runtime::Runtime,
    multipart_from: usize,
    part_size: usize,
    reader: Reader,
}

/// What a ranged read needs, cheap to clone into a task of the runtime.
#[derive(Clone)]
struct Reader {
    store: Arc<AmazonS3>,
    display: String,
    /// The server answers ranged GETs with 200 (rclone serve s3): reads go through
    /// [`super::ranged`] from then on.
    lenient: Arc<std::sync::atomic::AtomicBool>,
    http: reqwest::Client,
}

impl S3Backend {
    /// Open `s3:…` (the part after `s3:` in `rest`). Builds the client only; no request is made.
    pub fn open(rest: &str) -> Result<S3Backend> {
        for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Ok(v) = std::env::var(var) {
                crate::redact::remember(&v);
            }
        }
        S3Backend::build(rest, AmazonS3Builder::from_env())
    }

    /// Open `s3:…` with explicit credentials instead of the environment (library callers,
    /// tests). The secret is handed to the client only; it is never shown.
    pub fn open_with_credentials(
        rest: &str,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> Result<S3Backend> {
        crate::redact::remember(secret_access_key);
        let b = AmazonS3Builder::new()
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key)
            .with_region(region);
        S3Backend::build(rest, b)
    }

    fn build(rest: &str, builder: AmazonS3Builder) -> Result<S3Backend> {
        let loc = S3Location::parse(rest)?;
        let mut b = builder.with_bucket_name(&loc.bucket);
        if let Some(ep) = &loc.endpoint {
            b = b
                .with_endpoint(ep)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(ep.starts_with("http://"));
        }
        let store = b
            .build()
            .map_err(|e| Error::Invalid(format!("S3 repository {}: {e}", loc.display())))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io("<tokio runtime>", e))?;
        let prefix = if loc.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", loc.prefix)
        };
        let store = Arc::new(store);
        let reader = Reader {
            store: store.clone(),
            display: loc.display(),
            lenient: Default::default(),
            http: reqwest::Client::new(),
        };
        Ok(S3Backend {
            store,
            prefix,
            display: loc.display(),
            rt,
            multipart_from: MULTIPART_FROM,
            part_size: PART_SIZE,
            reader,
        })
    }

    /// Upload objects of `from` bytes or more in parts of `part` bytes (S3's minimum part size
    /// is 5 MiB). For tests that exercise multipart uploads with small objects.
    pub fn with_multipart(mut self, from: usize, part: usize) -> S3Backend {
        self.multipart_from = from;
        self.part_size = part;
        self
    }

    fn path(&self, name: &str) -> Path {
        Path::from(format!("{}{name}", self.prefix))
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        map_error(&self.display, name, e)
    }
}

impl Reader {
    /// `len` bytes of `name` (at `path`) from `offset`; fewer is an error.
    async fn read(&self, name: &str, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.ranged(name, path, offset..offset + len).await?;
        if bytes.len() as u64 != len {
            return Err(Error::Backend {
                path: format!("{}/{name}", self.display),
                error: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "asked for {len} bytes at offset {offset}, got {}",
                        bytes.len()
                    ),
                ),
            });
        }
        Ok(bytes.to_vec())
    }

    /// A ranged read: through object_store, or — once the server answered a ranged GET with
    /// 200 — through [`super::ranged`].
    async fn ranged(&self, name: &str, path: &Path, range: Range<u64>) -> Result<bytes::Bytes> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.lenient.load(Relaxed) {
            match self.store.get_range(path, range.clone()).await {
                Ok(b) => return Ok(b),
                Err(e) if super::ranged::is_not_partial(&e) => self.lenient.store(true, Relaxed),
                Err(e) => return Err(map_error(&self.display, name, e)),
            }
        }
        let got = super::ranged::get(&self.store, &self.http, path, range).await;
        got.map_err(|f| match f {
            super::ranged::Failure::NotFound => Error::NotFound {
                path: name.to_string(),
            },
            super::ranged::Failure::Other { transient, message } => Error::Backend {
                path: format!("{}/{name}", self.display),
                error: std::io::Error::new(
                    if transient {
                        std::io::ErrorKind::ConnectionReset
                    } else {
                        std::io::ErrorKind::InvalidData
                    },
                    message,
                ),
            },
        })
    }
}

/// object_store errors → the library's: missing objects are [`Error::NotFound`]; everything else
/// is [`Error::Backend`] with an I/O kind that tells transient (connection, timeout) from
/// permanent (permissions, bad requests) — see [`Error::is_transient`].
fn map_error(location: &str, name: &str, e: object_store::Error) -> Error {
    use std::io::ErrorKind;
    let path = format!("{location}/{name}");
    let (kind, msg) = match &e {
        object_store::Error::NotFound { .. } => {
            return Error::NotFound {
                path: name.to_string(),
            };
        }
        object_store::Error::Unauthenticated { .. }
        | object_store::Error::PermissionDenied { .. } => (
            ErrorKind::PermissionDenied,
            format!(
                "access denied ({e}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the bucket policy"
            ),
        ),
        _ => {
            // The retry layer already retried transient failures; classify what is left by its
            // chain so callers can tell a dead network from a refused request.
            let mut chain = e.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            let lower = chain.to_ascii_lowercase();
            let kind = if lower.contains("timed out") || lower.contains("timeout") {
                ErrorKind::TimedOut
            } else if lower.contains("connect")
                || lower.contains("connection")
                || lower.contains("error sending request")
            {
                ErrorKind::ConnectionReset
            } else {
                ErrorKind::Other
            };
            // The top-level message already quotes its sources.
            let msg = if lower.contains("169.254.169.254") {
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the EC2 instance metadata service, the last place looked, did not answer)".to_string()
            } else if lower.contains("signaturedoesnotmatch")
                || lower.contains("invalidaccesskeyid")
            {
                format!("access denied ({e}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            } else {
                e.to_string()
            };
            (kind, msg)
        }
    };
    Error::Backend {
        path,
        error: std::io::Error::new(kind, msg),
    }
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.display.clone()
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // object_store lists by path segments; list the directory holding the prefix and
        // filter by the full name, as the local backend does.
        let dir = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let full_dir = format!("{}{dir}", self.prefix);
        let full_dir = full_dir.trim_end_matches('/');
        let dir_path = (!full_dir.is_empty()).then(|| Path::from(full_dir));
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(dir_path.as_ref()).try_collect())
            .map_err(|e| match e {
                // A listing finds nothing rather than "not found"; a 404 means no bucket.
                object_store::Error::NotFound { .. } => Error::Backend {
                    path: self.display.clone(),
                    error: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the bucket does not exist; create it first (snap does not create buckets)",
                    ),
                },
                e => self.err(prefix, e),
            })?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m
                    .location
                    .as_ref()
                    .strip_prefix(self.prefix.as_str())?
                    .to_string();
                name.starts_with(prefix)
                    .then_some(ObjectInfo { name, size: m.size })
            })
            .collect())
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        self.rt
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| self.err(name, e))
    }

    fn get_bounded(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let path = self.path(name);
        let r = self
            .rt
            .block_on(self.store.get(&path))
            .map_err(|e| self.err(name, e))?;
        super::check_bound(name, r.meta.size, limit)?;
        self.rt
            .block_on(r.bytes())
            .map(|b| b.to_vec())
            .map_err(|e| self.err(name, e))
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(name);
        self.rt.block_on(self.reader.read(name, &path, offset, len))
    }

    /// Each read is a task of the runtime; up to `in_flight` run at once, and their answers
    /// are handed on in the order asked while the later ones go on.
    fn get_ranges(
        &self,
        requests: &mut dyn Iterator<Item = super::RangeRequest>,
        in_flight: usize,
        sink: &mut dyn FnMut(super::RangeRequest, Result<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        use futures::StreamExt;
        let tasks = futures::stream::iter(requests).map(|r| {
            let (reader, path) = (self.reader.clone(), self.path(&r.name));
            let task = self.rt.spawn(async move {
                let got = reader.read(&r.name, &path, r.offset, r.len).await;
                (r, got)
            });
            async move { task.await.expect("a read task does not panic") }
        });
        let mut answers = tasks.buffered(in_flight.max(1));
        self.rt.block_on(async {
            while let Some((r, got)) = answers.next().await {
                sink(r, got)?;
            }
            Ok(())
        })
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(name);
        if data.len() < self.multipart_from {
            let payload = PutPayload::from(bytes::Bytes::copy_from_slice(data));
            self.rt
                .block_on(self.store.put(&path, payload))
                .map_err(|e| self.err(name, e))?;
            return Ok(());
        }
        // Multipart: the object appears only when the upload completes, so the put stays atomic.
        self.rt
            .block_on(async {
                let upload = self.store.put_multipart(&path).await?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
                for part in data.chunks(self.part_size) {
                    w.wait_for_capacity(4).await?;
                    w.write(part);
                }
                w.finish().await
            })
            .map_err(|e| self.err(name, e))?;
        Ok(())
    }

    fn put_new(&self, name: &str, data: &[u8]) -> Result<bool> {
        let path = self.path(name);
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(data));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.rt.block_on(self.store.put_opts(&path, payload, opts)) {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn delete(&self, name: &str) -> Result<()> {
        // S3 answers 204 whether or not the object existed (the trait allows that).
        let path = self.path(name);
        self.rt
            .block_on(self.store.delete(&path))
            .map_err(|e| self.err(name, e))
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path(name);
        match self.rt.block_on(self.store.head(&path)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("https://s3.example.com:9000/bucket/some/prefix/").unwrap();
        assert_eq!(l.endpoint.as_deref(), Some("https://s3.example.com:9000"));
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        assert_eq!(
            l.display(),
            "s3:https://s3.example.com:9000/bucket/some/prefix"
        );
        let l = S3Location::parse("http://127.0.0.1:5000/bkt").unwrap();
        assert_eq!(
            (l.endpoint.as_deref(), l.bucket.as_str(), l.prefix.as_str()),
            (Some("http://127.0.0.1:5000"), "bkt", "")
        );
        let l = S3Location::parse("mybucket/p").unwrap();
        assert_eq!(
            (l.endpoint, l.bucket.as_str(), l.prefix.as_str()),
            (None, "mybucket", "p")
        );
        assert!(S3Location::parse("").is_err());
        assert!(S3Location::parse("https://host").is_err());
        assert!(S3Location::parse("bkt/../x").is_err());
        for loc in [
            "https://AKIA:secret@host/b",
            "//user:secret@host/bucket",
            "user:secret@host/bucket",
        ] {
            let e = S3Location::parse(loc).unwrap_err().to_string();
            assert!(
                !e.contains("secret") && e.contains("AWS_ACCESS_KEY_ID"),
                "{e}"
            );
        }
        let l = S3Location::parse("//my-bucket/some/prefix").unwrap();
        assert_eq!(
            (l.endpoint, l.bucket.as_str(), l.prefix.as_str()),
            (None, "my-bucket", "some/prefix")
        );
        assert!(S3Location::parse("Bad_Bucket/x").is_err());
        assert!(S3Location::parse("ftp://host/b").is_err());
    }

    #[test]
    fn errors_map_to_typed_errors() {
        let boxed = |m: &str| -> Box<dyn std::error::Error + Send + Sync> { m.into() };
        let nf = object_store::Error::NotFound {
            path: "p/config".into(),
            source: boxed("404"),
        };
        assert!(
            matches!(map_error("s3:x", "config", nf), Error::NotFound { path } if path == "config")
        );
        let denied = object_store::Error::PermissionDenied {
            path: "p/config".into(),
            source: boxed("403"),
        };
        let e = map_error("s3:x", "config", denied);
        assert!(
            !e.is_transient() && e.to_string().contains("AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        let refused = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "tcp connect error: Connection refused",
            )),
        };
        let e = map_error("s3:x", "config", refused);
        assert!(e.is_transient(), "a dead network is transient: {e}");
        let timeout = object_store::Error::Generic {
            store: "S3",
            source: boxed("operation timed out"),
        };
        assert!(map_error("s3:x", "config", timeout).is_transient());
        let bad = object_store::Error::Generic {
            store: "S3",
            source: boxed("400 Bad Request: InvalidArgument"),
        };
        assert!(!map_error("s3:x", "config", bad).is_transient());
    }
}
