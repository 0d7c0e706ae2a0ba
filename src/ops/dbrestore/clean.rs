//! `--clean`: what a restore drops first, computed from the target's catalogs before anything
//! is asked or changed.
//!
//! A schema is emptied, not dropped: its owner, ACL and default privileges (including those of
//! roles the restoring user may not act for, such as supabase_admin's in `public`) stay as
//! they are. Every object in it (tables, views, sequences, functions, types; extension members
//! aside) is dropped with CASCADE, or for `--table` the table alone. What a CASCADE would also
//! take outside the restored scope is found by following `pg_depend` from the target's catalog:
//! triggers and policies of yours on auth and storage are re-created after the data (from the
//! snapshot, see [`super::additions`]); anything else blocks the restore, named, so that nothing
//! is dropped silently.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::schema_blocks::{split_schema_sql, user_schemas};
use super::{Scope, is_managed_schema, ql};
use crate::error::{Error, Result};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::inventory::ManagedObject;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session;

/// The schemas `--clean` empties for `scope` (user schemas only), or the table it drops.
pub fn cleaned(schema_sql: &str, scope: &Scope) -> (Vec<String>, Option<(String, String)>) {
    match scope {
        Scope::Whole => (
            user_schemas(&split_schema_sql(schema_sql).1)
                .into_iter()
                .collect(),
            None,
        ),
        Scope::Schema(s) if !is_managed_schema(s) => (vec![s.clone()], None),
        Scope::Table(s, t) if !is_managed_schema(s) => (vec![], Some((s.clone(), t.clone()))),
        _ => (vec![], None),
    }
}

/// One object of the target that `--clean` drops.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dropped {
    /// `TABLE`, `VIEW`, `MATERIALIZED VIEW`, `SEQUENCE`, `FOREIGN TABLE`, `TYPE`, `DOMAIN`,
    /// `ROUTINE`, `AGGREGATE`.
    pub kind: String,
    /// Qualified, as SQL spells it.
    pub name: String,
}

/// Something outside the restored scope that a CASCADE would take with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dependent {
    /// As PostgreSQL describes it (`trigger on_auth_user_created on table auth.users`).
    pub what: String,
    /// For a trigger or policy: its kind (`trigger`, `policy`), schema, table and name, to match
    /// the snapshot's additions.
    pub kind: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub name: Option<String>,
}

/// What `--clean` does, from the target's catalogs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanPlan {
    /// Emptied, never dropped.
    pub schemas: Vec<String>,
    pub dropped: Vec<Dropped>,
    /// Outside the scope, re-created after the data from the snapshot (your additions).
    pub recreated: Vec<Dependent>,
    /// Outside the scope, and not re-creatable: the restore refuses.
    pub blocking: Vec<Dependent>,
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "NULL".into();
    }
    names.iter().map(|s| ql(s)).collect::<Vec<_>>().join(", ")
}

