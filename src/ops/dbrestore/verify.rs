//! Comparing the restored target with the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::acl;
use super::additions::{self, AdditionsPlan};
use super::data_plan::DataPlan;
use super::load::RestoreOptions;
use super::load::{owned_of, scoped_parts};
use super::{Scope, is_managed_schema, qi, ql};
use crate::error::{Error, Result};
use crate::ops::dbsnap::{DataPart, DbSnapshot};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::inventory::Acls;
use crate::source::postgres::inventory::ManagedObject;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session;
use crate::supabase::EXTENDED_MANAGED_SCHEMAS;

/// One verification check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

const VERIFY_SQL: &str = r#"
SELECT json_build_object(
  'functions', (SELECT coalesce(json_agg(format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))), '[]')
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace),
  'policies', (SELECT coalesce(json_agg(format('%s.%s.%s', schemaname, tablename, policyname)), '[]') FROM pg_policies),
  'realtime', (SELECT coalesce(json_agg(format('%s.%s', schemaname, tablename)), '[]') FROM pg_publication_tables WHERE pubname = 'supabase_realtime')
);
"#;

/// What [`VERIFY_SQL`] reads from the target.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct TargetObjects {
    functions: Vec<String>,
    policies: Vec<String>,
    realtime: Vec<String>,
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

/// Compare the restored whole database with the snapshot.
fn verify_whole(
    db: &DbSnapshot,
    tools: &PgTools,
    conn: &ConnSpec,
    plan: &DataPlan,
    added: &AdditionsPlan,
) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let tables: Vec<&DataPart> = db
        .tables()
        .filter(|p| p.schema.is_some() && p.table.is_some() && plan.feeds(p))
        .collect();
    if !tables.is_empty() {
        checks.push(row_counts(
            &tables,
            format!("row counts of {} tables", tables.len()),
            tools,
            conn,
        )?);
    }
    if !plan.cron_jobs.is_empty() {
        checks.push(cron_jobs(plan, tools, conn)?);
    }
    // The target's ACLs (and function signatures), read once for both checks below.
    let have_acls = match db.catalog()? {
        Some(_) => Some(Acls::read(tools, conn, None)?),
        None => None,
    };
    checks.extend(privileges(db, &Scope::Whole, have_acls.as_ref())?);
    if !added.apply.is_empty() {
        checks.push(additions_check(added, tools, conn)?);
    }
    let target: TargetObjects =
        serde_json::from_str(&session::query(tools, conn, None, VERIFY_SQL)?)
            .map_err(|e| Error::Invalid(format!("verification query: {e}")))?;
    checks.extend(objects_present(db, have_acls.as_ref(), &target)?);
    Ok(checks)
}

/// Whether the user's additions to auth and storage are on the target as they were.
fn additions_check(added: &AdditionsPlan, tools: &PgTools, conn: &ConnSpec) -> Result<Check> {
    let have = ManagedObject::read(tools, conn, None, EXTENDED_MANAGED_SCHEMAS)?;
    let diffs = additions::differences(&added.apply, &have);
    Ok(Check {
        what: format!("your additions to auth and storage ({})", added.apply.len()),
        ok: diffs.is_empty(),
        detail: if diffs.is_empty() {
            "all present, as they were".into()
        } else {
            diffs.join("; ")
        },
    })
}

/// The check that everything in `want` is in `have`.
fn presence(what: &str, want: BTreeSet<String>, have: BTreeSet<String>) -> Check {
    let missing: Vec<_> = want.difference(&have).cloned().collect();
    Check {
        what: format!("{what} ({})", want.len()),
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            "all present".into()
        } else {
            format!("missing: {}", missing.join(", "))
        },
    }
}

/// The checks that the snapshot's functions, policies and realtime publication tables are on
/// the target.
fn objects_present(
    db: &DbSnapshot,
    have_acls: Option<&Acls>,
    target: &TargetObjects,
) -> Result<Vec<Check>> {
    let inv = &db.inventory;
    let user = |schema: &str| !is_managed_schema(schema);
    let (want_fns, have_fns) = function_sets(db, have_acls, target)?;
    Ok(vec![
        presence("functions", want_fns, have_fns),
        presence(
            "policies",
            inv.policies
                .iter()
                .filter(|p| user(&p.schema))
                .map(|p| format!("{}.{}.{}", p.schema, p.table, p.policy))
                .collect(),
            set(&target.policies),
        ),
        presence(
            "realtime publication tables",
            inv.realtime
                .tables
                .iter()
                .map(|t| format!("{}.{}", t.schema, t.table))
                .collect(),
            set(&target.realtime),
        ),
    ])
}

