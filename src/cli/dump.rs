//! `snap dump <snapshot> --out DIR`: a database snapshot (`snap backup db`, repo-format.md §7.3)
//! written out as the plain SQL files of the Supabase restore recipe — `roles.sql`,
//! `schema.sql`, `data.sql` (reassembled from its per-table parts), `migrations.sql`,
//! `managed/auth.sql`, `managed/storage.sql` — plus `inventory.json` and a `README.txt` with the
//! psql command lines that restore them. Nothing but psql is needed afterwards.
//!
//! Each file is written to a temporary name in its directory (mode 0600: the files hold the
//! database's data), synced, then renamed, so a file with a final name is always complete.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use snap::ops::dbrestore::{self, Scope};
use snap::ops::dbsnap::{self, DbSnapshot};
use snap::repo::lock::LockKind;
use snap::snapshot::Snapshot;
use std::collections::BTreeSet;

use super::{Global, exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Directory to write the files into (created if missing; must be empty unless --overwrite).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The database to write, when the snapshot holds several.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Write into a non-empty directory, replacing the files of an earlier dump there.
    #[arg(long)]
    overwrite: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SnapshotSelect,
}

/// Files written beside the parts for the psql route.
const PRIVILEGES: &str = "privileges.sql";
const ADDITIONS: &str = "auth-storage-additions.sql";
const CRON: &str = "cron-jobs.sql";

/// What the psql route needs beyond the stored parts.
struct PsqlExtras {
    plan: dbrestore::DataPlan,
    privileges: String,
    additions: String,
    /// One line per addition (for README.txt).
    additions_list: Vec<String>,
    cron: String,
}

impl PsqlExtras {
    fn of(db: &DbSnapshot) -> anyhow::Result<PsqlExtras> {
        let plan = dbrestore::plan_for_psql(db)?;
        let catalog = db.catalog()?;
        // Without a target to compare with, functions and triggers are told apart by owner and
        // every policy counts as yours; indexes cannot be told from the platform's, so they
        // stay out (managed/*.sql has them).
        let mut mine = dbrestore::AdditionsPlan::new(
            catalog
                .map(|c| c.managed_objects.as_slice())
                .unwrap_or_default(),
            &[],
        );
        mine.apply.retain(|o| o.kind != "index");
        Ok(PsqlExtras {
            privileges: dbrestore::privileges_sql(db, &Scope::Whole, &BTreeSet::new())?,
            additions: mine.sql(catalog.map(|c| &c.acls), true),
            additions_list: mine
                .apply
                .iter()
                .map(dbrestore::additions::describe)
                .collect(),
            cron: plan.cron_sql(&db.database),
            plan,
        })
    }
}

/// Parts copied as they are, when the snapshot has them (`roles.sql` and `schema.sql` always).
const OPTIONAL: [&str; 3] = ["migrations.sql", "managed/auth.sql", "managed/storage.sql"];

#[derive(Serialize)]
struct FileJson {
    path: String,
    bytes: u64,
}

#[derive(Serialize)]
struct DumpJson<'a> {
    snapshot: String,
    database: &'a str,
    files: &'a [FileJson],
}

/// `snap dump`: write the files of a database snapshot into `--out` and list them.
pub fn run(g: &Global, a: &Args) -> anyhow::Result<u8> {
    // Refuse a non-empty directory before asking for anything.
    let out = &a.out;
    check_out_dir(out, a.overwrite)?;

    let (repo, _lock) = g.open_locked(LockKind::Shared, "dump")?;
    let implied = super::select::implied_kinds(&[snap::snapshot::Kind::Database]);
    let snap = super::select::choose(&repo, &a.snapshot, &a.select, &implied, g.quiet || a.json)?;
    let name = database_dir(&repo, &snap, a.database.as_deref())?;
    let db = DbSnapshot::open(&repo, &snap, name.as_deref())?;

    snap::util::create_private_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let files = write_dump(out, a.overwrite, &snap, &db)?;
    sync_dir(out)?;
    if out.join("managed").is_dir() {
        sync_dir(&out.join("managed"))?;
    }

    if a.json {
        output::json(&DumpJson {
            snapshot: snap.id.to_hex(),
            database: &db.database,
            files: &files,
        })?;
    } else if !g.quiet {
        println!(
            "database {} of snapshot {} written to {}:",
            db.database,
            snap.id.short(),
            output::path(&out.display().to_string())
        );
        let width = files.iter().map(|f| f.path.len()).max().unwrap_or(0);
        for f in &files {
            println!("  {:<width$}  {:>12}", f.path, output::bytes(f.bytes));
        }
        println!("README.txt there has the psql commands that restore it.");
    }
    Ok(exit::OK)
}

