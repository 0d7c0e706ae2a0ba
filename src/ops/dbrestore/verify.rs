//! Comparing the restored target with the snapshot.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::load::scoped_parts;
use super::requirements::names;
use super::{Scope, qi};
use crate::error::{Error, Result};
use crate::ops::dbsnap::{DataPart, DbSnapshot};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session;

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
  'realtime', (SELECT coalesce(json_agg(format('%s.%s', schemaname, tablename)), '[]') FROM pg_publication_tables WHERE pubname = 'supabase_realtime'),
  'grants', (SELECT coalesce(json_agg(format('%s %s %s.%s', grantee, privilege_type, table_schema, table_name)), '[]')
      FROM information_schema.role_table_grants WHERE grantee IN ('anon', 'authenticated', 'service_role'))
);
"#;

pub(super) fn set(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

/// Compare the restored whole database with the snapshot.
fn verify_whole(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let tables: Vec<&DataPart> = db.tables().filter(|p| p.schema.is_some() && p.table.is_some()).collect();
    if !tables.is_empty() {
        checks.push(row_counts(&tables, format!("row counts of {} tables", tables.len()), tools, conn)?);
    }
    let target: Value = serde_json::from_str(&session::query(tools, conn, None, VERIFY_SQL)?).map_err(|e| Error::Invalid(format!("verification query: {e}")))?;
    let inv = &db.inventory;
    let want = |key: &str, f: &dyn Fn(&Value) -> Option<String>| -> BTreeSet<String> { names(inv, key).filter_map(f).collect() };
    let compare = |what: &str, want: BTreeSet<String>, have: BTreeSet<String>, checks: &mut Vec<Check>| {
        let missing: Vec<_> = want.difference(&have).cloned().collect();
        checks.push(Check {
            what: format!("{what} ({})", want.len()),
            ok: missing.is_empty(),
            detail: if missing.is_empty() { "all present".into() } else { format!("missing: {}", missing.join(", ")) },
        });
    };
    let user = |v: &Value| !matches!(v["schema"].as_str(), Some("auth" | "storage" | "extensions" | "supabase_functions" | "supabase_migrations" | "realtime" | "vault" | "graphql" | "graphql_public" | "net" | "pgbouncer" | "cron"));
    compare(
        "functions",
        want("functions", &|f| if user(f) { Some(format!("{}.{}({})", f["schema"].as_str()?, f["name"].as_str()?, f["args"].as_str()?)) } else { None }),
        set(&target["functions"]),
        &mut checks,
    );
    compare(
        "policies",
        want("policies", &|p| if user(p) { Some(format!("{}.{}.{}", p["schema"].as_str()?, p["table"].as_str()?, p["policy"].as_str()?)) } else { None }),
        set(&target["policies"]),
        &mut checks,
    );
    compare(
        "realtime publication tables",
        names(&inv["realtime"], "tables").filter_map(|t| Some(format!("{}.{}", t["schema"].as_str()?, t["table"].as_str()?))).collect(),
        set(&target["realtime"]),
        &mut checks,
    );
    compare(
        "grants to anon/authenticated/service_role",
        want("grants", &|g| if user(g) { Some(format!("{} {} {}.{}", g["grantee"].as_str()?, g["privilege"].as_str()?, g["schema"].as_str()?, g["table"].as_str()?)) } else { None }),
        set(&target["grants"]),
        &mut checks,
    );
    Ok(checks)
}

/// Compare the restored `scope` with the snapshot: for the whole database row counts,
/// functions, policies, realtime publication tables and grants; for a schema or table the row
/// counts of its tables.
pub fn verify(db: &DbSnapshot, tools: &PgTools, conn: &ConnSpec, scope: &Scope) -> Result<Vec<Check>> {
    if *scope == Scope::Whole {
        return verify_whole(db, tools, conn);
    }
    let tables = scoped_parts(db, scope);
    if tables.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![row_counts(&tables, format!("row counts of {} tables ({})", tables.len(), scope.describe()), tools, conn)?])
}

/// One check: each table's row count in the target equals the snapshot's.
fn row_counts(tables: &[&DataPart], what: String, tools: &PgTools, conn: &ConnSpec) -> Result<Check> {
    let q: Vec<String> = tables.iter().map(|p| format!("SELECT count(*) FROM {}.{}", qi(p.schema.as_deref().unwrap_or("")), qi(p.table.as_deref().unwrap_or("")))).collect();
    let out = session::query(tools, conn, None, &format!("{};", q.join(" UNION ALL ")))?;
    let mut bad = Vec::new();
    for (p, line) in tables.iter().zip(out.lines()) {
        let got: u64 = line.trim().parse().unwrap_or(u64::MAX);
        if Some(got) != p.rows {
            bad.push(format!("{}.{}: {} rows, snapshot has {}", p.schema.as_deref().unwrap_or(""), p.table.as_deref().unwrap_or(""), got, p.rows.unwrap_or(0)));
        }
    }
    Ok(Check { what, ok: bad.is_empty(), detail: if bad.is_empty() { "all equal".into() } else { bad.join("; ") } })
}