/// The query: objects to drop and outside dependents (one JSON document).
fn plan_sql(schemas: &[String], table: Option<&(String, String)>) -> String {
    let seed = match table {
        Some((s, t)) => format!(
            "SELECT 'pg_class'::regclass::oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {}",
            ql(s),
            ql(t)
        ),
        None => {
            let l = list(schemas);
            format!(
                "SELECT 'pg_class'::regclass::oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ({l}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') \
                 UNION ALL SELECT 'pg_proc'::regclass::oid, p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ({l}) \
                 UNION ALL SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname IN ({l}) AND t.typtype IN ('e', 'd', 'r', 'm')"
            )
        }
    };
    format!(
        r#"
WITH RECURSIVE
seed(classid, objid) AS (
  SELECT s.* FROM ({seed}) AS s(classid, objid)
   WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = s.classid AND e.objid = s.objid AND e.deptype = 'e')
),
edges(classid, objid, refclassid, refobjid, deptype) AS (
  SELECT classid, objid, refclassid, refobjid, deptype FROM pg_depend WHERE deptype IN ('n', 'a', 'i')
  UNION ALL
  -- A view goes with its rule (pg_depend records only the rule's dependencies).
  SELECT 'pg_class'::regclass::oid, r.ev_class, 'pg_rewrite'::regclass::oid, r.oid, 'i' FROM pg_rewrite r
),
inside(classid, objid) AS (
  SELECT classid, objid FROM seed
  UNION
  SELECT e.classid, e.objid FROM edges e JOIN inside i ON e.refclassid = i.classid AND e.refobjid = i.objid
   WHERE e.deptype IN ('a', 'i') AND NOT (e.classid = 'pg_class'::regclass::oid AND e.refclassid = 'pg_rewrite'::regclass::oid)
),
gone(classid, objid) AS (
  SELECT classid, objid FROM inside
  UNION
  SELECT e.classid, e.objid FROM edges e JOIN gone g ON e.refclassid = g.classid AND e.refobjid = g.objid
),
outside AS (
  SELECT DISTINCT g.classid, g.objid FROM gone g
   WHERE NOT EXISTS (SELECT 1 FROM inside i WHERE i.classid = g.classid AND i.objid = g.objid)
     AND g.classid NOT IN ('pg_rewrite'::regclass::oid, 'pg_attrdef'::regclass::oid, 'pg_type'::regclass::oid)
     AND NOT (g.classid = 'pg_class'::regclass::oid AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.objid AND c.relkind IN ('i', 'I', 't')))
)
SELECT json_build_object(
  'dropped', (SELECT coalesce(json_agg(json_build_object('kind', k, 'name', n) ORDER BY o, n), '[]') FROM (
      SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
             WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END AS k, format('%I.%I', n.nspname, c.relname) AS n,
             CASE c.relkind WHEN 'r' THEN 0 WHEN 'p' THEN 0 WHEN 'f' THEN 0 WHEN 'v' THEN 1 WHEN 'm' THEN 1 ELSE 2 END AS o
        FROM seed s JOIN pg_class c ON s.classid = 'pg_class'::regclass::oid AND c.oid = s.objid JOIN pg_namespace n ON n.oid = c.relnamespace
      UNION ALL
      SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)), 3
        FROM seed s JOIN pg_proc p ON s.classid = 'pg_proc'::regclass::oid AND p.oid = s.objid JOIN pg_namespace n ON n.oid = p.pronamespace
      UNION ALL
      SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname), 4
        FROM seed s JOIN pg_type t ON s.classid = 'pg_type'::regclass::oid AND t.oid = s.objid JOIN pg_namespace n ON n.oid = t.typnamespace
    ) d),
  'outside', (SELECT coalesce(json_agg(json_build_object(
        'what', pg_describe_object(o.classid, o.objid, 0),
        'kind', CASE o.classid WHEN 'pg_trigger'::regclass::oid THEN 'trigger' WHEN 'pg_policy'::regclass::oid THEN 'policy' END,
        'schema', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = coalesce(
              (SELECT tgrelid FROM pg_trigger WHERE o.classid = 'pg_trigger'::regclass::oid AND oid = o.objid),
              (SELECT polrelid FROM pg_policy WHERE o.classid = 'pg_policy'::regclass::oid AND oid = o.objid))),
        'table', (SELECT c.relname FROM pg_class c WHERE c.oid = coalesce(
              (SELECT tgrelid FROM pg_trigger WHERE o.classid = 'pg_trigger'::regclass::oid AND oid = o.objid),
              (SELECT polrelid FROM pg_policy WHERE o.classid = 'pg_policy'::regclass::oid AND oid = o.objid))),
        'name', coalesce((SELECT tgname FROM pg_trigger WHERE o.classid = 'pg_trigger'::regclass::oid AND oid = o.objid),
              (SELECT polname FROM pg_policy WHERE o.classid = 'pg_policy'::regclass::oid AND oid = o.objid)))
      ORDER BY 1), '[]') FROM outside o)
);
"#
    )
}

#[derive(Deserialize)]
struct Found {
    dropped: Vec<Dropped>,
    outside: Vec<Dependent>,
}

/// Plan `--clean` for `scope` on the target. `additions`: the snapshot's managed-schema
/// objects (what can be re-created).
pub fn plan(
    schema_sql: &str,
    scope: &Scope,
    additions: &[ManagedObject],
    tools: &PgTools,
    conn: &ConnSpec,
) -> Result<CleanPlan> {
    let (schemas, table) = cleaned(schema_sql, scope);
    if schemas.is_empty() && table.is_none() {
        return Ok(CleanPlan::default());
    }
    let out = session::query_qualified(tools, conn, None, &plan_sql(&schemas, table.as_ref()))?;
    let found: Found = serde_json::from_str(&out).map_err(|e| {
        Error::Invalid(format!(
            "--clean planning query returned unexpected output: {e}"
        ))
    })?;
    Ok(classify(schemas, found.dropped, found.outside, additions))
}