/// The functions wanted and had: by a search_path-independent signature (catalog.json's, read
/// back from the target by the same query); snapshots without it: the inventory's identity
/// arguments.
fn function_sets(
    db: &DbSnapshot,
    have_acls: Option<&Acls>,
    target: &TargetObjects,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    Ok(match (db.catalog()?, have_acls) {
        (Some(c), Some(have)) => {
            let sig = |a: &Acls, mine: bool| -> BTreeSet<String> {
                a.objects
                    .iter()
                    .filter(|o| o.kind == "function" && (!mine || !is_managed_schema(&o.schema)))
                    .map(|o| o.name.clone())
                    .collect()
            };
            (sig(&c.acls, true), sig(have, false))
        }
        _ => (
            db.inventory
                .functions
                .iter()
                .filter(|f| !is_managed_schema(&f.schema))
                .map(|f| format!("{}.{}({})", f.schema, f.name, f.args))
                .collect(),
            set(&target.functions),
        ),
    })
}

/// Compare the restored `scope` with the snapshot: for the whole database row counts,
/// functions, policies, realtime publication tables and grants; for a schema or table the row
/// counts of its tables.
pub fn verify(
    db: &DbSnapshot,
    tools: &PgTools,
    conn: &ConnSpec,
    scope: &Scope,
    opts: &RestoreOptions,
) -> Result<Vec<Check>> {
    let (plan, data_only) = (&opts.data, opts.data_only);
    if *scope == Scope::Whole {
        return verify_whole(db, tools, conn, plan, &opts.additions);
    }
    let tables: Vec<&DataPart> = scoped_parts(db, scope)
        .into_iter()
        .filter(|p| plan.feeds(p))
        .collect();
    let mut checks = Vec::new();
    if !tables.is_empty() {
        checks.push(row_counts(
            &tables,
            format!(
                "row counts of {} tables ({})",
                tables.len(),
                scope.describe()
            ),
            tools,
            conn,
        )?);
    }
    if !plan.cron_jobs.is_empty() {
        checks.push(cron_jobs(plan, tools, conn)?);
    }
    if !data_only && db.catalog()?.is_some() {
        checks.extend(privileges(
            db,
            scope,
            Some(&Acls::read(tools, conn, None)?),
        )?);
    }
    checks.extend(super::fkeys::check(
        &super::load::part_tables(&tables),
        tools,
        conn,
    )?);
    Ok(checks)
}

/// One check: every restored object's ACL, and the default privileges of the restored
/// schemas, equal the snapshot's (none for a snapshot written before snap recorded ACLs).
/// `have`: the target's, read with [`Acls::read`].
fn privileges(db: &DbSnapshot, scope: &Scope, have: Option<&Acls>) -> Result<Option<Check>> {
    let (Some(want), Some(have)) = (db.catalog()?.map(|c| &c.acls), have) else {
        return Ok(None);
    };
    let owned = owned_of(
        &String::from_utf8_lossy(&db.read_to_vec("schema.sql")?),
        scope,
    );
    let objects = acl::objects_in_scope(want, scope, &owned);
    let defaults = acl::defaults_in_scope(want, scope);
    let mut diffs = acl::differences(&objects, have);
    diffs.extend(acl::default_differences(&defaults, have));
    Ok(Some(Check {
        what: format!(
            "privileges of {} objects and {} default privileges (exact)",
            objects.len(),
            defaults.len()
        ),
        ok: diffs.is_empty(),
        detail: if diffs.is_empty() {
            "all equal".into()
        } else {
            diffs.join("; ")
        },
    }))
}

