//! What the target has and what the snapshot needs from it.

use std::collections::BTreeSet;

use crate::source::postgres::inventory::Inventory;
use serde::{Deserialize, Serialize};

use super::data_plan::DataPlan;
use super::{Scope, qi};
use crate::error::{Error, Result};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session;
use crate::supabase::{REALTIME_PUBLICATION, is_project_role};

/// What the target database has.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TargetInfo {
    pub server_version_num: u32,
    pub database: String,
    pub extensions: Vec<String>,
    pub available_extensions: Vec<String>,
    pub roles: Vec<String>,
    pub schemas: Vec<String>,
    pub publications: Vec<String>,
    /// `schema.table` of user tables that already hold rows.
    pub nonempty_tables: Vec<String>,
    pub has_http_request: bool,
    /// The role the restore runs as, and whether it is a superuser (on a hosted project
    /// `postgres` is not).
    #[serde(default)]
    pub current_user: String,
    #[serde(default)]
    pub superuser: bool,
    /// `schema.table` of existing tables the current user may not INSERT into.
    #[serde(default)]
    pub unwritable_tables: Vec<String>,
    /// `schema.sequence` of existing sequences the current user may not UPDATE (setval).
    #[serde(default)]
    pub unwritable_sequences: Vec<String>,
}

impl TargetInfo {
    /// A Supabase project (hosted or local): auth and storage schemas and the supabase_admin role.
    pub fn is_supabase(&self) -> bool {
        self.schemas.iter().any(|s| s == "auth")
            && self.schemas.iter().any(|s| s == "storage")
            && self.roles.iter().any(|r| r == "supabase_admin")
    }
}

const TARGET_SQL: &str = r#"
SELECT json_build_object(
  'server_version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'extensions', (SELECT coalesce(json_agg(extname ORDER BY extname), '[]') FROM pg_extension),
  'available_extensions', (SELECT coalesce(json_agg(name ORDER BY name), '[]') FROM pg_available_extensions),
  'roles', (SELECT coalesce(json_agg(rolname ORDER BY rolname), '[]') FROM pg_roles),
  'schemas', (SELECT coalesce(json_agg(nspname ORDER BY nspname), '[]') FROM pg_namespace),
  'publications', (SELECT coalesce(json_agg(pubname ORDER BY pubname), '[]') FROM pg_publication),
  'nonempty_tables', (SELECT coalesce(json_agg(format('%s.%s', n.nspname, c.relname) ORDER BY 1), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        AND n.nspname NOT IN ('auth', 'storage', 'extensions', 'supabase_functions', 'realtime', 'vault', 'graphql', 'net', 'cron')
        AND (c.reltuples > 0 OR pg_relation_size(c.oid) > 0)),
  'current_user', current_user,
  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  'unwritable_tables', (SELECT coalesce(json_agg(format('%s.%s', n.nspname, c.relname) ORDER BY 1), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'INSERT'))),
  'unwritable_sequences', (SELECT coalesce(json_agg(format('%s.%s', n.nspname, c.relname) ORDER BY 1), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_sequence_privilege(c.oid, 'UPDATE'))),
  'has_http_request', EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'supabase_functions' AND p.proname = 'http_request')
);
"#;

/// Read what the target has.
pub fn inspect(tools: &PgTools, conn: &ConnSpec) -> Result<TargetInfo> {
    let out = session::query(tools, conn, None, TARGET_SQL)?;
    serde_json::from_str(&out)
        .map_err(|e| Error::Invalid(format!("target inspection returned unexpected output: {e}")))
}

/// One line of the requirement report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// A blocking problem stops the restore.
    pub blocking: bool,
    pub what: String,
    /// What to run or do about it.
    pub fix: Option<String>,
}