/// Fail unless `out` is missing, an empty directory, or (with `overwrite`) any directory.
fn check_out_dir(out: &Path, overwrite: bool) -> anyhow::Result<()> {
    match fs::read_dir(out) {
        Ok(mut rd) => {
            if rd.next().is_some() && !overwrite {
                bail!(
                    "{} is not empty; choose an empty or new directory, or pass --overwrite to replace the files of an earlier dump there",
                    out.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} exists and is not a directory", out.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
    }
    Ok(())
}

/// The files of one dump, written one by one into `out`.
struct DumpWriter<'a> {
    out: &'a Path,
    overwrite: bool,
    /// The files written so far, in order.
    files: Vec<FileJson>,
    /// The files README.txt describes.
    present: Vec<&'static str>,
}

impl DumpWriter<'_> {
    /// Write `out/rel` atomically with what `fill` writes, and record it.
    fn put(
        &mut self,
        rel: &str,
        fill: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let bytes = write_atomic(self.out, rel, fill)?;
        self.files.push(FileJson {
            path: rel.to_string(),
            bytes,
        });
        Ok(())
    }

    /// With --overwrite: remove the regular file `out/rel` an earlier dump left, if any.
    fn remove_stale(&self, rel: &str) -> anyhow::Result<()> {
        let target = self.out.join(rel);
        if self.overwrite && target.symlink_metadata().is_ok_and(|m| m.is_file()) {
            fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))?;
        }
        Ok(())
    }

    /// The psql route's extra files (privileges, additions, cron jobs), those that are not empty.
    fn extras(&mut self, extra: &PsqlExtras) -> anyhow::Result<()> {
        for (rel, text) in [
            (PRIVILEGES, &extra.privileges),
            (ADDITIONS, &extra.additions),
            (CRON, &extra.cron),
        ] {
            if !text.is_empty() {
                self.put(rel, &mut |w| Ok(w.write_all(text.as_bytes())?))?;
                self.present.push(rel);
            } else {
                self.remove_stale(rel)?;
            }
        }
        Ok(())
    }

    /// The [`OPTIONAL`] parts the snapshot has; returns the managed ones with their text.
    fn optional(&mut self, db: &DbSnapshot) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut managed = Vec::new();
        for rel in OPTIONAL {
            if db.has(rel) {
                if rel.starts_with("managed/") {
                    let text = db.read_to_vec(rel)?;
                    self.put(rel, &mut |w| Ok(w.write_all(&text)?))?;
                    managed.push((rel, String::from_utf8_lossy(&text).into_owned()));
                } else {
                    self.put(rel, &mut part(db, rel))?;
                }
                self.present.push(rel);
            } else {
                // Left from an earlier dump: it does not belong to this snapshot.
                self.remove_stale(rel)?;
            }
        }
        if managed.is_empty() && self.overwrite {
            // An earlier dump's managed/ directory, now empty (fails harmlessly if it is not).
            let _ = fs::remove_dir(self.out.join("managed"));
        }
        Ok(managed)
    }
}

/// Writes the stored part `rel` of `db` as it is.
fn part<'d>(
    db: &'d DbSnapshot,
    rel: &'d str,
) -> impl FnMut(&mut dyn Write) -> anyhow::Result<()> + 'd {
    move |w: &mut dyn Write| -> anyhow::Result<()> { Ok(db.write_part(rel, w).map(drop)?) }
}

