//! The repository handle: init/open (config, key files, local index), the one chunk read path,
//! and snapshot manifests.

mod config;
pub mod deletion;
pub mod lock;
pub mod probe;
mod read;
pub mod reserve;
mod saver;

pub use config::{Config, DEFAULT_PACK_SIZE, FORMAT_VERSION};
pub use read::{ReadTuning, for_each_fetched};
pub use saver::{SaveStats, Saver, TreeWriter};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::chunker::{Chunker, ChunkerParams};
use crate::crypto::MasterKey;
use crate::crypto::keyfile::{KdfParams, KeyFile};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, SyncReport};
use crate::snapshot::{Manifest, Selector, Snapshot, Tree};

/// Choices made once, at `snap init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub pack_size: u32,
    pub compression: i32,
    pub kdf: KdfParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            compression: 3,
            kdf: KdfParams::default(),
        }
    }
}

/// Where the local index cache lives: `$SNAP_CACHE_DIR`, else the XDG cache dir + `/snap`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SNAP_CACHE_DIR") {
        return PathBuf::from(d);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("snap")
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    key: Arc<MasterKey>,
    config: Config,
    key_name: String,
    /// Key files that were damaged or foreign when the repository was opened (said, not fatal).
    key_warnings: Vec<String>,
    index_path: PathBuf,
    /// Opened and synced on first use, so commands that read only manifests never touch it.
    index: OnceLock<(Arc<Index>, SyncReport)>,
    index_init: Mutex<()>,
}

impl Repository {
    /// Create a repository: key file first, `config` last (its presence marks a repository).
    pub fn init(backend: &dyn Backend, password: &[u8], opts: &InitOptions) -> Result<Config> {
        Repository::init_with_key(backend, &MasterKey::generate(), password, opts)
    }

