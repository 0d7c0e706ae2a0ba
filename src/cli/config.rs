//! `snap config init` (a commented template) and `snap config check` (validate, and show what
//! the file configures with every secret left out).

use std::path::PathBuf;

use serde::Serialize;
use snap::config::{Config, DbTarget, Secret};

use super::{Global, exit, output};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a commented configuration template to standard output
    /// (`snap config init > /etc/snap/snap.toml`).
    Init,
    /// Validate a configuration file and show what it configures (secrets never shown).
    /// Exit status 2 when it is invalid; the message names the file, line and key.
    Check {
        /// The configuration file.
        #[arg(long, short = 'c', env = "SNAP_CONFIG")]
        config: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(_g: &Global, c: &Command) -> anyhow::Result<u8> {
    match c {
        Command::Init => {
            print!("{}", snap::config::TEMPLATE);
            Ok(exit::OK)
        }
        Command::Check { config, json } => {
            let cfg = match Config::load(config) {
                Ok(c) => c,
                Err(e) => usage!("{e}"),
            };
            let unreadable = unreadable_files(&cfg);
            if !unreadable.is_empty() {
                for u in &unreadable {
                    say!("error: {}: {u}", cfg.path.display());
                }
                say!(
                    "the configuration names secret files this user cannot read: create them, fix their permissions, or run the check as the user the job runs as"
                );
                return Ok(exit::USAGE);
            }
            let s = summary(&cfg);
            if *json {
                output::json(&s)?;
            } else {
                print_summary(&s);
            }
            Ok(exit::OK)
        }
    }
}

/// The secret files of the configuration (key and secret) that exist in this environment but
/// cannot be read: `repository.password_file = "/etc/snap/pw": cannot read it: No such file…`.
/// A path with a variable that is unset here (`${CREDENTIALS_DIRECTORY}`, set by systemd) is
/// not checked: the summary says so.
fn unreadable_files(c: &Config) -> Vec<String> {
    let mut secrets: Vec<(String, &Secret)> =
        vec![("repository.password_file".into(), &c.repository.password)];
    if let Some(o) = &c.offsite {
        secrets.push(("offsite.password_file".into(), &o.password));
    }
    for p in &c.projects {
        if let Some(pw) = p.db.as_ref().and_then(|d| d.password.as_ref()) {
            secrets.push((format!("projects {:?}: db_password_file", p.name), pw));
        }
        if let Some(st) = &p.storage {
            secrets.push((
                format!("projects {:?}: service_key_file", p.name),
                &st.service_key,
            ));
        }
    }
    secrets
        .into_iter()
        .filter_map(|(key, s)| {
            let Secret::File(f) = s else { return None };
            let path = snap::config::expand(f).ok()?;
            let e = std::fs::File::open(&path).err()?;
            Some(format!("{key} = {f:?}: cannot read it: {e}"))
        })
        .collect()
}

#[derive(Serialize)]
struct SecretJson {
    source: String,
    /// For files: whether it can be read here (`${VAR}` expanded); `None` for others.
    readable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

fn secret(s: &Secret) -> SecretJson {
    let (readable, problem) = match s {
        Secret::File(f) => match snap::config::expand(f)
            .and_then(|p| std::fs::File::open(&p).map_err(|e| snap::Error::io(&p, e)))
        {
            Ok(_) => (Some(true), None),
            Err(e) => (
                Some(false),
                Some(
                    e.to_string()
                        .trim_start_matches("invalid argument: ")
                        .to_string(),
                ),
            ),
        },
        Secret::Env(v) if std::env::var_os(v).is_none() => {
            (None, Some(format!("{v} is not set in this environment")))
        }
        _ => (None, None),
    };
    SecretJson {
        source: s.describe(),
        readable,
        problem,
    }
}

#[derive(Serialize)]
struct Summary {
    file: String,
    repository: String,
    password: SecretJson,
    cache_dir: String,
    host: String,
    retention: String,
    prune: Option<String>,
    check: Option<String>,
    healthcheck: Option<String>,
    offsite: Option<String>,
    projects: Vec<ProjectJson>,
}

#[derive(Serialize)]
struct ProjectJson {
    name: String,
    tags: Vec<String>,
    db: Option<DbJson>,
    storage: Option<StorageJson>,
}

#[derive(Serialize)]
struct DbJson {
    target: String,
    password: Option<SecretJson>,
    pg_bin: Option<String>,
}

#[derive(Serialize)]
struct StorageJson {
    api_base: String,
    service_key: SecretJson,
    buckets: Vec<String>,
    concurrency: usize,
}

fn summary(c: &Config) -> Summary {
    let r = &c.repository;
    Summary {
        file: c.path.display().to_string(),
        repository: snap::redact::url_passwords(&r.location),
        password: secret(&r.password),
        cache_dir: c.cache_dir().display().to_string(),
        host: r.host.clone().unwrap_or_else(snap::util::hostname),
        retention: c.policy().to_string(),
        prune: c.prune.enabled.then(|| {
            let repack = match c.prune.max_repack {
                snap::ops::prune::RepackLimit::Percent(p) => format!("{p}%"),
                snap::ops::prune::RepackLimit::Bytes(b) => output::bytes(b),
            };
            let grace = c
                .prune
                .grace
                .to_std()
                .map(|d| humantime::format_duration(d).to_string())
                .unwrap_or_default();
            format!("max-repack {repack}, grace {grace}")
        }),
        check: c.check.enabled.then(|| match &c.check.read_data_subset {
            Some(s) => format!("structure, and read-data-subset {s}"),
            None => "structure only".into(),
        }),
        // The path of a ping URL is its secret: show where it goes, not the whole URL.
        healthcheck: c.healthcheck.as_ref().map(|h| {
            format!(
                "{}://{}/… (timeout {})",
                h.url.scheme(),
                h.url.host_str().unwrap_or("?"),
                humantime::format_duration(h.timeout)
            )
        }),
        offsite: c.offsite.as_ref().map(|o| {
            format!(
                "{} (parallel {})",
                snap::redact::url_passwords(&o.location),
                o.parallel
            )
        }),
        projects: c
            .projects
            .iter()
            .map(|p| ProjectJson {
                name: p.name.clone(),
                tags: p.all_tags(),
                db: p.db.as_ref().map(|d| DbJson {
                    target: match &d.target {
                        DbTarget::Url(u) => snap::redact::url_passwords(u),
                        DbTarget::ProjectRef {
                            project_ref,
                            pooler_host: None,
                        } => format!("project {project_ref} (db.{project_ref}.supabase.co:5432)"),
                        DbTarget::ProjectRef {
                            project_ref,
                            pooler_host: Some(h),
                        } => format!("project {project_ref} via session pooler {h}:5432"),
                    },
                    password: d.password.as_ref().map(secret),
                    pg_bin: d.pg_bin.clone(),
                }),
                storage: p.storage.as_ref().map(|s| StorageJson {
                    api_base: s.api_base.clone(),
                    service_key: secret(&s.service_key),
                    buckets: s.buckets.clone(),
                    concurrency: s.concurrency,
                }),
            })
            .collect(),
    }
}

fn secret_line(s: &SecretJson) -> String {
    match &s.problem {
        Some(p) => format!("{} — WARNING: not readable here: {p}", s.source),
        None => s.source.clone(),
    }
}

fn print_summary(s: &Summary) {
    println!("{} is valid", s.file);
    println!("  repository   {}", s.repository);
    println!("  password     {}", secret_line(&s.password));
    println!("  cache        {}", s.cache_dir);
    println!("  host         {}", s.host);
    println!("  retention    {}", s.retention);
    println!(
        "  prune        {}",
        s.prune.as_deref().unwrap_or("disabled")
    );
    println!(
        "  check        {}",
        s.check.as_deref().unwrap_or("disabled")
    );
    println!(
        "  healthcheck  {}",
        s.healthcheck.as_deref().unwrap_or("none")
    );
    println!("  offsite      {}", s.offsite.as_deref().unwrap_or("none"));
    for p in &s.projects {
        println!("project {} (tags {})", p.name, p.tags.join(", "));
        if let Some(d) = &p.db {
            println!("  db           {}", d.target);
            println!(
                "  db password  {}",
                d.password
                    .as_ref()
                    .map(secret_line)
                    .unwrap_or_else(|| "none (~/.pgpass or no password)".into())
            );
            if let Some(b) = &d.pg_bin {
                println!("  pg_bin       {b}");
            }
        }
        if let Some(st) = &p.storage {
            let buckets = if st.buckets.is_empty() {
                "all buckets".to_string()
            } else {
                st.buckets.join(", ")
            };
            println!(
                "  storage      {} ({buckets}, concurrency {})",
                st.api_base, st.concurrency
            );
            println!("  service key  {}", secret_line(&st.service_key));
        }
    }
}
