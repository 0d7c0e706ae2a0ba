//! Foreign keys after a selective restore.
//!
//! The data loads with `session_replication_role = replica`, so foreign keys are not checked
//! row by row: a `--schema public` restore into a project without its users loads profiles
//! whose `user_id` is in no `auth.users` row, under a constraint still marked valid. After the
//! data of a `--schema` or `--table` restore, in the same transaction, every validated foreign
//! key from or to a restored table is checked; one with violating rows is re-added `NOT VALID`
//! (so PostgreSQL never trusts it over them) and a warning says so. Verification counts and
//! names the orphan rows of every such constraint.

use serde::Deserialize;

use super::Check;
use crate::error::{Error, Result};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::PgTools;
use crate::source::postgres::session;

/// `'"s"."t"'::regclass` array of the restored tables (to_regclass: missing ones drop out).
fn tables_array(tables: &[(String, String)]) -> String {
    let items: Vec<String> = tables
        .iter()
        .map(|(s, t)| {
            format!(
                "pg_catalog.to_regclass({})",
                super::ql(&format!("{}.{}", super::qi(s), super::qi(t)))
            )
        })
        .collect();
    format!("ARRAY[{}]::regclass[]", items.join(", "))
}

/// The orphan rows of one foreign key (MATCH SIMPLE: rows with a NULL key column are not
/// checked), counted by a temporary function.
const FUNCTION: &str = r#"CREATE FUNCTION pg_temp.snap_fk_orphans(c pg_catalog.oid) RETURNS bigint LANGUAGE plpgsql STABLE AS $snap$
DECLARE
  src text; dst text; eq text; nn text; n bigint;
BEGIN
  SELECT k.conrelid::regclass::text, k.confrelid::regclass::text,
         string_agg(pg_catalog.format('x.%I = y.%I', a.attname, b.attname), ' AND '),
         string_agg(pg_catalog.format('x.%I IS NOT NULL', a.attname), ' AND ')
    INTO src, dst, eq, nn
    FROM pg_catalog.pg_constraint k CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(fk, pk)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.fk
    JOIN pg_catalog.pg_attribute b ON b.attrelid = k.confrelid AND b.attnum = u.pk
   WHERE k.oid = c GROUP BY k.conrelid, k.confrelid;
  EXECUTE pg_catalog.format('SELECT count(*) FROM %s x WHERE %s AND NOT EXISTS (SELECT 1 FROM %s y WHERE %s)', src, nn, dst, eq) INTO n;
  RETURN n;
END
$snap$;
"#;

/// The SQL run after the data of a selective restore: violated foreign keys become NOT VALID.
pub fn enforce_sql(tables: &[(String, String)]) -> String {
    if tables.is_empty() {
        return String::new();
    }
    format!(
        r#"-- snap: foreign keys from and to the restored tables, checked (the data loaded without them)
{FUNCTION}DO $snap$
DECLARE
  r record; n bigint;
BEGIN
  FOR r IN SELECT c.oid, c.conname, c.conrelid::regclass AS tbl, pg_catalog.pg_get_constraintdef(c.oid) AS def
             FROM pg_catalog.pg_constraint c
            WHERE c.contype = 'f' AND c.convalidated AND (c.conrelid = ANY({arr}) OR c.confrelid = ANY({arr})) LOOP
    n := pg_temp.snap_fk_orphans(r.oid);
    IF n > 0 THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
      EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', r.tbl, r.conname, r.def);
      RAISE WARNING 'snap: % row(s) of % violate foreign key %; it is NOT VALID now', n, r.tbl, r.conname;
    END IF;
  END LOOP;
END
$snap$;
DROP FUNCTION pg_temp.snap_fk_orphans(pg_catalog.oid);
"#,
        arr = tables_array(tables)
    )
}

#[derive(Deserialize)]
struct Orphans {
    table: String,
    constraint: String,
    references: String,
    rows: u64,
    valid: bool,
}

/// One check: no foreign key from or to `tables` has rows that violate it.
pub fn check(
    tables: &[(String, String)],
    tools: &PgTools,
    conn: &ConnSpec,
) -> Result<Option<Check>> {
    if tables.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "{FUNCTION}SELECT coalesce(json_agg(json_build_object('table', c.conrelid::regclass::text, 'constraint', c.conname, \
         'references', c.confrelid::regclass::text, 'rows', pg_temp.snap_fk_orphans(c.oid), 'valid', c.convalidated) ORDER BY 1), '[]') \
         FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND (c.conrelid = ANY({arr}) OR c.confrelid = ANY({arr}));",
        arr = tables_array(tables)
    );
    let out = session::query_qualified(tools, conn, None, &sql)?;
    let found: Vec<Orphans> = serde_json::from_str(&out).map_err(|e| {
        Error::Invalid(format!("foreign key check returned unexpected output: {e}"))
    })?;
    let bad: Vec<String> = found
        .iter()
        .filter(|o| o.rows > 0)
        .map(|o| {
            format!(
                "{} rows of {} are not in {} ({}{})",
                o.rows,
                o.table,
                o.references,
                o.constraint,
                if o.valid { "" } else { ", NOT VALID" }
            )
        })
        .collect();
    Ok(Some(Check {
        what: format!(
            "foreign keys from and to the restored tables ({})",
            found.len()
        ),
        ok: bad.is_empty(),
        detail: if bad.is_empty() {
            "no orphan rows".into()
        } else {
            format!(
                "{}; restore the referenced tables too (or the whole database), or fix the rows and VALIDATE CONSTRAINT",
                bad.join("; ")
            )
        },
    }))
}