    /// Create a repository that shares `other`'s master key and chunker parameters (`snap init
    /// --copy-key-from`): chunk ids and chunk boundaries match, so `snap copy` between the two
    /// moves packs as they are, without re-chunking or re-encrypting.
    pub fn init_sharing_key(
        backend: &dyn Backend,
        other: &Repository,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Config> {
        let opts = InitOptions {
            chunker: other.config.chunker.clone(),
            ..opts.clone()
        };
        Repository::init_with_key(backend, &other.key, password, &opts)
    }

    fn init_with_key(
        backend: &dyn Backend,
        key: &MasterKey,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Config> {
        if backend.exists("config")? {
            return Err(Error::AlreadyInitialized(backend.location()));
        }
        if !backend.list("")?.is_empty() {
            return Err(Error::Invalid(format!(
                "{} is not empty and holds no snap repository; choose an empty or new directory",
                backend.location()
            )));
        }
        opts.chunker.validate()?;
        if backend.is_remote() {
            let problems = probe::problems(backend)?;
            if !problems.is_empty() {
                return Err(Error::ServerUnsupported {
                    location: backend.location(),
                    problems: problems.join("; "),
                });
            }
        }
        let config = Config::new(opts.chunker.clone(), opts.pack_size, opts.compression);
        let key_name = add_key_file(backend, key, password, opts.kdf)?;
        reserve::ensure(backend);
        // Conditional create: of two racing inits, the second fails instead of replacing the
        // first's config (on servers that honour If-None-Match; repo-format.md §9.3).
        if !backend.put_new("config", &config.to_bytes())? {
            let _ = backend.delete(&key_name);
            return Err(Error::AlreadyInitialized(backend.location()));
        }
        Ok(config)
    }

    /// The backend of the repository at `location` (a path or an `s3://` URL), refusing a
    /// location that holds none ([`Error::NotARepository`]) before any password is asked for.
    /// With [`Repository::open`], the one way the CLI and `snap run` open a repository.
    pub fn existing(location: &str) -> Result<Arc<dyn Backend>> {
        let backend: Arc<dyn Backend> = Arc::from(crate::backend::open_location(location)?);
        if !backend.exists("config")? {
            return Err(Error::NotARepository(backend.location()));
        }
        Ok(backend)
    }

    /// Open with a password; the index lives under `cache_dir/<repository id>/`.
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &[u8],
        cache_dir: &std::path::Path,
    ) -> Result<Repository> {
        let config = match backend.get_bounded("config", limits::CONFIG) {
            Ok(b) => Config::from_bytes(&b)?,
            Err(Error::NotFound { .. }) => return Err(Error::NotARepository(backend.location())),
            Err(e) => return Err(e),
        };
        let (key, key_name, key_warnings) = unlock(&*backend, password)?;
        let index_path = cache_dir.join(&config.id).join("index.redb");
        Ok(Repository {
            backend,
            key: Arc::new(key),
            config,
            key_name,
            key_warnings,
            index_path,
            index: OnceLock::new(),
            index_init: Mutex::new(()),
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn key(&self) -> &Arc<MasterKey> {
        &self.key
    }
    /// Where this repository's local index cache lives.
    pub fn index_path(&self) -> &std::path::Path {
        &self.index_path
    }

    /// The chunk index, opened and brought up to date with the packs on first use.
    pub fn index(&self) -> Result<&Arc<Index>> {
        if let Some((i, _)) = self.index.get() {
            return Ok(i);
        }
        let _guard = self.index_init.lock().unwrap();
        if let Some((i, _)) = self.index.get() {
            return Ok(i);
        }
        let idx = Index::open(&self.index_path, &self.config.id)?;
        let mut report = idx.sync(&*self.backend, &self.key)?;
        if let Some(why) = idx.distrusted() {
            report.rebuilt = true;
            if let crate::index::Distrust::Damaged(why) = why {
                report.damaged = Some(why.clone());
            }
        }
        let _ = self.index.set((Arc::new(idx), report));
        Ok(&self.index.get().expect("just set").0)
    }
    /// Bring the (already opened) index in line with the packs again — for a long-lived reader
    /// (`snap mount`) that meets packs written or deleted since it opened the index.
    pub fn resync_index(&self) -> Result<()> {
        self.index()?.sync(&*self.backend, &self.key).map(|_| ())
    }

    /// Name of the key file the password opened.
    /// Key files found damaged or foreign when opening (each a sentence to show the user).
    pub fn key_warnings(&self) -> &[String] {
        &self.key_warnings
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }
    /// What bringing the index up to date did, if the index has been opened.
    pub fn sync_report(&self) -> Option<&SyncReport> {
        self.index.get().map(|(_, r)| r)
    }
    pub fn chunker(&self) -> Chunker {
        Chunker::new(self.config.chunker.clone(), self.key.chunker_seed())
    }

    /// Packs condemned by a deletion plan (read fresh from the repository).
    pub fn condemned_packs(&self) -> Result<std::collections::HashSet<Id>> {
        deletion::condemned_packs(&*self.backend, &self.key)
    }

    /// Take a repository lock for `command`; released when the guard drops.
    pub fn lock(&self, kind: lock::LockKind, command: &str) -> Result<lock::LockGuard> {
        lock::acquire(self.backend.clone(), self.key.clone(), kind, command)
    }

    /// Read one chunk's plaintext: index → ranged get → [`blob::decode`] (which verifies it).
    pub fn read_chunk(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self.index()?.lookup(id)?.ok_or(Error::ChunkMissing(*id))?;
        let name = crate::pack::pack_name(&loc.pack);
        let sealed = self
            .backend
            .get_range(&name, loc.offset as u64, loc.length as u64)
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::corrupt(
                    format!("pack {name}"),
                    format!("missing, but the index says it holds chunk {}", id.short()),
                ),
                other => other,
            })?;
        blob::decode(&self.key, loc.kind, id, &sealed)
            .map_err(|e| Error::corrupt(format!("pack {name}"), e.to_string()))
    }

    /// Seal and store a manifest; returns the snapshot id. Call only after every pack it
    /// references is durable (see [`Saver::finish`]).
    pub fn save_manifest(&self, m: &Manifest) -> Result<Id> {
        let json = serde_json::to_vec(m).expect("manifest serializes");
        let sealed = blob::encode(&self.key, BlobKind::Manifest, &Id::default(), &json, 3);
        let id = Id::hash_of(&sealed);
        self.backend.put(&format!("snapshots/{id}"), &sealed)?;
        if let Some(p) = self.manifest_cache_path(&id) {
            write_cache_file(&p, &sealed);
        }
        Ok(id)
    }

    /// Read a manifest. For remote repositories the sealed bytes are kept in the local cache
    /// (`<cache>/<repository id>/snapshots/<id>`): a manifest never changes (its name is the hash
    /// of its bytes, checked on every read), so a cached copy saves a request per snapshot and
    /// command; a lost or damaged cache file is fetched again.
    pub fn load_manifest(&self, id: &Id) -> Result<Manifest> {
        self.load_manifest_via(id, self.manifest_cache_path(id))
    }

    /// Read a manifest from the repository itself, never from the cache (`snap check`).
    pub fn load_manifest_uncached(&self, id: &Id) -> Result<Manifest> {
        self.load_manifest_via(id, None)
    }

    fn load_manifest_via(&self, id: &Id, cached: Option<PathBuf>) -> Result<Manifest> {
        let name = format!("snapshots/{id}");
        let sealed = match cached
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .filter(|b| Id::hash_of(b) == *id)
        {
            Some(b) => b,
            None => {
                let b = self.backend.get_bounded(&name, limits::MANIFEST)?;
                if let Some(p) = &cached
                    && Id::hash_of(&b) == *id
                {
                    write_cache_file(p, &b);
                }
                b
            }
        };
        if Id::hash_of(&sealed) != *id {
            return Err(Error::corrupt(
                format!("snapshot {}", id.short()),
                "content does not match its name",
            ));
        }
        let json = blob::decode(&self.key, BlobKind::Manifest, &Id::default(), &sealed)
            .map_err(|e| Error::corrupt(format!("snapshot {}", id.short()), e.to_string()))?;
        serde_json::from_slice(&json)
            .map_err(|e| Error::corrupt(format!("snapshot {}", id.short()), e.to_string()))
    }

    fn manifest_cache_path(&self, id: &Id) -> Option<PathBuf> {
        self.backend.is_remote().then(|| {
            self.index_path
                .with_file_name("snapshots")
                .join(id.to_hex())
        })
    }

    pub fn snapshot_ids(&self) -> Result<Vec<Id>> {
        Ok(self
            .backend
            .list("snapshots/")?
            .iter()
            .filter_map(|o| o.name.strip_prefix("snapshots/")?.parse().ok())
            .collect())
    }

    /// All snapshots, oldest first. A manifest that cannot be read is an error naming it.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let (snaps, mut damaged) = self.snapshots_and_damaged()?;
        match damaged.pop() {
            Some((_, e)) => Err(e),
            None => Ok(snaps),
        }
    }

    /// All readable snapshots (oldest first), and the ids of those whose manifest could not be
    /// read, with the reason — so one damaged manifest does not hide the others.
    pub fn snapshots_and_damaged(&self) -> Result<(Vec<Snapshot>, Vec<(Id, Error)>)> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_manifest(&id) {
                Ok(manifest) => out.push(Snapshot { id, manifest }),
                Err(e @ Error::Corrupt { .. }) => damaged.push((id, e)),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.manifest.time.cmp(&b.manifest.time).then(a.id.cmp(&b.id)));
        Ok((out, damaged))
    }