/// Split the outside dependents into re-created (a trigger or policy of the snapshot's on a
/// managed schema's table) and blocking. Pure.
fn classify(
    schemas: Vec<String>,
    dropped: Vec<Dropped>,
    outside: Vec<Dependent>,
    additions: &[ManagedObject],
) -> CleanPlan {
    let mut plan = CleanPlan {
        schemas,
        dropped,
        ..Default::default()
    };
    for d in outside {
        let again = additions.iter().any(|a| {
            Some(&a.kind) == d.kind.as_ref()
                && Some(&a.schema) == d.schema.as_ref()
                && a.table == d.table
                && Some(&a.name) == d.name.as_ref()
        });
        if again {
            plan.recreated.push(d)
        } else {
            plan.blocking.push(d)
        }
    }
    plan
}

impl CleanPlan {
    /// One line per dropped object, for the plan shown before asking.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.schemas.iter().map(|s| format!("everything in schema {s} (the schema itself, its owner, privileges and default privileges stay)")).collect();
        out.extend(
            self.dropped
                .iter()
                .map(|d| format!("{} {}", d.kind.to_lowercase(), d.name)),
        );
        out.extend(self.recreated.iter().map(|d| {
            format!(
                "{} (outside the restored scope; re-created from the snapshot after the data)",
                d.what
            )
        }));
        out
    }

    /// The statements, run first in the restore's transaction.
    pub fn statements(&self) -> Vec<String> {
        self.dropped
            .iter()
            .map(|d| format!("DROP {} IF EXISTS {} CASCADE;", d.kind, d.name))
            .collect()
    }

    /// The (kind, schema, table, name) of the additions the restore must re-create.
    pub fn recreate_keys(&self) -> BTreeSet<(String, String, String, String)> {
        self.recreated
            .iter()
            .filter_map(|d| {
                Some((
                    d.kind.clone()?,
                    d.schema.clone()?,
                    d.table.clone()?,
                    d.name.clone()?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(
        what: &str,
        kind: Option<&str>,
        table: Option<(&str, &str)>,
        name: Option<&str>,
    ) -> Dependent {
        Dependent {
            what: what.into(),
            kind: kind.map(str::to_string),
            schema: table.map(|t| t.0.to_string()),
            table: table.map(|t| t.1.to_string()),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn dependents_of_yours_are_recreated_the_rest_blocks() {
        let additions = vec![ManagedObject {
            kind: "trigger".into(),
            schema: "auth".into(),
            table: Some("users".into()),
            name: "on_auth_user_created".into(),
            def: "CREATE TRIGGER …".into(),
            enabled: Some("O".into()),
            owner: Some("postgres".into()),
            function: None,
        }];
        let outside = vec![
            dep(
                "trigger on_auth_user_created on table auth.users",
                Some("trigger"),
                Some(("auth", "users")),
                Some("on_auth_user_created"),
            ),
            dep("view reports.deal_totals", None, None, None),
            dep(
                "policy x on table storage.objects",
                Some("policy"),
                Some(("storage", "objects")),
                Some("x"),
            ),
        ];
        let p = classify(
            vec!["public".into()],
            vec![Dropped {
                kind: "TABLE".into(),
                name: "public.deals".into(),
            }],
            outside,
            &additions,
        );
        assert_eq!(p.recreated.len(), 1);
        assert_eq!(
            p.blocking
                .iter()
                .map(|d| d.what.as_str())
                .collect::<Vec<_>>(),
            vec![
                "view reports.deal_totals",
                "policy x on table storage.objects"
            ]
        );
        assert_eq!(
            p.statements(),
            vec!["DROP TABLE IF EXISTS public.deals CASCADE;"]
        );
        assert!(
            p.describe()[0]
                .contains("the schema itself, its owner, privileges and default privileges stay")
        );
        assert_eq!(p.recreate_keys().len(), 1);
    }

    #[test]
    fn managed_schemas_are_never_cleaned() {
        assert_eq!(cleaned("", &Scope::Schema("auth".into())), (vec![], None));
        assert_eq!(
            cleaned("", &Scope::Table("storage".into(), "objects".into())),
            (vec![], None)
        );
        assert_eq!(
            cleaned("", &Scope::Table("public".into(), "t".into())),
            (vec![], Some(("public".into(), "t".into())))
        );
    }
}
