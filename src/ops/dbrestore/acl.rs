//! Privileges exactly as in the snapshot.
//!
//! pg_dump states each object's ACL relative to the built-in default (`acldefault`): it replays
//! `REVOKE`/`GRANT` onto an object assumed to carry that default. A fresh Supabase project's
//! default privileges grant ALL on every new object in `public` to `anon` and `authenticated`
//! at creation, so replaying schema.sql there hands back every privilege an app had revoked
//! (a data-exposure hole). The snapshot's inventory records every object's whole ACL
//! ([`Acls`]); after schema.sql, in the same transaction, the restore sets each restored
//! object's ACL, and the default privileges of the schemas it restores, to exactly that, and
//! verification compares them for equality, naming every difference.
//!
//! The work is done by temporary plpgsql functions (`pg_temp.snap_*`, gone with the session),
//! so the same SQL serves `snap restore --db` and the files of `snap dump` fed to psql alone.

use std::collections::{BTreeMap, BTreeSet};

use super::{Scope, is_managed_schema, ql};
use crate::source::postgres::inventory::{AclEntry, Acls, DefaultAcl, ObjectAcl};
use crate::supabase::is_reserved_role;

/// The objects of `acls` a restore of `scope` creates (their ACLs are set): in user schemas for
/// the whole database; for a table, the table, its columns and its owned sequences (`owned`:
/// sequence names in the table's schema).
pub fn objects_in_scope<'a>(
    acls: &'a Acls,
    scope: &Scope,
    owned: &BTreeSet<String>,
) -> Vec<&'a ObjectAcl> {
    acls.objects
        .iter()
        .filter(|o| match scope {
            Scope::Whole => !is_managed_schema(&o.schema),
            Scope::Schema(s) => o.schema == *s,
            Scope::Table(s, t) => {
                o.schema == *s
                    && ((matches!(o.kind.as_str(), "table" | "column") && o.object == *t)
                        || (o.kind == "sequence" && owned.contains(&o.object)))
            }
        })
        .collect()
}

/// The default privileges a restore of `scope` sets: for every role whose defaults the
/// snapshot records in the restored schemas (the platform's reserved roles aside, but the
/// dumping role kept) and for the dumping role, each object type, in each restored schema —
/// an empty ACL where the snapshot has none, so the target's extra defaults go.
pub fn defaults_in_scope(acls: &Acls, scope: &Scope) -> Vec<DefaultAcl> {
    let schemas: BTreeSet<&str> = match scope {
        Scope::Whole => acls
            .objects
            .iter()
            .filter(|o| o.kind == "schema" && !is_managed_schema(&o.schema))
            .map(|o| o.schema.as_str())
            .collect(),
        Scope::Schema(s) => BTreeSet::from([s.as_str()]),
        Scope::Table(..) => return vec![],
    };
    let ours = |r: &str| r == acls.role || !is_reserved_role(r);
    let mut roles: BTreeSet<&str> = acls
        .defaults
        .iter()
        .filter(|d| d.schema.as_deref().is_some_and(|s| schemas.contains(s)) && ours(&d.role))
        .map(|d| d.role.as_str())
        .collect();
    if !acls.role.is_empty() {
        roles.insert(&acls.role);
    }
    let mut out = Vec::new();
    for role in &roles {
        for schema in &schemas {
            for objtype in ["r", "S", "f", "T"] {
                let have = acls.defaults.iter().find(|d| {
                    d.role == *role && d.schema.as_deref() == Some(*schema) && d.objtype == objtype
                });
                out.push(DefaultAcl {
                    role: role.to_string(),
                    schema: Some(schema.to_string()),
                    objtype: objtype.into(),
                    entries: have.map(|d| d.entries.clone()).unwrap_or_default(),
                });
            }
        }
    }
    if *scope == Scope::Whole {
        // Global defaults (no schema) are stated only where the snapshot had them.
        out.extend(
            acls.defaults
                .iter()
                .filter(|d| d.schema.is_none() && ours(&d.role))
                .cloned(),
        );
    }
    out
}

fn entries_json(e: &[AclEntry]) -> String {
    ql(&serde_json::to_string(e).expect("json"))
}