    /// `latest`, a full id, or a unique prefix. A spec naming a damaged manifest is
    /// [`Error::SnapshotDamaged`], not "no snapshot matches".
    pub fn find_snapshot(&self, spec: &str) -> Result<Snapshot> {
        let (all, damaged) = self.snapshots_and_damaged()?;
        crate::snapshot::resolve_or_damaged(&all, &damaged, spec).cloned()
    }

    /// The snapshot `spec` names, narrowed as [`crate::snapshot::select::choose`] says: the
    /// user's filters `given`, filled with what the command `implied`. Also whether it was
    /// picked as `latest`.
    pub fn choose_snapshot(
        &self,
        spec: &str,
        given: &Selector,
        implied: &Selector,
    ) -> Result<(Snapshot, bool)> {
        let (all, damaged) = self.snapshots_and_damaged()?;
        let c = crate::snapshot::select::choose(&all, &damaged, spec, given, implied)?;
        Ok((c.snapshot.clone(), c.latest))
    }

    pub fn load_tree(&self, m: &Manifest) -> Result<Tree> {
        self.load_tree_refs(&m.tree)
    }

    /// Load a tree from its chunk list.
    pub fn load_tree_refs(&self, tree: &[crate::snapshot::ChunkRef]) -> Result<Tree> {
        let mut bytes = Vec::new();
        self.read_chunks(tree.iter().map(|c| c.id()), &mut |_, got| {
            bytes.extend_from_slice(&got?);
            Ok(())
        })?;
        Tree::parse(&bytes)
    }

    /// Stream a file's content to `out`, verifying each chunk.
    pub fn write_file_to(
        &self,
        chunks: &[crate::snapshot::ChunkRef],
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        let mut n = 0;
        self.read_chunks(chunks.iter().map(|c| c.id()), &mut |_, got| {
            let data = got?;
            out.write_all(&data).map_err(|e| Error::io("<output>", e))?;
            n += data.len() as u64;
            Ok(())
        })?;
        Ok(n)
    }
}

/// Best effort: a cache file that cannot be written only costs a request next time.
fn write_cache_file(path: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if crate::util::create_private_dir_all(dir).is_err() {
        return;
    }
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
        use std::io::Write;
        if tmp.write_all(bytes).is_ok() {
            let _ = tmp.persist(path);
        }
    }
}

