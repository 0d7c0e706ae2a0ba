//! `snap backup db`: every part of a database snapshot, streamed from pg_dump/pg_dumpall into
//! the repository, all from one exported snapshot. Layout under `db/<database>/`:
//!
//! | path | content |
//! |---|---|
//! | `roles.sql` | `pg_dumpall --roles-only`, reserved Supabase roles commented out ([`RolesFilter`]) |
//! | `schema.sql` | `pg_dump --schema-only` of the user schemas, with the Supabase CLI's cleanups ([`SchemaFilter`]) |
//! | `tables/<schema>.<table>.sql` | one table's data: its `COPY … FROM stdin;` block |
//! | `data/NNNN.sql` | the SQL between COPY blocks (SET lines, sequence values) |
//! | `data/begin.sql`, `data/end.sql` | `SET session_replication_role = replica;` / `RESET ALL;` |
//! | `data-order.json` | the parts whose concatenation is `data.sql`, in order, with rows and bytes |
//! | `migrations.sql` | schema + rows of `supabase_migrations` (when present) |
//! | `managed/auth.sql`, `managed/storage.sql` | schema of those Supabase-managed schemas (when present) |
//! | `inventory.json` | versions, sizes, tables, extensions, realtime, webhooks, grants, view options, durations |

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::conn::ConnSpec;
use super::data_order::{DataOrder, DataPart};
use super::inventory::{Acls, Catalog, INVENTORY_SQL, Inventory, ManagedObject};
use super::pgbin::{self, PgTools};
use super::sanitize::{RolesFilter, SchemaFilter};
use super::session::{self, SnapshotSession};
use super::split::{Section, Splitter};
use crate::error::{Error, Result};
use crate::snapshot::SourceKind;
use crate::source::{ChildStream, EntrySink, Source};
use crate::supabase::{self, EXTENDED_MANAGED_SCHEMAS, MIGRATIONS_SCHEMA};

pub const REPLICA_BEGIN: &str = "SET session_replication_role = replica;\n\n";
pub const REPLICA_END: &str = "\nRESET ALL;\n";

pub struct DbOptions {
    pub conn: ConnSpec,
    /// Use the client tools in this directory (else: found among installed versions).
    pub pg_bin: Option<PathBuf>,
}

/// One stored part and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PartSummary {
    pub path: String,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TableSummary {
    pub schema: String,
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaSummary {
    pub schema: String,
    pub tables: u64,
    pub bytes: u64,
}

/// What a database backup did (printed by the CLI, stored in part in `inventory.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbSummary {
    pub database: String,
    pub server_version: String,
    pub pg_dump: String,
    pub pg_bin: String,
    pub snapshot: String,
    pub supabase: bool,
    pub parts: Vec<PartSummary>,
    pub tables: Vec<TableSummary>,
    pub schemas: Vec<SchemaSummary>,
    pub skipped: Vec<String>,
    pub roles_commented: u64,
    pub schema_statements_commented: u64,
    pub schema_statements_rewritten: u64,
    pub bytes_dumped: u64,
    pub seconds: f64,
}

/// How a part's dump output is transformed before it is stored.
enum Filter {
    Raw,
    Roles,
    Schema,
}

pub struct DatabaseSource {
    conn: ConnSpec,
    tools: PgTools,
    summary: DbSummary,
}

/// A path component for a name: `/`, `%` and control characters percent-encoded.
pub fn path_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '/' || c == '%' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out == "." || out == ".." {
        out.replace('.', "%2E")
    } else {
        out
    }
}

/// Major version from `server_version_num` (150018 → 15; 90624, i.e. 9.6.24, → 9).
fn server_major(version_num: u32) -> u32 {
    version_num / 10_000
}