/// The helper functions (created in pg_temp, dropped at the end of [`set_sql`]). An empty ACL
/// (`{}`) is passed to aclexplode as NULL: aclexplode rejects an empty array.
const FUNCTIONS: &str = r#"CREATE FUNCTION pg_temp.snap_acl_text(acl aclitem[], own oid) RETURNS text LANGUAGE sql STABLE AS $snap$
  SELECT coalesce(string_agg(DISTINCT x, ',' ORDER BY x), '') FROM (SELECT (CASE WHEN a.grantee = own THEN '=owner'
    WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END) || ' ' || a.privilege_type || ' '
    || a.is_grantable::text AS x FROM pg_catalog.aclexplode(CASE WHEN pg_catalog.cardinality(acl) > 0 THEN acl END) a) z
$snap$;
CREATE FUNCTION pg_temp.snap_want_text(want jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $snap$
  SELECT coalesce(string_agg(DISTINCT x, ',' ORDER BY x), '') FROM (SELECT (e->>0) || ' ' || (e->>1) || ' ' || (e->>2) AS x
    FROM pg_catalog.jsonb_array_elements(want) e) z
$snap$;
CREATE FUNCTION pg_temp.snap_grantee(name text, own oid) RETURNS text LANGUAGE plpgsql STABLE AS $snap$
BEGIN
  IF name = '=owner' THEN RETURN pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(own)); END IF;
  IF name = 'PUBLIC' THEN RETURN 'PUBLIC'; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = name) THEN
    RAISE EXCEPTION 'snap: role % has privileges in the snapshot but does not exist in the target; create it (roles.sql) and restore again', name;
  END IF;
  RETURN pg_catalog.quote_ident(name);
END
$snap$;
CREATE FUNCTION pg_temp.snap_set_acl(kind text, obj text, col text, want jsonb) RETURNS void LANGUAGE plpgsql AS $snap$
DECLARE
  cur aclitem[]; own oid; tgt text; colspec text := ''; g record; e jsonb;
