//! Reading a database snapshot back (repo-format.md §7.3): which databases a snapshot holds,
//! their parts, and `data.sql` reassembled from the per-table parts in `data-order.json`.

use std::io::Write;

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::snapshot::{ChunkRef, EntryKind, Snapshot, Tree};
use crate::source::postgres::inventory::{Catalog, Inventory};

use crate::source::postgres::data_order::DataOrder;
pub use crate::source::postgres::data_order::DataPart;

/// One database of a snapshot.
pub struct DbSnapshot<'r> {
    repo: &'r Repository,
    tree: Tree,
    /// `db/<database>` (as stored, name component encoded).
    pub base: String,
    /// The database name (from the inventory).
    pub database: String,
    pub parts: Vec<DataPart>,
    pub inventory: Inventory,
    /// `catalog.json`, read once (restore, verification and planning all use it).
    catalog: std::sync::OnceLock<Option<Catalog>>,
}

/// The databases a tree holds: `db/<name>` directories with an `inventory.json`.
pub fn databases(tree: &Tree) -> Vec<String> {
    tree.entries
        .iter()
        .filter_map(|e| e.path.strip_prefix("db/")?.strip_suffix("/inventory.json"))
        .filter(|n| !n.contains('/'))
        .map(str::to_string)
        .collect()
}

/// The parts of `data.sql` listed in the `data-order.json` of `<base>` (e.g. `db/postgres`).
pub fn parse_data_order(bytes: &[u8], base: &str) -> Result<Vec<DataPart>> {
    let what = || format!("{base}/data-order.json");
    let order: DataOrder =
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what(), e.to_string()))?;
    if order.version != DataOrder::VERSION {
        return Err(Error::corrupt(
            what(),
            format!("unknown version {}", order.version),
        ));
    }
    Ok(order.parts)
}

/// The chunks of `data.sql` of the database directory `base` (`db/<name>`) in `tree`: each part's
/// chunks, in the order of `parts` — so `data.sql` can be read at any offset without being
/// written out (`snap mount`).
pub fn data_sql_chunks(tree: &Tree, base: &str, parts: &[DataPart]) -> Result<Vec<ChunkRef>> {
    let mut chunks = Vec::new();
    for part in parts {
        let path = format!("{base}/{}", part.path);
        let e = tree
            .get(&path)
            .filter(|e| e.kind == EntryKind::File)
            .ok_or_else(|| {
                Error::corrupt(
                    format!("{base}/data-order.json"),
                    format!("part {path} is not in the snapshot"),
                )
            })?;
        chunks.extend_from_slice(&e.chunks);
    }
    Ok(chunks)
}

impl<'r> DbSnapshot<'r> {
    /// The database `name` (the stored directory name) of `snap`, or its only database.
    pub fn open(
        repo: &'r Repository,
        snap: &Snapshot,
        name: Option<&str>,
    ) -> Result<DbSnapshot<'r>> {
        let tree = repo.load_tree(&snap.manifest)?;
        let dbs = databases(&tree);
        let dir = match (name, dbs.as_slice()) {
            (Some(n), _) if dbs.iter().any(|d| d == n) => n.to_string(),
            (Some(n), _) => {
                return Err(Error::Invalid(format!(
                    "snapshot {} holds no database {n:?} (it holds: {})",
                    snap.id.short(),
                    if dbs.is_empty() {
                        "none".into()
                    } else {
                        dbs.join(", ")
                    }
                )));
            }
            (None, [one]) => one.clone(),
            (None, []) => {
                return Err(Error::Invalid(format!(
                    "snapshot {} holds no database snapshot (made with `snap backup db`)",
                    snap.id.short()
                )));
            }
            (None, many) => {
                return Err(Error::Invalid(format!(
                    "snapshot {} holds several databases ({}); choose one with --database",
                    snap.id.short(),
                    many.join(", ")
                )));
            }
        };
        let base = format!("db/{dir}");
        let mut db = DbSnapshot {
            repo,
            tree,
            base,
            database: dir,
            parts: Vec::new(),
            inventory: Inventory::default(),
            catalog: Default::default(),
        };
        let inv = db.read_to_vec("inventory.json")?;
        db.inventory = serde_json::from_slice(&inv)
            .map_err(|e| Error::corrupt(format!("{}/inventory.json", db.base), e.to_string()))?;
        if let Some(n) = &db.inventory.database {
            db.database = n.clone();
        }
        db.parts = parse_data_order(&db.read_to_vec("data-order.json")?, &db.base)?;
        Ok(db)
    }

    /// `catalog.json`: every object's ACL and the managed schemas' objects; None for a snapshot
    /// written before snap recorded them.
    pub fn catalog(&self) -> Result<Option<&Catalog>> {
        if let Some(c) = self.catalog.get() {
            return Ok(c.as_ref());
        }
        let c = if self.has(Catalog::FILE) {
            Some(Catalog::parse(
                &self.read_to_vec(Catalog::FILE)?,
                &format!("{}/{}", self.base, Catalog::FILE),
            )?)
        } else {
            None
        };
        Ok(self.catalog.get_or_init(|| c).as_ref())
    }

    /// Whether the snapshot holds part `rel` (e.g. `migrations.sql`, `managed/auth.sql`).
    pub fn has(&self, rel: &str) -> bool {
        self.tree
            .get(&format!("{}/{rel}", self.base))
            .is_some_and(|e| e.kind == EntryKind::File)
    }

    /// Stream part `rel` to `out`.
    pub fn write_part(&self, rel: &str, out: &mut dyn Write) -> Result<u64> {
        let path = format!("{}/{rel}", self.base);
        let e = self
            .tree
            .get(&path)
            .filter(|e| e.kind == EntryKind::File)
            .ok_or_else(|| Error::PathNotInSnapshot {
                snapshot: self.base.clone(),
                path: path.clone(),
            })?;
        self.repo.write_file_to(&e.chunks, out)
    }

    pub fn read_to_vec(&self, rel: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.write_part(rel, &mut v)?;
        Ok(v)
    }

    /// `data.sql`: every part of `data-order.json`, in order (the first sets
    /// `session_replication_role = replica`, the last resets it).
    pub fn write_data_sql(&self, out: &mut dyn Write) -> Result<u64> {
        self.write_data_parts(&self.parts, out)
    }

    /// Some parts of data.sql, in the given order.
    pub fn write_data_parts(&self, parts: &[DataPart], out: &mut dyn Write) -> Result<u64> {
        let mut n = 0;
        for p in parts {
            n += self.write_part(&p.path, out)?;
        }
        Ok(n)
    }

    /// The per-table COPY parts.
    pub fn tables(&self) -> impl Iterator<Item = &DataPart> {
        self.parts.iter().filter(|p| p.kind == "copy")
    }
}