impl DatabaseSource {
    /// Connect, read the server version, and pick the client tools to dump it with.
    pub fn connect(opts: DbOptions) -> Result<DatabaseSource> {
        let found = pgbin::candidates(opts.pg_bin.as_deref());
        let probe = pgbin::newest(opts.pg_bin.as_deref())?;
        let out = session::query(
            &probe,
            &opts.conn,
            None,
            "SELECT current_setting('server_version_num') || ' ' || current_setting('server_version') || E'\\n' || current_database();",
        )?;
        let mut lines = out.lines();
        let first = lines.next().unwrap_or_default();
        let (num, version) = first.split_once(' ').unwrap_or((first, ""));
        let num: u32 = num
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("unexpected server version {first:?}")))?;
        let database = lines.next().unwrap_or_default().to_string();
        let tools = pgbin::choose(&found, server_major(num))?;
        let summary = DbSummary {
            database,
            server_version: version.to_string(),
            pg_dump: tools.version.clone(),
            pg_bin: tools.dir.display().to_string(),
            ..Default::default()
        };
        Ok(DatabaseSource {
            conn: opts.conn,
            tools,
            summary,
        })
    }

    pub fn db_summary(&self) -> &DbSummary {
        &self.summary
    }

    fn base(&self) -> String {
        format!("db/{}", path_component(&self.summary.database))
    }

    fn dump(&self, tool: &str, args: &[String]) -> Result<ChildStream> {
        let mut cmd = self.tools.command(tool);
        cmd.args(args);
        self.conn.apply(&mut cmd);
        cmd.arg("--no-password");
        ChildStream::spawn(
            cmd,
            format!("{tool} {} {}", args.join(" "), self.conn.display()),
        )
    }

    /// Stream one child's stdout, through `filter`, into `path`; fail if the child failed.
    fn part(
        &mut self,
        sink: &mut dyn EntrySink,
        path: &str,
        tool: &str,
        args: &[String],
        filter: Filter,
    ) -> Result<()> {
        let started = Instant::now();
        let mut child = self.dump(tool, args)?;
        let input = BufReader::with_capacity(1 << 20, child.stdout());
        let bytes = match filter {
            Filter::Raw => sink.file(path, 0o600, &mut { input }, BTreeMap::new()),
            Filter::Roles => {
                let mut f = RolesFilter::new(input);
                let b = sink.file(path, 0o600, &mut f, BTreeMap::new());
                self.summary.roles_commented = f.changes().commented;
                b
            }
            Filter::Schema => {
                let mut f = SchemaFilter::new(input);
                let b = sink.file(path, 0o600, &mut f, BTreeMap::new());
                self.summary.schema_statements_commented = f.changes().commented;
                self.summary.schema_statements_rewritten = f.changes().rewritten;
                b
            }
        };
        // A dump that failed (even after a complete-looking stream) never becomes a snapshot.
        child.finish()?;
        let bytes = bytes?;
        self.summary.bytes_dumped += bytes;
        self.summary.parts.push(PartSummary {
            path: path.to_string(),
            bytes,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    fn data(&mut self, sink: &mut dyn EntrySink, snapshot: &str) -> Result<Vec<DataPart>> {
        let base = self.base();
        let mut args = vec![
            "--data-only".to_string(),
            "--quote-all-identifiers".into(),
            format!("--snapshot={snapshot}"),
        ];
        args.extend(supabase::data_excluded_schemas().map(|s| format!("--exclude-schema={s}")));
        args.extend(
            supabase::DATA_EXCLUDED_TABLES
                .iter()
                .map(|(s, t)| format!("--exclude-table={s}.{t}")),
        );
        let started = Instant::now();
        let mut order = vec![DataPart::sql("data/begin.sql", None)];
        sink.file(
            &format!("{base}/data/begin.sql"),
            0o600,
            &mut REPLICA_BEGIN.as_bytes(),
            BTreeMap::new(),
        )?;
        let mut child = self.dump("pg_dump", &args)?;
        let result = (|| -> Result<()> {
            let mut split = Splitter::new(child.stdout());
            let mut n = 0;
            while let Some(section) = split
                .next_section()
                .map_err(|e| Error::io("pg_dump output", e))?
            {
                match section {
                    Section::Sql => {
                        n += 1;
                        let rel = format!("data/{n:04}.sql");
                        let bytes = sink.file(
                            &format!("{base}/{rel}"),
                            0o600,
                            &mut split,
                            BTreeMap::new(),
                        )?;
                        self.summary.bytes_dumped += bytes;
                        order.push(DataPart::sql(rel, Some(bytes)));
                    }
                    Section::Copy { schema, table } => {
                        let rel = format!(
                            "tables/{}.{}.sql",
                            path_component(&schema),
                            path_component(&table)
                        );
                        let attrs = BTreeMap::from([
                            ("schema".to_string(), schema.clone().into()),
                            ("table".to_string(), table.clone().into()),
                        ]);
                        let bytes =
                            sink.file(&format!("{base}/{rel}"), 0o600, &mut split, attrs)?;
                        let rows = split.rows();
                        self.summary.bytes_dumped += bytes;
                        order.push(DataPart::copy(rel, &schema, &table, rows, bytes));
                        self.summary.tables.push(TableSummary {
                            schema,
                            table,
                            rows,
                            bytes,
                        });
                    }
                }
            }
            Ok(())
        })();
        child.finish()?;
        result?;
        sink.file(
            &format!("{base}/data/end.sql"),
            0o600,
            &mut REPLICA_END.as_bytes(),
            BTreeMap::new(),
        )?;
        order.push(DataPart::sql("data/end.sql", None));
        self.summary.parts.push(PartSummary {
            path: "data (tables/, data/)".into(),
            bytes: self.summary.tables.iter().map(|t| t.bytes).sum(),
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(order)
    }

    /// Read the inventory and the catalog in the snapshot; note whether it is a Supabase
    /// database. Returns them with the names of the schemas present.
    fn inventory_and_catalog(
        &mut self,
        sink: &mut dyn EntrySink,
        snap: &str,
    ) -> Result<(Inventory, Catalog, Vec<String>)> {
        let inventory: Inventory = serde_json::from_str(&session::query(
            &self.tools,
            &self.conn,
            Some(snap),
            INVENTORY_SQL,
        )?)
        .map_err(|e| Error::Invalid(format!("inventory query returned unexpected output: {e}")))?;
        // Every object's whole ACL and the default privileges: a restore sets them exactly.
        // The objects of auth and storage with their definitions: a restore re-creates the
        // user's additions there.
        let catalog = Catalog {
            version: Catalog::VERSION,
            acls: Acls::read(&self.tools, &self.conn, Some(snap))?,
            managed_objects: ManagedObject::read(
                &self.tools,
                &self.conn,
                Some(snap),
                EXTENDED_MANAGED_SCHEMAS,
            )?,
        };
        let present: Vec<String> = inventory.schemas.iter().map(|s| s.name.clone()).collect();
        sink.expect(dump_estimate(&inventory), true);
        self.summary.supabase = has_schema(&present, "auth") && has_schema(&present, "storage");
        if !self.summary.supabase {
            sink.warn("no auth and storage schemas: a plain PostgreSQL database; the Supabase-specific parts are skipped where absent".into());
        }
        Ok((inventory, catalog, present))
    }

    /// Store `roles.sql` (shared catalogs: dumped while the snapshot session is open).
    fn roles(&mut self, sink: &mut dyn EntrySink) -> Result<()> {
        let args: Vec<String> = [
            "--roles-only",
            "--quote-all-identifiers",
            "--no-role-passwords",
            "--no-comments",
        ]
        .map(String::from)
        .to_vec();
        self.part(
            sink,
            &format!("{}/roles.sql", self.base()),
            "pg_dumpall",
            &args,
            Filter::Roles,
        )
    }

    /// Store `schema.sql`: the schema of the user schemas.
    fn schema(&mut self, sink: &mut dyn EntrySink, snap: &str) -> Result<()> {
        let mut args = vec![
            "--schema-only".to_string(),
            "--quote-all-identifiers".into(),
            format!("--snapshot={snap}"),
        ];
        args.extend(
            supabase::MANAGED_SCHEMAS
                .iter()
                .map(|s| format!("--exclude-schema={s}")),
        );
        self.part(
            sink,
            &format!("{}/schema.sql", self.base()),
            "pg_dump",
            &args,
            Filter::Schema,
        )
    }

    /// Store the data, one entry per table, then `data-order.json` that reassembles data.sql.
    fn data_and_order(&mut self, sink: &mut dyn EntrySink, snap: &str) -> Result<()> {
        let order = self.data(sink, snap)?;
        let order_json = serde_json::to_vec_pretty(&DataOrder {
            version: DataOrder::VERSION,
            parts: order,
        })
        .expect("json");
        sink.file(
            &format!("{}/data-order.json", self.base()),
            0o600,
            &mut order_json.as_slice(),
            BTreeMap::new(),
        )?;
        Ok(())
    }

    /// Store `migrations.sql`, the migration history (skipped without its schema).
    fn migrations(
        &mut self,
        sink: &mut dyn EntrySink,
        snap: &str,
        present: &[String],
    ) -> Result<()> {
        if has_schema(present, MIGRATIONS_SCHEMA) {
            let args = vec![
                format!("--schema={MIGRATIONS_SCHEMA}"),
                "--quote-all-identifiers".into(),
                format!("--snapshot={snap}"),
            ];
            self.part(
                sink,
                &format!("{}/migrations.sql", self.base()),
                "pg_dump",
                &args,
                Filter::Raw,
            )?;
        } else {
            self.summary
                .skipped
                .push(format!("migrations.sql: no {MIGRATIONS_SCHEMA} schema"));
        }
        Ok(())
    }

    /// Store `managed/<schema>.sql`, the definitions of the managed schemas users customise.
    fn managed_schemas(
        &mut self,
        sink: &mut dyn EntrySink,
        snap: &str,
        present: &[String],
    ) -> Result<()> {
        for m in EXTENDED_MANAGED_SCHEMAS {
            if has_schema(present, m) {
                let args = vec![
                    "--schema-only".to_string(),
                    format!("--schema={m}"),
                    "--quote-all-identifiers".into(),
                    format!("--snapshot={snap}"),
                ];
                self.part(
                    sink,
                    &format!("{}/managed/{m}.sql", self.base()),
                    "pg_dump",
                    &args,
                    Filter::Raw,
                )?;
            } else {
                self.summary
                    .skipped
                    .push(format!("managed/{m}.sql: no {m} schema"));
            }
        }
        Ok(())
    }

    /// Sum the tables up per schema and warn of every part skipped.
    fn summarize(&mut self, sink: &mut dyn EntrySink) {
        let mut by_schema: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for t in &self.summary.tables {
            let e = by_schema.entry(&t.schema).or_default();
            e.0 += 1;
            e.1 += t.bytes;
        }
        self.summary.schemas = by_schema
            .into_iter()
            .map(|(s, (n, b))| SchemaSummary {
                schema: s.to_string(),
                tables: n,
                bytes: b,
            })
            .collect();
        for s in &self.summary.skipped {
            sink.warn(format!("skipped {s}"));
        }
    }

    /// Store the catalog, then `inventory.json` completed with what the backup did.
    fn store_catalog_and_inventory(
        &self,
        sink: &mut dyn EntrySink,
        mut inventory: Inventory,
        catalog: &Catalog,
        snap: String,
    ) -> Result<()> {
        let base = self.base();
        inventory.pg_dump_version = Some(self.summary.pg_dump.clone());
        inventory.snapshot = Some(snap);
        inventory.supabase = Some(self.summary.supabase);
        inventory.dumps = self.summary.parts.clone();
        inventory.dumped_tables = self.summary.tables.clone();
        inventory.skipped = self.summary.skipped.clone();
        inventory.duration_seconds = self.summary.seconds;
        let cat = serde_json::to_vec_pretty(catalog).expect("json");
        sink.file(
            &format!("{base}/{}", Catalog::FILE),
            0o600,
            &mut cat.as_slice(),
            BTreeMap::new(),
        )?;
        let inv = serde_json::to_vec_pretty(&inventory).expect("json");
        sink.file(
            &format!("{base}/inventory.json"),
            0o600,
            &mut inv.as_slice(),
            BTreeMap::new(),
        )?;
        Ok(())
    }
}

/// About how many bytes the dump writes, for progress: the on-disk size of the tables whose data
/// is dumped. A guess either way (indexes are not dumped, text is often larger than binary).
fn dump_estimate(inventory: &Inventory) -> u64 {
    let excluded: Vec<&str> = supabase::data_excluded_schemas().collect();
    inventory
        .tables
        .iter()
        .filter(|t| !excluded.contains(&t.schema.as_str()))
        .map(|t| t.bytes.max(0) as u64)
        .sum()
}

/// Whether the schema `name` is among those `present`.
fn has_schema(present: &[String], name: &str) -> bool {
    present.iter().any(|p| p == name)
}

impl Source for DatabaseSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Database
    }

    fn paths(&self) -> Vec<String> {
        vec![self.base()]
    }

    fn description(&self) -> String {
        format!(
            "pg_dump of {} ({})",
            self.conn.display(),
            self.tools.version
        )
    }

    fn run(&mut self, sink: &mut dyn EntrySink) -> Result<()> {
        let started = Instant::now();
        let session = SnapshotSession::start(&self.tools, &self.conn)?;
        let snap = session.snapshot().to_string();
        self.summary.snapshot = snap.clone();
        let (inventory, catalog, present) = self.inventory_and_catalog(sink, &snap)?;
        self.roles(sink)?;
        self.schema(sink, &snap)?;
        self.data_and_order(sink, &snap)?;
        self.migrations(sink, &snap, &present)?;
        self.managed_schemas(sink, &snap, &present)?;
        // The session must have held the snapshot through every dump.
        session.finish()?;
        self.summary.seconds = started.elapsed().as_secs_f64();
        self.summarize(sink);
        self.store_catalog_and_inventory(sink, inventory, &catalog, snap)
    }

    fn summary(&self) -> crate::source::SourceSummary {
        crate::source::SourceSummary::Database(self.summary.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_safe() {
        assert_eq!(path_component("orders"), "orders");
        assert_eq!(path_component("a/b%c"), "a%2Fb%25c");
        assert_eq!(path_component("tab\there"), "tab%09here");
        assert_eq!(path_component(".."), "%2E%2E");
        assert_eq!(path_component("ünï ✓"), "ünï ✓");
        assert_eq!(server_major(150018), 15);
        assert_eq!(server_major(90624), 9);
    }
}
