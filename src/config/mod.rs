//! The nightly configuration file (`snap config init`, `snap run --config F`): TOML, every key
//! known (unknown keys are errors), every mistake reported with its file, line and key.
//! Secrets are never in the file: it names files (paths may use `${CREDENTIALS_DIRECTORY}`),
//! commands or environment variables, read by [`Secret::read`] when needed.

mod error;
mod schema;
mod template;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use error::ConfigError;
pub use schema::{
    Check, DEFAULT_READ_DATA_SUBSET, DEFAULT_SERVICE_KEY_ENV, Db, DbTarget, Healthcheck, Offsite,
    Prune, Retention, Secret, Storage,
};
pub use template::TEMPLATE;

use crate::error::{Error, Result};
use crate::spec::Policy;

/// A validated configuration.
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub repository: schema::Repository,
    pub retention: Retention,
    pub prune: Prune,
    pub check: Check,
    pub healthcheck: Option<Healthcheck>,
    /// Where `snap run` copies the snapshots after checking (the off-site copy).
    pub offsite: Option<Offsite>,
    pub projects: Vec<Project>,
}

pub use schema::Repository as RepositoryConfig;

/// One project: a database and/or Storage buckets, backed up into one snapshot.
#[derive(Debug)]
pub struct Project {
    pub name: String,
    /// Tags for its snapshots (besides `project=<name>`, always added).
    pub tags: Vec<String>,
    pub db: Option<Db>,
    pub storage: Option<Storage>,
}

impl Project {
    /// The tag that marks this project's snapshots (retention applies per project through it).
    pub fn tag(&self) -> String {
        format!("project={}", self.name)
    }

    /// Every tag its snapshots get.
    pub fn all_tags(&self) -> Vec<String> {
        let mut t = vec![self.tag()];
        t.extend(self.tags.iter().cloned());
        t
    }
}

impl Config {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> std::result::Result<Config, ConfigError> {
        let text = crate::secret::read_text_file(path, crate::secret::TEXT_LIMIT).map_err(|e| {
            ConfigError::at(
                path,
                "",
                None,
                "",
                format!("cannot read the configuration file: {e}"),
            )
        })?;
        Config::parse(path, &text)
    }

    /// Validate `text` (read from `path`, which names it in messages).
    pub fn parse(path: &Path, text: &str) -> std::result::Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            ConfigError::at(
                path,
                text,
                e.span().map(|s| s.start),
                "",
                e.message().trim(),
            )
        })?;
        let file: schema::File = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            ConfigError::at(
                path,
                text,
                inner.span().map(|s| s.start),
                if key == "." { String::new() } else { key },
                inner.message().trim(),
            )
        })?;
        let mut projects = Vec::new();
        for (i, p) in file.projects.into_iter().enumerate() {
            let at = |msg: String| {
                ConfigError::at(
                    path,
                    text,
                    Some(p.name.span().start),
                    format!("projects[{i}].name"),
                    msg,
                )
            };
            let name = p.name.get_ref().clone();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(at(format!(
                    "project name {name:?}: use letters, digits, '-', '_' and '.'"
                )));
            }
            if projects.iter().any(|q: &Project| q.name == name) {
                return Err(at(format!(
                    "project name {name:?} is used twice; names must be unique"
                )));
            }
            if p.db.is_none() && p.storage.is_none() {
                return Err(at(format!(
                    "project {name:?} has neither a [projects.db] nor a [projects.storage] table: nothing to back up"
                )));
            }
            projects.push(Project {
                name,
                tags: p.tags,
                db: p.db,
                storage: p.storage,
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            repository: file.repository,
            retention: file.retention,
            prune: file.prune,
            check: file.check,
            healthcheck: file.healthcheck,
            offsite: file.offsite,
            projects,
        })
    }

    /// The retention policy: the configured rules, or the default (keep within 21 days).
    pub fn policy(&self) -> Policy {
        let r = &self.retention;
        Policy {
            last: r.keep_last,
            hourly: r.keep_hourly,
            daily: r.keep_daily,
            weekly: r.keep_weekly,
            monthly: r.keep_monthly,
            yearly: r.keep_yearly,
            within: r.keep_within,
            tags: r.keep_tags.clone(),
        }
        .effective()
    }

    pub fn project(&self, name: &str) -> Result<&Project> {
        self.projects
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.projects.iter().map(|p| p.name.as_str()).collect();
                Error::Invalid(format!(
                    "no project {name:?} in {} (it has: {})",
                    self.path.display(),
                    names.join(", ")
                ))
            })
    }

    /// The local index cache directory: the configured one, else the default.
    pub fn cache_dir(&self) -> PathBuf {
        self.repository
            .cache_dir
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(crate::repo::default_cache_dir)
    }
}

impl Secret {
    /// Read the secret: a file's first line, a command's first output line, or a variable.
    pub fn read(&self) -> Result<Zeroizing<String>> {
        let v = match self {
            Secret::File(f) => crate::secret::secret_from_file(&expand(f)?)?,
            Secret::Command(c) => crate::secret::secret_from_command(c)?,
            Secret::Env(v) => Zeroizing::new(
                std::env::var(v)
                    .map_err(|_| Error::Invalid(format!("environment variable {v} is not set")))?,
            ),
        };
        if v.is_empty() {
            return Err(Error::Invalid(format!("{} is empty", self.describe())));
        }
        crate::redact::remember(&v);
        Ok(v)
    }

    /// Where the secret comes from, for summaries (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Secret::File(f) => format!("file {f}"),
            Secret::Command(_) => "command (output not shown)".into(),
            Secret::Env(v) => format!("environment variable {v}"),
        }
    }
}

/// Expand `${VAR}` in a path; an unset variable is an error naming it.
pub fn expand(s: &str) -> Result<PathBuf> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| Error::Invalid(format!("{s}: unclosed ${{")))?
            + i;
        let var = &rest[i + 2..end];
        let val = std::env::var(var).map_err(|_| {
            let hint = if var == "CREDENTIALS_DIRECTORY" {
                " (systemd sets it for a unit with LoadCredential=)"
            } else {
                ""
            };
            Error::Invalid(format!("{s}: environment variable {var} is not set{hint}"))
        })?;
        out.push_str(&val);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests;