/// Write every file of the dump of `db` into `out`; returns them in the order written.
fn write_dump(
    out: &Path,
    overwrite: bool,
    snap: &Snapshot,
    db: &DbSnapshot,
) -> anyhow::Result<Vec<FileJson>> {
    let mut w = DumpWriter {
        out,
        overwrite,
        files: Vec::new(),
        present: vec!["roles.sql", "schema.sql", "data.sql"],
    };
    w.put("roles.sql", &mut part(db, "roles.sql"))?;
    w.put("schema.sql", &mut part(db, "schema.sql"))?;
    // The psql route gets the same guarantees as `snap restore --db`: every object's privileges
    // stated exactly, pg_cron jobs through cron.schedule_in_database (postgres may not write
    // cron.job on a hosted project), your additions to auth and storage in their own file.
    let extra = PsqlExtras::of(db)?;
    w.put("data.sql", &mut |o| {
        Ok(dbrestore::write_planned_data_sql(db, &extra.plan, o).map(drop)?)
    })?;
    w.extras(&extra)?;
    let managed = w.optional(db)?;
    w.put("inventory.json", &mut part(db, "inventory.json"))?;
    w.present.push("inventory.json");
    let roles = String::from_utf8_lossy(&db.read_to_vec("roles.sql")?).into_owned();
    let readme = readme(snap, db, &w.present, &roles, &managed, &extra);
    w.put("README.txt", &mut |o| Ok(o.write_all(readme.as_bytes())?))?;
    Ok(w.files)
}

/// The stored directory name for `--database NAME`: the name as given when the snapshot has a
/// directory of that name, else its encoded form (`/`, `%`, control characters percent-encoded)
/// when that one exists. `DbSnapshot::open` words the errors.
fn database_dir(
    repo: &snap::repo::Repository,
    snap: &Snapshot,
    name: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let Some(n) = name else { return Ok(None) };
    let encoded = snap::source::postgres::dump::path_component(n);
    if encoded == n {
        return Ok(Some(n.to_string()));
    }
    let dbs = dbsnap::databases(&repo.load_tree(&snap.manifest)?);
    Ok(Some(
        if !dbs.iter().any(|d| d == n) && dbs.contains(&encoded) {
            encoded
        } else {
            n.to_string()
        },
    ))
}

/// Write `dir/rel` through a temporary file in the same directory (mode 0600), synced and
/// renamed into place when complete. Returns the file's size.
fn write_atomic(
    dir: &Path,
    rel: &str,
    fill: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let path = dir.join(rel);
    let parent = path.parent().unwrap_or(dir);
    snap::util::create_private_dir_all(parent)
        .with_context(|| format!("creating {}", parent.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.snap-tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    struct Cleanup<'p>(&'p Path, bool);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = fs::remove_file(self.0);
            }
        }
    }
    let mut guard = Cleanup(&tmp, false);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    fill(&mut w).with_context(|| format!("writing {}", path.display()))?;
    let f = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    let bytes = f.metadata()?.len();
    drop(f);
    fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    guard.1 = true;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Roles that `roles.sql` creates with LOGIN (their passwords are not in the dump).
fn login_roles(roles: &str) -> Vec<String> {
    roles
        .lines()
        .filter_map(|l| l.strip_prefix("ALTER ROLE \""))
        .filter_map(|l| {
            let (name, rest) = l.split_once("\" WITH ")?;
            rest.trim_end_matches(';')
                .split_whitespace()
                .any(|w| w == "LOGIN")
                .then(|| name.replace("\"\"", "\""))
        })
        .collect()
}

/// What each file of a dump holds (README.txt lists those present).
const ABOUT: [(&str, &str); 10] = [
    (
        "roles.sql",
        "the roles (cluster-wide); Supabase's reserved roles are commented out",
    ),
    (
        "schema.sql",
        "your schemas (the Supabase-managed ones excluded), cleaned as `supabase db dump` does",
    ),
    (
        PRIVILEGES,
        "every object's privileges exactly as they were (a new project's default\n                       privileges grant anon and authenticated ALL on what schema.sql creates)",
    ),
    (
        ADDITIONS,
        "your own triggers, policies and functions in auth and storage",
    ),
    (
        CRON,
        "the pg_cron jobs, through cron.schedule_in_database (postgres may not write cron.job)",
    ),
    (
        "data.sql",
        "all rows (auth, storage, supabase_functions included), between\n                       `SET session_replication_role = replica;` and `RESET ALL;`",
    ),
    (
        "migrations.sql",
        "the Supabase CLI's migration history (schema supabase_migrations)",
    ),
    (
        "managed/auth.sql",
        "the auth schema as it was, with your own triggers, policies, functions",
    ),
    (
        "managed/storage.sql",
        "the storage schema as it was, with your own policies, triggers, functions",
    ),
    (
        "inventory.json",
        "versions, sizes, tables, extensions, realtime, webhooks, grants",
    ),
];

