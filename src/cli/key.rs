//! `snap key add|list|remove|passwd`: the passwords (key files) that open the repository.
//! Every key file wraps the same master secret, so adding or removing one never touches data.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;
use snap::backend::Backend;
use snap::crypto::keyfile::{KdfParams, KeyFile};
use snap::repo::Repository;
use snap::repo::lock::LockKind;
use zeroize::Zeroizing;

use super::{Global, OpenRepo, exit, output, password};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a password: a new key file for the same master key (no data is re-encrypted).
    Add(NewKeyArgs),
    /// List the key files; `*` marks the one your password opened.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key file, so its password no longer opens the repository. The key in use and
    /// the last key file cannot be removed.
    Remove {
        /// Key id, or a unique prefix of it (see `snap key list`).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change the password: add a key file for the new password, then remove the one in use.
    Passwd(NewKeyArgs),
}

#[derive(clap::Args)]
pub struct NewKeyArgs {
    /// Read the new password from this file (first line). Default: $SNAP_NEW_PASSWORD, else
    /// ask twice on the terminal.
    #[arg(long)]
    new_password_file: Option<PathBuf>,
    #[command(flatten)]
    kdf: super::password::KdfArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl NewKeyArgs {
    fn kdf(&self) -> KdfParams {
        self.kdf.params()
    }
}

pub fn run(g: &Global, c: &Command) -> anyhow::Result<u8> {
    match c {
        Command::Add(a) => add(g, a),
        Command::List { json } => list(g, *json),
        Command::Remove { id, json } => remove(g, id, *json),
        Command::Passwd(a) => passwd(g, a),
    }
}

/// A key file found under `keys/`.
struct Key {
    /// `keys/<hex>`.
    name: String,
    file: Result<KeyFile, String>,
}

impl Key {
    fn id(&self) -> &str {
        self.name.strip_prefix("keys/").unwrap_or(&self.name)
    }
    fn short(&self) -> &str {
        let id = self.id();
        &id[..id.len().min(8)]
    }
}

#[derive(Serialize)]
struct KeyJson<'a> {
    id: &'a str,
    short_id: &'a str,
    current: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfJson<'a>>,
    /// Why the key file cannot be read, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The KDF of a key file, without its salt (not secret, but of no use to a reader).
#[derive(Serialize)]
struct KdfJson<'a> {
    algorithm: &'a str,
    #[serde(flatten)]
    params: KdfParams,
}