/// One check: every pg_cron job recreated is in `cron.job` as it was (name, schedule,
/// command, user, active; the database is the target's own for the snapshot's database).
fn cron_jobs(plan: &DataPlan, tools: &PgTools, conn: &ConnSpec) -> Result<Check> {
    let out = session::query(
        tools,
        conn,
        None,
        "SELECT coalesce(json_agg(json_build_array(jobname, schedule, command, username, active)), '[]') FROM cron.job;",
    )?;
    let have: Vec<(Option<String>, String, String, String, bool)> = serde_json::from_str(&out)
        .map_err(|e| Error::Invalid(format!("cron.job query returned unexpected output: {e}")))?;
    let missing: Vec<String> = plan
        .cron_jobs
        .iter()
        .filter(|j| {
            !have.iter().any(|h| {
                h.0 == j.jobname
                    && h.1 == j.schedule
                    && h.2 == j.command
                    && h.3 == j.username
                    && h.4 == j.active
            })
        })
        .map(|j| {
            j.jobname
                .clone()
                .unwrap_or_else(|| format!("({}: {})", j.schedule, j.command))
        })
        .collect();
    Ok(Check {
        what: format!("pg_cron jobs ({})", plan.cron_jobs.len()),
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            "all scheduled as they were".into()
        } else {
            format!("missing or different: {}", missing.join(", "))
        },
    })
}

/// `schema.table` of a part.
fn table_name(p: &DataPart) -> String {
    format!(
        "{}.{}",
        p.schema.as_deref().unwrap_or(""),
        p.table.as_deref().unwrap_or("")
    )
}

/// The row count of each table, labelled by name (a UNION ALL may come back in any order, e.g.
/// run as a Parallel Append).
fn count_rows(
    tables: &[&DataPart],
    tools: &PgTools,
    conn: &ConnSpec,
) -> Result<BTreeMap<String, u64>> {
    let q: Vec<String> = tables
        .iter()
        .map(|p| {
            format!(
                "SELECT {} AS t, count(*) AS n FROM {}.{}",
                ql(&table_name(p)),
                qi(p.schema.as_deref().unwrap_or("")),
                qi(p.table.as_deref().unwrap_or(""))
            )
        })
        .collect();
    let out = session::query(
        tools,
        conn,
        None,
        &format!(
            "SELECT coalesce(json_object_agg(t, n), '{{}}') FROM ({}) AS c;",
            q.join(" UNION ALL ")
        ),
    )?;
    serde_json::from_str(&out)
        .map_err(|e| Error::Invalid(format!("row count query returned unexpected output: {e}")))
}

/// One check: each table's row count in the target equals the snapshot's.
fn row_counts(
    tables: &[&DataPart],
    what: String,
    tools: &PgTools,
    conn: &ConnSpec,
) -> Result<Check> {
    let got = count_rows(tables, tools, conn)?;
    Ok(compare_counts(tables, &got, what))
}

/// Pure part of [`row_counts`].
fn compare_counts(tables: &[&DataPart], got: &BTreeMap<String, u64>, what: String) -> Check {
    let mut bad = Vec::new();
    for p in tables {
        let name = table_name(p);
        match got.get(&name) {
            Some(n) if Some(*n) == p.rows => {}
            Some(n) => bad.push(format!(
                "{name}: {n} rows, snapshot has {}",
                p.rows.unwrap_or(0)
            )),
            None => bad.push(format!("{name}: not counted")),
        }
    }
    Check {
        what,
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            "all equal".into()
        } else {
            bad.join("; ")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(s: &str, t: &str, rows: u64) -> DataPart {
        DataPart {
            path: format!("tables/{s}.{t}.sql"),
            kind: "copy".into(),
            schema: Some(s.into()),
            table: Some(t.into()),
            rows: Some(rows),
            bytes: None,
        }
    }

    #[test]
    fn row_counts_are_matched_by_name_not_position() {
        let parts = [part("auth", "users", 3001), part("public", "tags", 8)];
        let refs: Vec<&DataPart> = parts.iter().collect();
        // The query's answer, in whatever order the server produced it.
        let got = BTreeMap::from([
            ("public.tags".to_string(), 8),
            ("auth.users".to_string(), 3001),
        ]);
        assert!(compare_counts(&refs, &got, "row counts".into()).ok);
        let got = BTreeMap::from([
            ("public.tags".to_string(), 7),
            ("auth.users".to_string(), 3001),
        ]);
        let c = compare_counts(&refs, &got, "row counts".into());
        assert_eq!(c.detail, "public.tags: 7 rows, snapshot has 8");
        let c = compare_counts(&refs, &BTreeMap::new(), "row counts".into());
        assert!(!c.ok && c.detail.contains("auth.users: not counted"));
    }
}