/// Wrap `key` under `password` in a new key file; returns its name.
pub fn add_key_file(
    backend: &dyn Backend,
    key: &MasterKey,
    password: &[u8],
    kdf: KdfParams,
) -> Result<String> {
    let kf = KeyFile::create(key, password, kdf)?;
    let bytes = kf.to_bytes();
    let name = format!("keys/{}", Id::hash_of(&bytes));
    backend.put(&name, &bytes)?;
    Ok(name)
}

/// Largest objects that are not data a reader accepts (repo-format.md §10): each is far above
/// what snap writes, and refused before it is read whole.
pub mod limits {
    /// Key files are a few hundred bytes.
    pub const KEY_FILE: u64 = 64 * 1024;
    /// `config` is a few hundred bytes.
    pub const CONFIG: u64 = 64 * 1024;
    /// Locks are a few hundred bytes.
    pub const LOCK: u64 = 64 * 1024;
    /// A manifest lists its tree chunks (~80 bytes each): 16 MiB is a tree of ~50 GB.
    pub const MANIFEST: u64 = 16 << 20;
    /// A deletion plan lists pack ids (~70 bytes each before compression).
    pub const PLAN: u64 = 256 << 20;
}
use limits::KEY_FILE as KEY_FILE_LIMIT;

/// Try the password against every key file. A key file whose content does not match its name
/// (damage) is skipped and, when no key file opens, named instead of "wrong password". When
/// more than one opens (another repository's key file copied into `keys/`), the one whose key
/// decrypts this repository's data is taken and the others are named in the warnings.
fn unlock(backend: &dyn Backend, password: &[u8]) -> Result<(MasterKey, String, Vec<String>)> {
    let keys = backend.list("keys/")?;
    if keys.is_empty() {
        return Err(Error::NoKeys);
    }
    let mut damaged = Vec::new();
    let mut opened = Vec::new();
    for obj in &keys {
        if obj.size > KEY_FILE_LIMIT {
            damaged.push(format!(
                "{}: {} bytes, too large for a key file",
                obj.name, obj.size
            ));
            continue;
        }
        let bytes = match backend.get(&obj.name) {
            Ok(b) => b,
            Err(e) => {
                damaged.push(format!("{}: {e}", obj.name));
                continue;
            }
        };
        if format!("keys/{}", Id::hash_of(&bytes)) != obj.name {
            damaged.push(format!(
                "{}: its content does not match its name (the file is damaged)",
                obj.name
            ));
            continue;
        }
        match KeyFile::from_bytes(&bytes).and_then(|kf| kf.open(password)) {
            Ok(Some(k)) => opened.push((k, obj.name.clone())),
            Ok(None) => {}
            Err(e) => damaged.push(format!("{}: {e}", obj.name)),
        }
    }
    let mut warnings: Vec<String> = damaged
        .iter()
        .map(|d| format!("key file {d}; restore it from a copy or remove it"))
        .collect();
    if opened.len() > 1 {
        let fits: Vec<bool> = opened
            .iter()
            .map(|(k, _)| opens_repository_data(backend, k))
            .collect();
        if fits.iter().any(|f| *f) {
            let mut all = opened.into_iter().zip(fits);
            let mut chosen = None;
            for ((k, name), fit) in all.by_ref() {
                if fit && chosen.is_none() {
                    chosen = Some((k, name));
                } else if !fit {
                    warnings.push(format!("key file {name} opens with this password but does not decrypt this repository's data (another repository's key file?); it is ignored — remove it"));
                }
            }
            let (k, name) = chosen.expect("one fits");
            return Ok((k, name, warnings));
        }
        opened.truncate(1);
    }
    if let Some((k, name)) = opened.pop() {
        return Ok((k, name, warnings));
    }
    // Only when no intact key file is left is damage the answer; with intact ones that the
    // password does not open, the password is wrong.
    if damaged.len() == keys.len() {
        return Err(Error::corrupt(
            "key files",
            format!(
                "{}; no intact key file is left: restore one from a copy",
                damaged.join("; ")
            ),
        ));
    }
    Err(Error::WrongPassword)
}

/// Whether `key` decrypts a sealed object of the repository in `backend` (a manifest, else a
/// pack trailer); true when there is none to try.
fn opens_repository_data(backend: &dyn Backend, key: &MasterKey) -> bool {
    if let Some(m) = backend
        .list("snapshots/")
        .ok()
        .and_then(|l| l.into_iter().next())
        && let Ok(b) = backend.get_bounded(&m.name, limits::MANIFEST)
    {
        return blob::decode(key, BlobKind::Manifest, &Id::default(), &b).is_ok();
    }
    if let Some(p) = backend
        .list("data/")
        .ok()
        .and_then(|l| l.into_iter().next())
    {
        return crate::pack::read_trailer(backend, key, &p.name, p.size).is_ok();
    }
    true
}