/// README.txt: what the files hold, and the psql command lines that restore them.
fn readme(
    snap: &Snapshot,
    db: &DbSnapshot,
    present: &[&str],
    roles: &str,
    managed: &[(&str, String)],
    extra: &PsqlExtras,
) -> String {
    let supabase = db.inventory.supabase.unwrap_or(false);
    let mut r = String::new();
    readme_head(&mut r, snap, db, present);
    readme_before(&mut r, db, supabase);
    let step = readme_restore(&mut r, present);
    readme_additions(&mut r, managed, extra);
    readme_after(&mut r, step, roles, supabase);
    r
}

/// README.txt's opening: where the dump comes from, and what each file holds.
fn readme_head(r: &mut String, snap: &Snapshot, db: &DbSnapshot, present: &[&str]) {
    let inv = &db.inventory;
    let has = |f: &str| present.contains(&f);
    let m = &snap.manifest;
    let _ = writeln!(
        r,
        "Database {:?} from snap snapshot {} ({}, host {}), written by snap {}.",
        db.database,
        snap.id.short(),
        m.time.to_rfc3339(),
        m.host,
        env!("CARGO_PKG_VERSION")
    );
    if let (Some(s), Some(d)) = (&inv.server_version, &inv.pg_dump_version) {
        let _ = writeln!(r, "Server PostgreSQL {s}; dumped with {d}.");
    }
    r.push_str(
        "\nThese files restore with psql alone (snap is not needed). Use a psql at least as new as the\n\
         pg_dump above: the files may contain \\restrict lines that older releases do not know.\n\
         They hold the database's data: keep them private (they are written with mode 0600).\n\n",
    );
    for (f, what) in ABOUT.iter().filter(|(f, _)| has(f)) {
        let _ = writeln!(r, "  {f:<20} {what}");
    }
}

/// README.txt's "Before:" paragraph (what to enable in the target first) and the DB_URL to set.
fn readme_before(r: &mut String, db: &DbSnapshot, supabase: bool) {
    let inv = &db.inventory;
    r.push_str(if supabase {
        "\nRESTORE INTO A NEW SUPABASE PROJECT (the official recipe), from this directory\n\n"
    } else {
        "\nRESTORE INTO A NEW, EMPTY DATABASE (`createdb`), from this directory\n\n"
    });
    r.push_str("Before: ");
    let exts: Vec<String> = (inv.extensions.iter())
        .filter(|e| e.name != "plpgsql")
        .map(|e| format!("{} (schema {})", e.name, e.schema.as_deref().unwrap_or("?")))
        .collect();
    let mut before = Vec::new();
    if !exts.is_empty() {
        before.push(format!(
            "enable the extensions this database used: {}",
            exts.join(", ")
        ));
    }
    let hooks = inv.webhooks.len();
    if hooks > 0 {
        before.push(format!("enable Database Webhooks ({hooks} webhook trigger(s) call supabase_functions.http_request)"));
    }
    let rt: Vec<String> = (inv.realtime.tables.iter())
        .map(|t| format!("{}.{}", t.schema, t.table))
        .collect();
    if !rt.is_empty() {
        before.push(format!(
            "enable Realtime (the publication supabase_realtime must exist; schema.sql adds {} to it)",
            rt.join(", ")
        ));
    }
    if before.is_empty() {
        before.push("nothing special".into());
    }
    let _ = writeln!(r, "{}.", before.join(";\n        "));
    r.push_str(if supabase {
        "Then set DB_URL to the project's direct connection (port 5432; Dashboard > Connect):\n\n    \
         DB_URL='postgresql://postgres:[YOUR-PASSWORD]@db.[PROJECT-REF].supabase.co:5432/postgres'\n\n"
    } else {
        "Then set DB_URL to the new database:\n\n    DB_URL='postgresql://postgres@localhost:5432/newdb'\n\n"
    });
}

