//! Finding PostgreSQL client tools: a pg_dump whose major version is at least the server's,
//! with pg_dumpall and psql from the same installation.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// One installation's client tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTools {
    pub dir: PathBuf,
    pub major: u32,
    /// `pg_dump --version` output, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
    pub version: String,
}

impl PgTools {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    pub fn command(&self, name: &str) -> Command {
        Command::new(self.tool(name))
    }
}

/// Major version from `pg_dump --version` output ("… 15.18 …" → 15, "… 9.6.24" → 9).
pub fn parse_major(version_output: &str) -> Option<u32> {
    version_output
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .and_then(|w| w.split('.').next())
        .and_then(|m| {
            m.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
}

fn probe(dir: &Path) -> Option<PgTools> {
    let pg_dump = dir.join("pg_dump");
    if !pg_dump.is_file() || !dir.join("pg_dumpall").is_file() || !dir.join("psql").is_file() {
        return None;
    }
    let out = Command::new(&pg_dump).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(PgTools {
        dir: dir.to_path_buf(),
        major: parse_major(&version)?,
        version,
    })
}

/// Every installation found: `explicit` (--pg-bin) alone if given, else
/// /usr/lib/postgresql/*/bin and the directories on PATH.
pub fn candidates(explicit: Option<&Path>) -> Vec<PgTools> {
    if let Some(d) = explicit {
        return probe(d).into_iter().collect();
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut out: Vec<PgTools> = Vec::new();
    for d in dirs {
        if let Some(t) = probe(&d)
            && !out.iter().any(|o| o.version == t.version)
        {
            out.push(t);
        }
    }
    out
}

/// The newest installation found (any psql talks to any supported server).
pub fn newest(explicit: Option<&Path>) -> Result<PgTools> {
    candidates(explicit).into_iter().max_by_key(|t| t.major).ok_or_else(|| {
        Error::Invalid(match explicit {
            Some(d) => format!("no pg_dump, pg_dumpall and psql in {}", d.display()),
            None => "no PostgreSQL client tools found (pg_dump, pg_dumpall, psql): install postgresql-client (apt) or pass --pg-bin".into(),
        })
    })
}

/// The installation to dump a server of major version `server_major` with: the oldest whose
/// major is ≥ the server's (closest to the server, as the Supabase CLI does).
pub fn choose(found: &[PgTools], server_major: u32) -> Result<PgTools> {
    found
        .iter()
        .filter(|t| t.major >= server_major)
        .min_by_key(|t| t.major)
        .cloned()
        .ok_or_else(|| {
            let have = if found.is_empty() {
                "none found".to_string()
            } else {
                found.iter().map(|t| format!("{} ({})", t.major, t.dir.display())).collect::<Vec<_>>().join(", ")
            };
            Error::Invalid(format!(
                "the server runs PostgreSQL {server_major}; dumping it needs pg_dump {server_major} or newer (installed: {have}). \
                 Install postgresql-client-{server_major} (apt) or point --pg-bin at its bin directory"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_choice() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("pg_dump (PostgreSQL) 17devel"), Some(17));
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        let t = |m: u32| PgTools {
            dir: PathBuf::from(format!("/pg/{m}")),
            major: m,
            version: format!("pg_dump (PostgreSQL) {m}.1"),
        };
        let found = vec![t(14), t(17), t(15)];
        assert_eq!(choose(&found, 15).unwrap().major, 15);
        assert_eq!(choose(&found, 16).unwrap().major, 17);
        let err = choose(&found, 18).unwrap_err().to_string();
        assert!(
            err.contains("PostgreSQL 18")
                && err.contains("postgresql-client-18")
                && err.contains("17 (/pg/17)"),
            "{err}"
        );
        assert!(!err.contains('\\') && !err.contains("  "), "{err}");
    }
}