BEGIN
  IF kind IN ('table', 'sequence') THEN
    SELECT coalesce(c.relacl, pg_catalog.acldefault((CASE WHEN kind = 'sequence' THEN 's' ELSE 'r' END)::"char", c.relowner)), c.relowner
      INTO cur, own FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(obj);
  ELSIF kind = 'column' THEN
    SELECT coalesce(a.attacl, '{}'), c.relowner INTO cur, own FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
      WHERE a.attrelid = pg_catalog.to_regclass(obj) AND a.attname = col AND NOT a.attisdropped;
    colspec := ' (' || pg_catalog.quote_ident(col) || ')';
  ELSIF kind = 'function' THEN
    SELECT coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)), p.proowner INTO cur, own FROM pg_catalog.pg_proc p
      WHERE p.oid = pg_catalog.to_regprocedure(obj);
  ELSIF kind = 'schema' THEN
    SELECT coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner)), n.nspowner INTO cur, own FROM pg_catalog.pg_namespace n
      WHERE n.oid = pg_catalog.to_regnamespace(obj);
  ELSE
    SELECT coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner)), t.typowner INTO cur, own FROM pg_catalog.pg_type t
      WHERE t.oid = pg_catalog.to_regtype(obj);
  END IF;
  IF own IS NULL THEN
    RAISE EXCEPTION 'snap: % % is not in the target after schema.sql, so its privileges cannot be set', kind, obj || coalesce(' (' || col || ')', '');
  END IF;
  IF pg_temp.snap_acl_text(cur, own) = pg_temp.snap_want_text(want) THEN RETURN; END IF;
  tgt := CASE kind WHEN 'table' THEN 'TABLE ' WHEN 'column' THEN 'TABLE ' WHEN 'sequence' THEN 'SEQUENCE '
    WHEN 'function' THEN 'ROUTINE ' WHEN 'schema' THEN 'SCHEMA ' ELSE 'TYPE ' END || obj;
  -- Everyone else first, the owner last (revoking from the owner cascades to its grants).
  FOR g IN SELECT DISTINCT a.grantee, a.grantee = own AS is_owner FROM pg_catalog.aclexplode(CASE WHEN pg_catalog.cardinality(cur) > 0 THEN cur END) a ORDER BY 2 LOOP
    EXECUTE pg_catalog.format('REVOKE ALL%s ON %s FROM %s CASCADE', colspec, tgt,
      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
  END LOOP;
  FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(want) x ORDER BY x->>0 <> '=owner' LOOP
    EXECUTE pg_catalog.format('GRANT %s%s ON %s TO %s%s', e->>1, colspec, tgt, pg_temp.snap_grantee(e->>0, own),
      CASE WHEN (e->>2)::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$snap$;
CREATE FUNCTION pg_temp.snap_set_default_acl(role text, sch text, objtype text, want jsonb) RETURNS void LANGUAGE plpgsql AS $snap$
DECLARE
  cur aclitem[]; rid oid; tgt text; inschema text := ''; g record; e jsonb;
BEGIN
  SELECT oid INTO rid FROM pg_catalog.pg_roles WHERE rolname = role;
  IF rid IS NULL OR NOT pg_catalog.pg_has_role(rid, 'USAGE') THEN
    RAISE WARNING 'snap: default privileges of role % not set (the role is missing, or % may not act for it)', role, current_user;
    RETURN;
  END IF;
  IF sch IS NOT NULL THEN inschema := ' IN SCHEMA ' || pg_catalog.quote_ident(sch); END IF;
  SELECT d.defaclacl INTO cur FROM pg_catalog.pg_default_acl d WHERE d.defaclrole = rid AND d.defaclobjtype = objtype::"char"
    AND d.defaclnamespace = coalesce((SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = sch), 0);
  IF cur IS NULL THEN
    cur := CASE WHEN sch IS NULL THEN pg_catalog.acldefault(objtype::"char", rid) ELSE '{}' END;
  END IF;
  IF pg_temp.snap_acl_text(cur, rid) = pg_temp.snap_want_text(want) THEN RETURN; END IF;
  tgt := CASE objtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END;
  FOR g IN SELECT DISTINCT a.grantee FROM pg_catalog.aclexplode(CASE WHEN pg_catalog.cardinality(cur) > 0 THEN cur END) a LOOP
    EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE ALL ON %s FROM %s', role, inschema, tgt,
      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
  END LOOP;
  FOR e IN SELECT x FROM pg_catalog.jsonb_array_elements(want) x LOOP
    EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s TO %s%s', role, inschema, e->>1, tgt,
      pg_temp.snap_grantee(e->>0, rid), CASE WHEN (e->>2)::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$snap$;
"#;

const DROP_FUNCTIONS: &str = "DROP FUNCTION pg_temp.snap_set_acl(text, text, text, jsonb), pg_temp.snap_set_default_acl(text, text, text, jsonb), \
pg_temp.snap_grantee(text, oid), pg_temp.snap_acl_text(aclitem[], oid), pg_temp.snap_want_text(jsonb);\n";

/// The SQL that sets `objects`' ACLs and the `defaults` exactly (empty when there is nothing
/// to set). Tables before their columns, so a table-level REVOKE cannot undo a column grant.
pub fn set_sql(objects: &[&ObjectAcl], defaults: &[DefaultAcl]) -> String {
    if objects.is_empty() && defaults.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "-- snap: every restored object's privileges exactly as in the snapshot (see repo-format.md §7.3)\n",
    );
    out.push_str(FUNCTIONS);
    let rank = |k: &str| match k {
        "schema" => 0,
        "column" => 2,
        _ => 1,
    };
    let mut objs: Vec<&&ObjectAcl> = objects.iter().collect();
    objs.sort_by_key(|o| rank(&o.kind));
    for o in objs {
        let col = o.column.as_deref().map(ql).unwrap_or_else(|| "NULL".into());
        out.push_str(&format!(
            "SELECT pg_temp.snap_set_acl({}, {}, {col}, {});\n",
            ql(&o.kind),
            ql(&o.name),
            entries_json(&o.entries)
        ));
    }
    for d in defaults {
        let sch = d.schema.as_deref().map(ql).unwrap_or_else(|| "NULL".into());
        out.push_str(&format!(
            "SELECT pg_temp.snap_set_default_acl({}, {sch}, {}, {});\n",
            ql(&d.role),
            ql(&d.objtype),
            entries_json(&d.entries)
        ));
    }
    out.push_str(DROP_FUNCTIONS);
    out
}

fn label(o: &ObjectAcl) -> String {
    match &o.column {
        Some(c) => format!("{} {} ({c})", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    }
}

fn entry(e: &AclEntry) -> String {
    format!(
        "{} {}{}",
        if e.0 == "=owner" { "the owner" } else { &e.0 },
        e.1,
        if e.2 { " WITH GRANT OPTION" } else { "" }
    )
}

/// Every difference between the snapshot's ACLs (`want`) and the target's (`have`), named by
/// object, grantee and privilege. Pure.
pub fn differences(want: &[&ObjectAcl], have: &Acls) -> Vec<String> {
    let index: BTreeMap<(&str, &str, Option<&str>), &ObjectAcl> = have
        .objects
        .iter()
        .map(|o| ((o.kind.as_str(), o.name.as_str(), o.column.as_deref()), o))
        .collect();
    let mut out = Vec::new();
    for w in want {
        let Some(h) = index.get(&(w.kind.as_str(), w.name.as_str(), w.column.as_deref())) else {
            out.push(format!("{}: not in the target", label(w)));
            continue;
        };
        diff_entries(&label(w), &w.entries, &h.entries, &mut out);
    }
    out
}

/// Every difference between the snapshot's default privileges in scope and the target's.
pub fn default_differences(want: &[DefaultAcl], have: &Acls) -> Vec<String> {
    let mut out = Vec::new();
    for w in want {
        let h = have
            .defaults
            .iter()
            .find(|h| h.role == w.role && h.schema == w.schema && h.objtype == w.objtype)
            .map(|h| h.entries.clone())
            .unwrap_or_default();
        let what = format!(
            "default privileges of {} on {} in {}",
            w.role,
            objtype_name(&w.objtype),
            w.schema
                .as_deref()
                .map_or("every schema".into(), |s| format!("schema {s}"))
        );
        if w.schema.is_none()
            && h.is_empty()
            && !have
                .defaults
                .iter()
                .any(|x| x.role == w.role && x.schema.is_none() && x.objtype == w.objtype)
        {
            // No row: the built-in default, which the restore only states where the snapshot had a row.
            out.push(format!("{what}: the target has the built-in default"));
            continue;
        }
        diff_entries(&what, &w.entries, &h, &mut out);
    }
    out
}

fn objtype_name(t: &str) -> &'static str {
    match t {
        "r" => "tables",
        "S" => "sequences",
        "f" => "functions",
        "T" => "types",
        _ => "schemas",
    }
}

fn diff_entries(what: &str, want: &[AclEntry], have: &[AclEntry], out: &mut Vec<String>) {
    let w: BTreeSet<&AclEntry> = want.iter().collect();
    let h: BTreeSet<&AclEntry> = have.iter().collect();
    let extra: Vec<String> = h.difference(&w).map(|e| entry(e)).collect();
    let missing: Vec<String> = w.difference(&h).map(|e| entry(e)).collect();
    if !extra.is_empty() {
        out.push(format!(
            "{what}: {} in the target, not in the snapshot",
            extra.join(", ")
        ));
    }
    if !missing.is_empty() {
        out.push(format!(
            "{what}: {} in the snapshot, missing in the target",
            missing.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(g: &str, p: &str) -> AclEntry {
        AclEntry(g.into(), p.into(), false)
    }

    fn obj(kind: &str, schema: &str, name: &str, entries: Vec<AclEntry>) -> ObjectAcl {
        let object = name
            .rsplit('.')
            .next()
            .unwrap()
            .split('(')
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string();
        ObjectAcl {
            kind: kind.into(),
            schema: schema.into(),
            name: name.into(),
            object,
            column: None,
            entries,
        }
    }

    fn acls() -> Acls {
        Acls {
            role: "postgres".into(),
            objects: vec![
                obj(
                    "schema",
                    "public",
                    "public",
                    vec![e("=owner", "USAGE"), e("PUBLIC", "USAGE")],
                ),
                obj(
                    "table",
                    "public",
                    "public.secrets",
                    vec![e("=owner", "SELECT"), e("service_role", "SELECT")],
                ),
                obj(
                    "sequence",
                    "public",
                    "public.secrets_id_seq",
                    vec![e("=owner", "USAGE")],
                ),
                obj(
                    "sequence",
                    "public",
                    "public.other_seq",
                    vec![e("=owner", "USAGE")],
                ),
                ObjectAcl {
                    column: Some("token".into()),
                    ..obj(
                        "column",
                        "public",
                        "public.secrets",
                        vec![e("anon", "SELECT")],
                    )
                },
                obj(
                    "function",
                    "public",
                    "public.get_user_id_by_email(text)",
                    vec![e("=owner", "EXECUTE")],
                ),
                obj("table", "auth", "auth.users", vec![e("=owner", "SELECT")]),
                obj("schema", "auth", "auth", vec![e("=owner", "USAGE")]),
                obj("table", "Mixed", "\"Mixed\".\"T\"", vec![]),
            ],
            defaults: vec![
                DefaultAcl {
                    role: "postgres".into(),
                    schema: Some("public".into()),
                    objtype: "r".into(),
                    entries: vec![e("service_role", "SELECT")],
                },
                DefaultAcl {
                    role: "supabase_admin".into(),
                    schema: Some("public".into()),
                    objtype: "r".into(),
                    entries: vec![e("anon", "SELECT")],
                },
                DefaultAcl {
                    role: "app_owner".into(),
                    schema: Some("public".into()),
                    objtype: "f".into(),
                    entries: vec![],
                },
            ],
        }
    }

    #[test]
    fn scope_picks_the_restored_objects() {
        let a = acls();
        let names = |v: Vec<&ObjectAcl>| v.iter().map(|o| label(o)).collect::<Vec<_>>();
        let whole = names(objects_in_scope(&a, &Scope::Whole, &BTreeSet::new()));
        assert!(whole.contains(&"function public.get_user_id_by_email(text)".to_string()));
        assert!(
            !whole.iter().any(|n| n.contains("auth")),
            "managed schemas are the platform's: {whole:?}"
        );
        let owned = BTreeSet::from(["secrets_id_seq".to_string()]);
        let t = names(objects_in_scope(
            &a,
            &Scope::Table("public".into(), "secrets".into()),
            &owned,
        ));
        assert_eq!(
            t,
            vec![
                "table public.secrets",
                "sequence public.secrets_id_seq",
                "column public.secrets (token)"
            ]
        );
        let t = names(objects_in_scope(
            &a,
            &Scope::Table("Mixed".into(), "T".into()),
            &BTreeSet::new(),
        ));
        assert_eq!(
            t,
            vec!["table \"Mixed\".\"T\""],
            "matched by unquoted names"
        );
    }

    #[test]
    fn defaults_cover_every_type_of_the_user_roles_and_leave_the_platform_alone() {
        let d = defaults_in_scope(&acls(), &Scope::Schema("public".into()));
        assert!(!d.iter().any(|x| x.role == "supabase_admin"));
        assert_eq!(d.iter().filter(|x| x.role == "postgres").count(), 4);
        assert_eq!(d.iter().filter(|x| x.role == "app_owner").count(), 4);
        let seq = d
            .iter()
            .find(|x| x.role == "postgres" && x.objtype == "S")
            .unwrap();
        assert!(
            seq.entries.is_empty(),
            "no snapshot row: the target's must go"
        );
        assert!(defaults_in_scope(&acls(), &Scope::Table("public".into(), "x".into())).is_empty());
    }

    #[test]
    fn differences_name_object_grantee_and_privilege() {
        let a = acls();
        let want: Vec<&ObjectAcl> =
            objects_in_scope(&a, &Scope::Schema("public".into()), &BTreeSet::new());
        let mut have = a.clone();
        have.objects[5].entries.push(e("anon", "EXECUTE"));
        have.objects[1].entries.retain(|x| x.0 != "service_role");
        have.objects.retain(|o| o.name != "public.other_seq");
        let d = differences(&want, &have);
        assert_eq!(
            d,
            vec![
                "table public.secrets: service_role SELECT in the snapshot, missing in the target",
                "sequence public.other_seq: not in the target",
                "function public.get_user_id_by_email(text): anon EXECUTE in the target, not in the snapshot",
            ]
        );
        assert!(differences(&want, &a).is_empty());
        let defaults = defaults_in_scope(&a, &Scope::Schema("public".into()));
        assert!(default_differences(&defaults, &a).is_empty());
        let mut extra = a.clone();
        extra.defaults.push(DefaultAcl {
            role: "postgres".into(),
            schema: Some("public".into()),
            objtype: "S".into(),
            entries: vec![e("anon", "USAGE")],
        });
        assert_eq!(
            default_differences(&defaults, &extra),
            vec![
                "default privileges of postgres on sequences in schema public: anon USAGE in the target, not in the snapshot"
            ]
        );
    }

    #[test]
    fn set_sql_states_every_object_tables_before_columns() {
        let a = acls();
        let objs = objects_in_scope(&a, &Scope::Schema("public".into()), &BTreeSet::new());
        let sql = set_sql(
            &objs,
            &defaults_in_scope(&a, &Scope::Schema("public".into())),
        );
        let col = sql.find("'column', 'public.secrets', 'token'").unwrap();
        let table = sql.find("'table', 'public.secrets', NULL").unwrap();
        let schema = sql.find("'schema', 'public', NULL").unwrap();
        assert!(schema < table && table < col, "{sql}");
        assert!(sql.contains(r#"'[["=owner","EXECUTE",false]]'"#));
        assert!(sql.contains("pg_temp.snap_set_default_acl('postgres', 'public', 'S', '[]');"));
        assert!(sql.trim_end().ends_with("pg_temp.snap_want_text(jsonb);"));
        assert!(set_sql(&[], &[]).is_empty());
    }
}