/// README.txt's psql steps for the files present (the data, then the migration history);
/// returns the number of the next step.
fn readme_restore(r: &mut String, present: &[&str]) -> u32 {
    let has = |f: &str| present.contains(&f);
    let file = |f: &str| {
        if has(f) {
            format!(" --file {f}")
        } else {
            String::new()
        }
    };
    let _ = write!(
        r,
        "1. Roles, schema, privileges and data, in one transaction:\n\n    \
         psql --single-transaction --variable ON_ERROR_STOP=1 --file roles.sql --file schema.sql{} --command 'SET session_replication_role = replica' --file data.sql{}{} --dbname \"$DB_URL\"\n\n",
        file(PRIVILEGES),
        file(ADDITIONS),
        file(CRON)
    );
    if has(CRON) {
        r.push_str("   The pg_cron jobs are scheduled as the role psql connects as (postgres on a hosted project).\n\n");
    }
    let mut step = 2;
    if has("migrations.sql") {
        let _ = write!(
            r,
            "{step}. The migration history (supabase_migrations.schema_migrations):\n\n    \
             psql --single-transaction --variable ON_ERROR_STOP=1 --file migrations.sql --dbname \"$DB_URL\"\n\n"
        );
        step += 1;
    }
    step
}

/// README.txt's list of your additions to auth and storage (or that there are none).
fn readme_additions(r: &mut String, managed: &[(&str, String)], extra: &PsqlExtras) {
    if !extra.additions_list.is_empty() {
        let _ = writeln!(
            r,
            "Your own additions to auth and storage ({ADDITIONS}, applied in step 1):"
        );
        for a in &extra.additions_list {
            let _ = writeln!(r, "    {a}");
        }
        r.push_str(
            "   Indexes you added there cannot be told from the platform's without the target: see\n   \
             managed/*.sql (snap restore --db compares with the target and applies them too).\n\n",
        );
    } else if !managed.is_empty() {
        r.push_str("No additions of yours to auth or storage were found (triggers, policies, functions).\n\n");
    }
}

/// README.txt's closing steps from number `step`: reloading the API's schema, the login roles'
/// passwords, and what a failure means.
fn readme_after(r: &mut String, mut step: u32, roles: &str, supabase: bool) {
    if supabase {
        let _ = write!(
            r,
            "{step}. Let the API see the new schema:\n\n    psql --command \"NOTIFY pgrst, 'reload schema';\" --dbname \"$DB_URL\"\n\n"
        );
        step += 1;
    }
    let logins = login_roles(roles);
    if !logins.is_empty() {
        let quoted: Vec<String> = logins
            .iter()
            .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
            .collect();
        let _ = write!(
            r,
            "{step}. Passwords are not in the dump: set them for the login roles {}\n   \
             (ALTER ROLE \"name\" PASSWORD '…';).\n\n",
            quoted.join(", ")
        );
    }
    if supabase {
        r.push_str(
            "If it fails: a target that is not fresh gives duplicate keys (e.g. in schema_migrations);\n\
             `GRANT … TO \"postgres\"` or `ALTER … OWNER TO \"supabase_admin\"` lines, \"permission denied for\n\
             table hooks\" or \"must be owner\" on auth/storage objects need those lines commented out.\n",
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_roles() {
        let roles = "-- ALTER ROLE \"anon\" WITH NOLOGIN;\nALTER ROLE \"app\" WITH INHERIT LOGIN NOBYPASSRLS;\n\
                     ALTER ROLE \"ro\" WITH NOLOGIN;\nALTER ROLE \"we\"\"ird\" WITH LOGIN;\n";
        assert_eq!(super::login_roles(roles), ["app", "we\"ird"]);
    }
}
