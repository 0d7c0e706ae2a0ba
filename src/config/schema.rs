//! The TOML file as serde reads it. Every table denies unknown keys; values are checked while
//! they are read (durations, sizes, subsets, URLs, counts) and tables whose keys depend on each
//! other are checked as a whole (`try_from`), so every mistake carries the span serde saw.

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::spec::DataSubset;
use crate::spec::RepackLimit;
use crate::spec::RetentionDuration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub repository: Repository,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub prune: Prune,
    #[serde(default)]
    pub check: Check,
    pub healthcheck: Option<Healthcheck>,
    pub offsite: Option<Offsite>,
    #[serde(deserialize_with = "non_empty_projects")]
    pub projects: Vec<Project>,
}

/// Where a secret comes from. Paths may use `${VAR}` (e.g. `${CREDENTIALS_DIRECTORY}`), expanded
/// when the secret is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    File(String),
    Command(String),
    Env(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawRepository")]
pub struct Repository {
    pub location: String,
    pub password: Secret,
    pub cache_dir: Option<String>,
    pub host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    #[serde(deserialize_with = "non_empty")]
    location: String,
    #[serde(default, deserialize_with = "opt_non_empty")]
    password_file: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    password_command: Option<String>,
    #[serde(default, deserialize_with = "opt_env_name")]
    password_env: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    cache_dir: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    host: Option<String>,
}

impl TryFrom<RawRepository> for Repository {
    type Error = String;
    fn try_from(r: RawRepository) -> Result<Self, String> {
        if r.location.contains("://") && crate::redact::url_passwords(&r.location) != r.location {
            return Err("location contains a password: give credentials in a file or the environment, not in the URL".into());
        }
        let password = match (r.password_file, r.password_command, r.password_env) {
            (Some(f), None, None) => Secret::File(f),
            (None, Some(c), None) => Secret::Command(c),
            (None, None, Some(e)) => Secret::Env(e),
            (None, None, None) => {
                return Err("no repository password source: set one of password_file, password_command or password_env".into());
            }
            _ => {
                return Err(
                    "password_file, password_command and password_env exclude each other: keep one"
                        .into(),
                );
            }
        };
        Ok(Repository {
            location: r.location,
            password,
            cache_dir: r.cache_dir,
            host: r.host,
        })
    }
}

/// A second repository (e.g. `s3:https://…/bucket/offsite`) that `snap run` copies every snapshot
/// to, after check. Created beforehand, ideally with `snap init --copy-key-from <repository>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawOffsite")]
pub struct Offsite {
    pub location: String,
    pub password: Secret,
    /// Packs fetched and uploaded at once.
    pub parallel: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffsite {
    #[serde(deserialize_with = "non_empty")]
    location: String,
    #[serde(default, deserialize_with = "opt_non_empty")]
    password_file: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    password_command: Option<String>,
    #[serde(default, deserialize_with = "opt_env_name")]
    password_env: Option<String>,
    #[serde(default = "default_concurrency")]
    parallel: usize,
}

impl TryFrom<RawOffsite> for Offsite {
    type Error = String;
    fn try_from(r: RawOffsite) -> Result<Self, String> {
        let repo = Repository::try_from(RawRepository {
            location: r.location,
            password_file: r.password_file,
            password_command: r.password_command,
            password_env: r.password_env,
            cache_dir: None,
            host: None,
        })?;
        if r.parallel == 0 {
            return Err("parallel must be at least 1".into());
        }
        Ok(Offsite {
            location: repo.location,
            password: repo.password,
            parallel: r.parallel,
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default, deserialize_with = "opt_duration")]
    pub keep_within: Option<RetentionDuration>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_last: Option<u32>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_hourly: Option<u32>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_daily: Option<u32>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_weekly: Option<u32>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_monthly: Option<u32>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub keep_yearly: Option<u32>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_repack", deserialize_with = "repack")]
    pub max_repack: RepackLimit,
    #[serde(default = "default_grace", deserialize_with = "grace")]
    pub grace: chrono::TimeDelta,
}

impl Default for Prune {
    fn default() -> Self {
        Prune {
            enabled: true,
            max_repack: default_repack(),
            grace: default_grace(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `None`: structure only (`"off"` in the file).
    #[serde(default = "default_subset", deserialize_with = "subset")]
    pub read_data_subset: Option<DataSubset>,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            enabled: true,
            read_data_subset: default_subset(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(deserialize_with = "http_url")]
    pub url: url::Url,
    #[serde(default = "default_ping_timeout", deserialize_with = "std_duration")]
    pub timeout: std::time::Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: toml::Spanned<String>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    pub db: Option<Db>,
    pub storage: Option<Storage>,
}

pub use crate::source::postgres::conn::DbTarget;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawDb")]
pub struct Db {
    pub target: DbTarget,
    pub password: Option<Secret>,
    pub pg_bin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDb {
    #[serde(default, deserialize_with = "opt_non_empty")]
    db_url: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    project_ref: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    pooler_host: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    db_password_file: Option<String>,
    #[serde(default, deserialize_with = "opt_env_name")]
    db_password_env: Option<String>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    pg_bin: Option<String>,
}

impl TryFrom<RawDb> for Db {
    type Error = String;
    fn try_from(r: RawDb) -> Result<Self, String> {
        let target = match (r.db_url, r.project_ref) {
            (Some(_), Some(_)) => {
                return Err("db_url and project_ref exclude each other: keep one".into());
            }
            (None, None) => return Err("no database given: set db_url or project_ref".into()),
            (Some(u), None) => {
                if r.pooler_host.is_some() {
                    return Err("pooler_host goes with project_ref, not with db_url (put the pooler host in the URL)".into());
                }
                let spec = crate::source::postgres::conn::ConnSpec::from_url(&u, None)
                    .map_err(|e| e.to_string())?;
                if spec.has_password() {
                    return Err("db_url contains a password: remove it and use db_password_file or db_password_env".into());
                }
                DbTarget::Url(u)
            }
            (None, Some(p)) => {
                crate::source::postgres::conn::ConnSpec::from_project_ref(
                    &p,
                    r.pooler_host.as_deref(),
                    None,
                )
                .map_err(|e| e.to_string())?;
                DbTarget::ProjectRef {
                    project_ref: p,
                    pooler_host: r.pooler_host,
                }
            }
        };
        let password = match (r.db_password_file, r.db_password_env) {
            (Some(_), Some(_)) => {
                return Err(
                    "db_password_file and db_password_env exclude each other: keep one".into(),
                );
            }
            (Some(f), None) => Some(Secret::File(f)),
            (None, Some(e)) => Some(Secret::Env(e)),
            (None, None) => None,
        };
        Ok(Db {
            target,
            password,
            pg_bin: r.pg_bin,
        })
    }
}

/// The service-role key's environment variable when no file is named.
pub const DEFAULT_SERVICE_KEY_ENV: &str = "SUPABASE_SERVICE_ROLE_KEY";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawStorage")]
pub struct Storage {
    /// The Storage API base, e.g. `https://<ref>.supabase.co/storage/v1`.
    pub api_base: String,
    pub service_key: Secret,
    /// Empty: every bucket.
    pub buckets: Vec<String>,
    pub concurrency: usize,
    /// How long one request is retried while the Storage API is unreachable or failing.
    pub retry_for: std::time::Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default, deserialize_with = "opt_http_url")]
    url: Option<url::Url>,
    #[serde(default, deserialize_with = "opt_http_url")]
    storage_url: Option<url::Url>,
    #[serde(default, deserialize_with = "opt_non_empty")]
    service_key_file: Option<String>,
    #[serde(default, deserialize_with = "opt_env_name")]
    service_key_env: Option<String>,
    #[serde(default)]
    buckets: Vec<String>,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_retry_for", deserialize_with = "std_duration")]
    retry_for: std::time::Duration,
}

impl TryFrom<RawStorage> for Storage {
    type Error = String;
    fn try_from(r: RawStorage) -> Result<Self, String> {
        let api_base = match (r.url, r.storage_url) {
            (Some(_), Some(_)) => return Err("url and storage_url exclude each other: keep one".into()),
            (None, None) => return Err("no Storage API given: set url (the project URL, https://<ref>.supabase.co) or storage_url".into()),
            (Some(u), None) => format!("{}/storage/v1", u.as_str().trim_end_matches('/')),
            (None, Some(u)) => u.as_str().trim_end_matches('/').to_string(),
        };
        let service_key = match (r.service_key_file, r.service_key_env) {
            (Some(_), Some(_)) => {
                return Err(
                    "service_key_file and service_key_env exclude each other: keep one".into(),
                );
            }
            (Some(f), None) => Secret::File(f),
            (None, e) => Secret::Env(e.unwrap_or_else(|| DEFAULT_SERVICE_KEY_ENV.into())),
        };
        if r.concurrency == 0 || r.concurrency > 64 {
            return Err(format!(
                "concurrency {} is out of range: use 1 to 64",
                r.concurrency
            ));
        }
        if let Some(b) = r.buckets.iter().find(|b| b.is_empty() || b.contains('/')) {
            return Err(format!(
                "bucket name {b:?} is not valid (empty or containing /)"
            ));
        }
        Ok(Storage {
            api_base,
            service_key,
            buckets: r.buckets,
            concurrency: r.concurrency,
            retry_for: r.retry_for,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults and value checks

fn yes() -> bool {
    true
}
fn default_repack() -> RepackLimit {
    RepackLimit::Percent(10.0)
}
fn default_grace() -> chrono::TimeDelta {
    crate::spec::DEFAULT_GRACE
}
/// The nightly check reads a random 5 % of the packs: all of them about every 20 nights.
pub const DEFAULT_READ_DATA_SUBSET: &str = "5%";
fn default_subset() -> Option<DataSubset> {
    DEFAULT_READ_DATA_SUBSET.parse().ok()
}
fn default_ping_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}
fn default_retry_for() -> std::time::Duration {
    std::time::Duration::from_secs(120)
}
fn default_concurrency() -> usize {
    4
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn opt_non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    non_empty(d).map(Some)
}

fn opt_env_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty()
        || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || s.as_bytes()[0].is_ascii_digit()
    {
        return Err(D::Error::custom(format!(
            "{s:?} is not an environment variable name (letters, digits, _)"
        )));
    }
    Ok(Some(s))
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RetentionDuration>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(|e: crate::Error| {
        D::Error::custom(e.to_string().trim_start_matches("invalid argument: "))
    })
}

fn opt_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(D::Error::custom(
            "must be at least 1 (leave the key out to not use this rule)",
        ));
    }
    Ok(Some(n))
}

fn repack<'de, D: Deserializer<'de>>(d: D) -> Result<RepackLimit, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|e: String| {
        D::Error::custom(format!(
            "{e}; use a percentage (\"10%\") or a size (\"500MiB\")"
        ))
    })
}

fn std_duration<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        D::Error::custom(format!(
            "invalid duration {s:?}: {e}; use e.g. \"12h\", \"30min\", \"2d\""
        ))
    })
}

