//! Where the database is and how to reach it: a `postgresql://` URL or a Supabase project ref.
//! The password never goes on a command line: children get it in `PGPASSWORD`, so passwords with
//! `@ : / ? # % *` work without any encoding. URLs are shown masked.

use std::process::Command;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Supabase's transaction pooler port: pg_dump needs a session, which it does not give.
pub const TRANSACTION_POOLER_PORT: u16 = 6543;

#[derive(Clone)]
pub struct ConnSpec {
    /// The URL without a password (query parameters such as sslmode kept).
    url: url::Url,
    password: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnSpec({})", self.display())
    }
}

/// Which database: a connection URL, or a Supabase project ref (its direct connection, or the
/// session pooler at `pooler_host`). Given by `--db-url`/`--project-ref` or a `[projects.db]`
/// table; [`ConnSpec::from_target`] is the one way either becomes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    Url(String),
    ProjectRef {
        project_ref: String,
        pooler_host: Option<String>,
    },
}

impl ConnSpec {
    /// The connection to `target`, with `password` when one was given.
    pub fn from_target(target: &DbTarget, password: Option<Zeroizing<String>>) -> Result<ConnSpec> {
        match target {
            DbTarget::Url(u) => ConnSpec::from_url(u, password),
            DbTarget::ProjectRef {
                project_ref,
                pooler_host,
            } => ConnSpec::from_project_ref(project_ref, pooler_host.as_deref(), password),
        }
    }

    /// From a `postgresql://` (or `postgres://`) URL. A password inside the URL is taken out
    /// (percent-decoded) unless `password` is given, which wins.
    pub fn from_url(s: &str, password: Option<Zeroizing<String>>) -> Result<ConnSpec> {
        let masked = crate::redact::url_passwords(s);
        let mut url = url::Url::parse(s)
            .map_err(|e| Error::Invalid(format!("database URL {masked}: {e}")))?;
        if !matches!(url.scheme(), "postgresql" | "postgres") {
            return Err(Error::Invalid(format!(
                "database URL {masked}: expected postgresql://user@host:port/database"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::Invalid(format!("database URL {masked}: no host")));
        }
        let in_url = url.password().map(|p| Zeroizing::new(percent_decode(p)));
        for p in in_url.iter().chain(password.iter()) {
            crate::redact::remember(p);
        }
        let _ = url.set_password(None);
        let spec = ConnSpec {
            url,
            password: password.or(in_url),
        };
        spec.refuse_transaction_pooler()?;
        Ok(spec)
    }

    /// A Supabase project: the direct host `db.<ref>.supabase.co:5432`, or with `pooler_host`
    /// the session pooler (`<pooler_host>:5432`, user `postgres.<ref>`). TLS required.
    pub fn from_project_ref(
        project_ref: &str,
        pooler_host: Option<&str>,
        password: Option<Zeroizing<String>>,
    ) -> Result<ConnSpec> {
        if project_ref.is_empty() || !project_ref.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Invalid(format!(
                "project ref {project_ref:?}: expected letters and digits (the <ref> in <ref>.supabase.co)"
            )));
        }
        let url = match pooler_host {
            Some(h) => {
                format!("postgresql://postgres.{project_ref}@{h}:5432/postgres?sslmode=require")
            }
            None => format!(
                "postgresql://postgres@db.{project_ref}.supabase.co:5432/postgres?sslmode=require"
            ),
        };
        ConnSpec::from_url(&url, password)
    }

    fn refuse_transaction_pooler(&self) -> Result<()> {
        if self.url.port() == Some(TRANSACTION_POOLER_PORT) {
            return Err(Error::Invalid(format!(
                "{} uses port 6543, Supabase's transaction pooler, which cannot keep the one session a backup or a restore needs. \
                 Use the direct connection (db.<ref>.supabase.co:5432) or the session pooler (port 5432)",
                self.display()
            )));
        }
        Ok(())
    }

    /// The URL for messages: no password in it.
    pub fn display(&self) -> String {
        self.url.to_string()
    }

    /// The database name in the URL (`postgres` when absent).
    pub fn database(&self) -> String {
        let p = self.url.path().trim_start_matches('/');
        if p.is_empty() {
            "postgres".into()
        } else {
            percent_decode(p)
        }
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Point `cmd` (psql, pg_dump, pg_dumpall) at the database: `--dbname=<url>` and the
    /// password in the environment.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.arg(format!("--dbname={}", self.url));
        self.apply_env(cmd);
    }

    /// Only the environment (for tools that take the URL some other way).
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env("PGAPPNAME", "snap");
        cmd.env_remove("PGPASSWORD");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p.as_str());
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_passwords() {
        let c = ConnSpec::from_url("postgresql://postgres:p%40ss%3Aw%2Fo%25rd@db.abc.supabase.co:5432/postgres?sslmode=require", None).unwrap();
        assert_eq!(
            c.display(),
            "postgresql://postgres@db.abc.supabase.co:5432/postgres?sslmode=require"
        );
        assert_eq!(
            c.password.as_deref().map(|s| s.as_str()),
            Some("p@ss:w/o%rd")
        );
        assert_eq!(c.database(), "postgres");
        let c = ConnSpec::from_url(
            "postgres://u:inurl@h/shop",
            Some(Zeroizing::new("given".into())),
        )
        .unwrap();
        assert_eq!(c.password.as_deref().map(|s| s.as_str()), Some("given"));
        assert_eq!(c.database(), "shop");
        let mut cmd = Command::new("true");
        c.apply(&mut cmd);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, vec!["--dbname=postgres://u@h/shop"]);
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "PGPASSWORD" && v.is_some_and(|v| v == "given"))
        );
    }

    #[test]
    fn project_refs_and_poolers() {
        let c = ConnSpec::from_project_ref("abcdefgh", None, None).unwrap();
        assert_eq!(
            c.display(),
            "postgresql://postgres@db.abcdefgh.supabase.co:5432/postgres?sslmode=require"
        );
        let c = ConnSpec::from_project_ref(
            "abcdefgh",
            Some("aws-0-eu-central-1.pooler.supabase.com"),
            None,
        )
        .unwrap();
        assert_eq!(
            c.display(),
            "postgresql://postgres.abcdefgh@aws-0-eu-central-1.pooler.supabase.com:5432/postgres?sslmode=require"
        );
        let err = ConnSpec::from_url(
            "postgresql://postgres.abc:secret@aws-0-x.pooler.supabase.com:6543/postgres",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("transaction pooler") && !err.contains("secret"),
            "{err}"
        );
        assert!(
            !err.contains('\\') && !err.contains("  ") && !err.contains("pg_dump"),
            "one sentence, for backups and restores alike: {err}"
        );
        assert!(ConnSpec::from_project_ref("a/b", None, None).is_err());
        assert!(ConnSpec::from_url("mysql://x@h/db", None).is_err());
    }
}