/// Compare the snapshot's inventory with the target. Pure: no I/O.
pub fn requirements(
    inventory: &Inventory,
    parts_tables: &[(String, String)],
    t: &TargetInfo,
) -> Vec<Requirement> {
    let mut out = Vec::new();
    let src_num = inventory.server_version_num;
    if src_num / 10_000 > t.server_version_num / 10_000 {
        out.push(Requirement {
            blocking: true,
            what: format!(
                "the target runs PostgreSQL {}, older than the snapshot's {}: a dump of a newer server may not load",
                t.server_version_num / 10_000,
                src_num / 10_000
            ),
            fix: Some(format!("restore into PostgreSQL {} or newer", src_num / 10_000)),
        });
    }
    for e in &inventory.extensions {
        let (name, schema) = (e.name.as_str(), e.schema.as_deref().unwrap_or("public"));
        if name == "plpgsql" || t.extensions.iter().any(|x| x == name) {
            continue;
        }
        let available = t.available_extensions.iter().any(|x| x == name);
        out.push(Requirement {
            blocking: true,
            what: format!(
                "extension {name} is not installed in the target{}",
                if available {
                    ""
                } else {
                    " (and not available on its server)"
                }
            ),
            fix: Some(format!(
                "CREATE EXTENSION IF NOT EXISTS \"{name}\" WITH SCHEMA \"{schema}\";"
            )),
        });
    }
    let webhooks = inventory.webhooks.len();
    if webhooks > 0 && !t.has_http_request {
        out.push(Requirement {
            blocking: true,
            what: format!("{webhooks} database webhook trigger(s) need supabase_functions.http_request (and pg_net)"),
            fix: Some("enable Database Webhooks in the target project (Database → Webhooks)".into()),
        });
    }
    let realtime = inventory.realtime.tables.len();
    if realtime > 0 && !t.publications.iter().any(|p| p == REALTIME_PUBLICATION) {
        out.push(Requirement {
            blocking: true,
            what: format!("{realtime} table(s) are in the supabase_realtime publication, which the target lacks"),
            fix: Some("enable Realtime in the target project, or: CREATE PUBLICATION supabase_realtime;".into()),
        });
    }
    let missing_roles: BTreeSet<&str> = inventory
        .roles
        .iter()
        .map(String::as_str)
        .filter(|r| is_project_role(r) && !t.roles.iter().any(|x| x == r))
        .collect();
    for r in missing_roles {
        out.push(Requirement {
            blocking: true,
            what: format!(
                "role {r} is reserved (roles.sql does not create it) and missing in the target"
            ),
            fix: Some(format!(
                "CREATE ROLE \"{r}\" NOLOGIN;  -- a Supabase project has it"
            )),
        });
    }
    let clash: Vec<String> = parts_tables
        .iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .filter(|st| t.nonempty_tables.contains(st))
        .collect();
    if !clash.is_empty() {
        out.push(Requirement {
            blocking: true,
            what: format!("the target already has rows in {}", clash.join(", ")),
            fix: Some("restore into an empty database".into()),
        });
    }
    out
}

/// The notes of a [`DataPlan`]: what is recreated through an extension's API and what is left
/// out, with the reason (never blocking: the rest restores exactly).
pub fn plan_notes(plan: &DataPlan) -> Vec<Requirement> {
    let mut out = Vec::new();
    if !plan.cron_jobs.is_empty() {
        out.push(Requirement {
            blocking: false,
            what: format!(
                "{} pg_cron job(s) are recreated with cron.schedule_in_database (name, schedule, command, database, user, active), not copied into cron.job",
                plan.cron_jobs.len()
            ),
            fix: None,
        });
    }
    for l in &plan.left_out {
        out.push(Requirement {
            blocking: false,
            what: format!("{} will not be restored: {}", l.what, l.reason),
            fix: None,
        });
    }
    out
}

/// The inventory limited to `scope` (webhooks and realtime tables of the restored tables only).
pub fn scope_inventory(inv: &Inventory, scope: &Scope) -> Inventory {
    inv.scoped(|schema, table| scope.covers_table(schema, table))
}

/// Whether `schema`.`table` exists in the target.
pub fn table_exists(tools: &PgTools, conn: &ConnSpec, schema: &str, table: &str) -> Result<bool> {
    let lit = format!("{}.{}", qi(schema), qi(table)).replace('\'', "''");
    Ok(session::query(
        tools,
        conn,
        None,
        &format!("SELECT to_regclass('{lit}') IS NOT NULL;"),
    )?
    .trim()
        == "t")
}

/// Which of `tables` (`schema`, `table`) exist in the target and hold at least one row (exact,
/// unlike [`TargetInfo::nonempty_tables`], and including the Supabase-managed schemas).
pub fn tables_with_rows(
    tools: &PgTools,
    conn: &ConnSpec,
    tables: &[(String, String)],
) -> Result<Vec<String>> {
    if tables.is_empty() {
        return Ok(vec![]);
    }
    let q: Vec<String> = tables
        .iter()
        .map(|(s, t)| {
            let lit = format!("{}.{}", qi(s), qi(t)).replace('\'', "''");
            format!(
                // query_to_xml of an empty table is '' (not a document): compare the text. CASE
                // keeps a missing table from being queried.
                "SELECT '{}' WHERE CASE WHEN to_regclass('{lit}') IS NULL THEN false ELSE query_to_xml('SELECT 1 AS c FROM {} LIMIT 1', false, true, '')::text <> '' END",
                format!("{s}.{t}").replace('\'', "''"),
                lit
            )
        })
        .collect();
    Ok(
        session::query(tools, conn, None, &format!("{};", q.join(" UNION ALL ")))?
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}