fn grace<'de, D: Deserializer<'de>>(d: D) -> Result<chrono::TimeDelta, D::Error> {
    let s = std_duration(d)?;
    chrono::TimeDelta::from_std(s).map_err(|e| D::Error::custom(e.to_string()))
}

fn subset<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataSubset>, D::Error> {
    let s = String::deserialize(d)?;
    if s == "off" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e: String| {
        D::Error::custom(format!("{e}, or \"off\" for the structure check only"))
    })
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    let u = url::Url::parse(&s).map_err(|e| D::Error::custom(format!("not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(D::Error::custom("expected an http:// or https:// URL"));
    }
    if u.password().is_some() {
        return Err(D::Error::custom(
            "the URL contains a password: snap does not store credentials in the config file",
        ));
    }
    Ok(u)
}

fn opt_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    http_url(d).map(Some)
}

fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if let Some(t) = v.iter().find(|t| t.is_empty() || t.contains(',')) {
        return Err(D::Error::custom(format!(
            "invalid tag {t:?}: use key=value without commas"
        )));
    }
    Ok(v)
}

fn non_empty_projects<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Project>, D::Error> {
    let v = Vec::<Project>::deserialize(d)?;
    if v.is_empty() {
        return Err(D::Error::custom(
            "at least one [[projects]] table is needed",
        ));
    }
    Ok(v)
}