impl<'a> KeyJson<'a> {
    fn new(k: &'a Key, current: &str) -> Self {
        let f = k.file.as_ref().ok();
        KeyJson {
            id: k.id(),
            short_id: k.short(),
            current: k.name == current,
            created: f.map(|f| {
                f.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
            host: f.map(|f| f.host.as_str()),
            username: f.map(|f| f.username.as_str()),
            kdf: f.map(|f| KdfJson {
                algorithm: &f.kdf.algorithm,
                params: f.kdf.params,
            }),
            error: k.file.as_ref().err().map(String::as_str),
        }
    }
}

/// All key files, oldest first (unreadable ones last).
fn keys(backend: &dyn Backend) -> anyhow::Result<Vec<Key>> {
    let mut out = Vec::new();
    for obj in backend.list("keys/")? {
        let file = match backend.get(&obj.name) {
            Ok(b) => KeyFile::from_bytes(&b).map_err(|e| e.to_string()),
            Err(snap::Error::NotFound { .. }) => continue, // removed meanwhile
            Err(e) => return Err(e.into()),
        };
        out.push(Key {
            name: obj.name,
            file,
        });
    }
    out.sort_by(|a, b| {
        let t = |k: &Key| k.file.as_ref().map(|f| f.created).ok();
        t(a).is_none()
            .cmp(&t(b).is_none())
            .then(t(a).cmp(&t(b)))
            .then(a.name.cmp(&b.name))
    });
    Ok(out)
}

fn describe(k: &Key) -> String {
    match &k.file {
        Ok(f) => format!(
            "key {} (created {} on {} by {})",
            k.short(),
            f.created
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S"),
            f.host,
            f.username
        ),
        Err(_) => format!("key {} (unreadable)", k.short()),
    }
}

/// Open with the current password, keeping it to compare with the new one.
fn open(g: &Global) -> anyhow::Result<(OpenRepo, Zeroizing<String>)> {
    let backend = g.existing_backend()?;
    let pw = password::get(g, false)?;
    let repo = Repository::open(backend, pw.as_bytes(), &g.cache_dir())?;
    Ok((
        OpenRepo {
            repo,
            quiet: g.quiet,
        },
        pw,
    ))
}

/// The new password, which must differ from the one in use.
fn new_password(a: &NewKeyArgs, current: &str) -> anyhow::Result<Zeroizing<String>> {
    let new = password::get_new(a.new_password_file.as_deref())?;
    if *new == current {
        bail!(
            "the new password is the same as the one the repository was opened with; choose another"
        );
    }
    Ok(new)
}

/// Write a key file for `pw` and check, by reading it back, that it opens to this repository's
/// master key. Returns its name.
fn add_verified(repo: &Repository, pw: &str, kdf: KdfParams) -> anyhow::Result<String> {
    let backend = repo.backend();
    let name = snap::repo::add_key_file(&**backend, repo.key(), pw.as_bytes(), kdf)?;
    let check = backend
        .get(&name)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(KeyFile::from_bytes(&b)?.open(pw.as_bytes())?));
    match check {
        Ok(Some(k)) if k.secret() == repo.key().secret() => Ok(name),
        other => {
            let _ = backend.delete(&name);
            let why = match other {
                Err(e) => format!("{e:#}"),
                _ => "it does not open with the new password".into(),
            };
            bail!(
                "the new key file did not read back correctly ({why}); it was removed and nothing changed"
            )
        }
    }
}

fn add(g: &Global, a: &NewKeyArgs) -> anyhow::Result<u8> {
    let (repo, current_pw) = open(g)?;
    let new = new_password(a, &current_pw)?;
    let name = add_verified(&repo, &new, a.kdf())?;
    let all = keys(&**repo.backend())?;
    let added = all
        .iter()
        .find(|k| k.name == name)
        .context("the new key file vanished")?;
    if a.json {
        output::json(&KeyJson::new(added, repo.key_name()))?;
    } else {
        tell!("added {}", describe(added));
        tell!(
            "The repository now opens with any of {} passwords (`snap key list`).",
            all.len()
        );
    }
    Ok(exit::OK)
}

fn list(g: &Global, json: bool) -> anyhow::Result<u8> {
    let (repo, _) = open(g)?;
    let all = keys(&**repo.backend())?;
    let current = repo.key_name();
    if json {
        let v: Vec<_> = all.iter().map(|k| KeyJson::new(k, current)).collect();
        output::json(&v)?;
        return Ok(exit::OK);
    }
    tell!("  {:<8}  {:<19}  {:<16}  user", "id", "created", "host");
    for k in &all {
        let mark = if k.name == current { '*' } else { ' ' };
        match &k.file {
            Ok(f) => tell!(
                "{mark} {:<8}  {:<19}  {:<16}  {}",
                k.short(),
                f.created
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S"),
                f.host,
                f.username
            ),
            Err(e) => tell!("{mark} {:<8}  unreadable: {e}", k.short()),
        }
    }
    tell!(
        "{} key{}; * = the key your password opened",
        all.len(),
        if all.len() == 1 { "" } else { "s" }
    );
    Ok(exit::OK)
}

/// The one key whose id starts with `prefix`.
fn find<'a>(all: &'a [Key], prefix: &str) -> anyhow::Result<&'a Key> {
    let p = prefix
        .strip_prefix("keys/")
        .unwrap_or(prefix)
        .to_ascii_lowercase();
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        usage!("{prefix:?} is not a key id (hex digits; see `snap key list`)");
    }
    let found: Vec<&Key> = all.iter().filter(|k| k.id().starts_with(&p)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!("no key file matches {prefix:?} (see `snap key list`)"),
        many => bail!(
            "key prefix {prefix:?} is ambiguous: it matches {}",
            many.iter()
                .map(|k| k.short())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Delete key file `target`, then make sure a readable key file is left; if a concurrent removal
/// took the others meanwhile, put `target` back and fail (each remover deletes before it looks,
/// so of two racing removals at least one sees the other's and restores).
fn delete_key(backend: &dyn Backend, target: &Key) -> anyhow::Result<()> {
    let bytes = backend.get(&target.name)?;
    backend.delete(&target.name)?;
    let left = keys(backend)?;
    if !left.iter().any(|k| k.file.is_ok()) {
        backend
            .put(&target.name, &bytes)
            .context("putting back a key file removed during a concurrent key removal")?;
        bail!(
            "another process removed the other key files meanwhile; {} was put back so the repository can still be opened",
            describe(target)
        );
    }
    Ok(())
}

fn remove(g: &Global, prefix: &str, json: bool) -> anyhow::Result<u8> {
    let (repo, _) = open(g)?;
    let _lock = repo.lock(LockKind::Shared, "key remove")?;
    let backend = &**repo.backend();
    let all = keys(backend)?;
    let target = find(&all, prefix)?;
    if !all.iter().any(|k| k.name != target.name && k.file.is_ok()) {
        bail!(
            "refusing to remove {}: it is the last key file, and without one the repository can never be opened again",
            describe(target)
        );
    }
    if target.name == repo.key_name() {
        bail!(
            "refusing to remove {}: it is the key in use (your password opened it). Open the repository with \
             another password to remove it, or use `snap key passwd` to change this password",
            describe(target)
        );
    }
    delete_key(backend, target)?;
    if json {
        output::json(&serde_json::json!({ "removed": KeyJson::new(target, repo.key_name()) }))?;
    } else {
        tell!(
            "removed {}; its password no longer opens the repository",
            describe(target)
        );
    }
    Ok(exit::OK)
}

fn passwd(g: &Global, a: &NewKeyArgs) -> anyhow::Result<u8> {
    let (repo, old_pw) = open(g)?;
    let new = new_password(a, &old_pw)?;
    let _lock = repo.lock(LockKind::Shared, "key passwd")?;
    let backend = &**repo.backend();
    let name = add_verified(&repo, &new, a.kdf())?;
    let all = keys(backend)?;
    let added = all
        .iter()
        .find(|k| k.name == name)
        .context("the new key file vanished")?;
    let old = all.iter().find(|k| k.name == repo.key_name());
    match old {
        Some(old) => delete_key(backend, old)?,
        None => say!("warning: the old key file was already removed by another process"),
    }
    // Other key files may wrap the same old password (e.g. added twice); then it still works.
    let still_open: Vec<&Key> = all
        .iter()
        .filter(|k| k.name != name && k.name != repo.key_name())
        .filter(|k| {
            k.file
                .as_ref()
                .is_ok_and(|f| matches!(f.open(old_pw.as_bytes()), Ok(Some(_))))
        })
        .collect();
    if a.json {
        output::json(&serde_json::json!({
            "added": KeyJson::new(added, &name),
            "removed": old.map(|o| KeyJson::new(o, &name)),
            "old_password_still_opens": still_open.iter().map(|k| k.id()).collect::<Vec<_>>(),
        }))?;
    } else {
        tell!("added {} for the new password", describe(added));
        if let Some(old) = old {
            tell!("removed {}", describe(old));
        }
    }
    if still_open.is_empty() {
        if !a.json {
            tell!("The old password no longer opens the repository; the data was not touched.");
        }
    } else if !g.quiet {
        for k in &still_open {
            say!(
                "warning: {} also opens with the old password; remove it with `snap key remove {}`",
                describe(k),
                k.short()
            );
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use snap::backend::MemoryBackend;
    use snap::crypto::MasterKey;

    const FAST: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn removal_never_leaves_the_repository_without_a_key() {
        let b = MemoryBackend::new();
        let mk = MasterKey::generate();
        let a = snap::repo::add_key_file(&b, &mk, b"one", FAST).unwrap();
        let c = snap::repo::add_key_file(&b, &mk, b"two", FAST).unwrap();
        let all = keys(&b).unwrap();
        assert_eq!(all.len(), 2);
        let target = all.iter().find(|k| k.name == a).unwrap();
        assert_eq!(find(&all, &target.id()[..12]).unwrap().name, a);
        assert!(find(&all, "").is_err() && find(&all, "xyz").is_err());

        // A concurrent removal took the other key after our checks: ours is put back.
        let bytes_a = b.get(&a).unwrap();
        b.delete(&c).unwrap();
        let err = delete_key(&b, target).unwrap_err().to_string();
        assert!(err.contains("was put back"), "{err}");
        assert_eq!(b.get(&a).unwrap(), bytes_a);

        // With another readable key left, the removal stands.
        let c = snap::repo::add_key_file(&b, &mk, b"two", FAST).unwrap();
        delete_key(&b, target).unwrap();
        let left: Vec<String> = keys(&b).unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(left, vec![c]);
    }
}
