//! Your additions to `auth` and `storage`, restored.
//!
//! schema.sql leaves the Supabase-managed schemas out (the platform creates them), so the
//! triggers users put on `auth.users` ("create a profile on sign-up"), their policies and
//! indexes on `storage.objects` and their functions there would be lost. The inventory records
//! every function, trigger, policy and index of those schemas with the SQL that creates it
//! ([`ManagedObject`]); the restore compares them with the target and applies, after the data
//! and in the same transaction, what is the user's and the target lacks:
//!
//! * functions and triggers: the user's when the (trigger's) function is not owned by a
//!   platform role (`supabase_*`); the Storage service's own triggers are left alone;
//! * policies and indexes: the user's when the target (a fresh project has the platform's) has
//!   none of that name on that table.
//!
//! A same-named trigger, policy or index with another definition in the target is left as the
//! target has it and reported; a function of the user's is replaced (CREATE OR REPLACE).

use std::collections::BTreeSet;

use serde::Serialize;

use super::acl;
use super::data_plan::Left;
use super::requirements::Requirement;
use crate::error::Result;
use crate::ops::dbsnap::DbSnapshot;
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::inventory::{Acls, ManagedObject};
use crate::source::postgres::pgbin::PgTools;
use crate::supabase::EXTENDED_MANAGED_SCHEMAS;
use crate::supabase::is_platform_role;

/// What a restore applies to the managed schemas.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdditionsPlan {
    /// In the order applied: functions, indexes, triggers, policies.
    pub apply: Vec<ManagedObject>,
    /// Additions of the user's the target already has otherwise.
    pub left_out: Vec<Left>,
}

/// Whether the snapshot's object is the user's rather than the platform's.
fn users(o: &ManagedObject) -> bool {
    match o.kind.as_str() {
        "function" | "trigger" => o.owner.as_deref().is_some_and(|r| !is_platform_role(r)),
        _ => true,
    }
}

/// `kind schema.table name` of an object, for messages.
pub fn describe(o: &ManagedObject) -> String {
    match &o.table {
        Some(t) => format!("{} {} on {}.{t}", o.kind, o.name, o.schema),
        None => format!("{} {}", o.kind, o.name),
    }
}

impl AdditionsPlan {
    /// Compare the snapshot's managed-schema objects with the target's. Pure.
    pub fn new(snapshot: &[ManagedObject], target: &[ManagedObject]) -> AdditionsPlan {
        Self::with_dropped(snapshot, target, &BTreeSet::new())
    }

    /// As [`AdditionsPlan::new`], where `dropped` (kind, schema, table, name) are objects
    /// `--clean` drops first: they are re-created whatever the target has now.
    pub fn with_dropped(
        snapshot: &[ManagedObject],
        target: &[ManagedObject],
        dropped: &BTreeSet<(String, String, String, String)>,
    ) -> AdditionsPlan {
        let mut plan = AdditionsPlan::default();
        for o in snapshot.iter().filter(|o| users(o)) {
            let gone = dropped.contains(&(
                o.kind.clone(),
                o.schema.clone(),
                o.table.clone().unwrap_or_default(),
                o.name.clone(),
            ));
            let same = target.iter().find(|t| {
                !gone
                    && t.kind == o.kind
                    && t.schema == o.schema
                    && t.table == o.table
                    && t.name == o.name
            });
            match same {
                Some(t) if t.def == o.def && t.enabled == o.enabled => {}
                Some(_) if o.kind != "function" => plan.left_out.push(Left {
                    what: describe(o),
                    reason: "the target has one of that name with another definition; left as the target has it".into(),
                }),
                _ => plan.apply.push(o.clone()),
            }
        }
        let rank = |k: &str| match k {
            "function" => 0,
            "index" => 1,
            "trigger" => 2,
            _ => 3,
        };
        plan.apply.sort_by_key(|o| rank(&o.kind));
        plan
    }

    /// The SQL that applies the plan (empty when there is nothing to apply). The functions'
    /// owners and privileges follow the snapshot (`acls`, when it recorded them). `idempotent`
    /// (for psql alone, where the target is unknown): a trigger or policy of the same name is
    /// replaced (`CREATE OR REPLACE TRIGGER`, PostgreSQL 14+; `DROP POLICY IF EXISTS` first).
    pub fn sql(&self, acls: Option<&Acls>, idempotent: bool) -> String {
        if self.apply.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "-- snap: your additions to the Supabase-managed schemas (auth, storage)\n",
        );
        for o in &self.apply {
            let def = o.def.trim_end();
            match (idempotent, o.kind.as_str(), &o.table) {
                (true, "trigger", _) if def.starts_with("CREATE TRIGGER ") => {
                    out.push_str("CREATE OR REPLACE TRIGGER ");
                    out.push_str(&def["CREATE TRIGGER ".len()..]);
                }
                (true, "policy", Some(t)) => {
                    out.push_str(&format!(
                        "DROP POLICY IF EXISTS {} ON {}.{};\n",
                        super::qi(&o.name),
                        super::qi(&o.schema),
                        super::qi(t)
                    ));
                    out.push_str(def);
                }
                _ => out.push_str(def),
            }
            out.push_str(";\n");
            if let (Some(t), Some(e)) = (&o.table, o.enabled.as_deref()) {
                let how = match e {
                    "D" => Some("DISABLE TRIGGER"),
                    "R" => Some("ENABLE REPLICA TRIGGER"),
                    "A" => Some("ENABLE ALWAYS TRIGGER"),
                    _ => None,
                };
                if let Some(how) = how {
                    out.push_str(&format!(
                        "ALTER TABLE {}.{} {how} {};\n",
                        super::qi(&o.schema),
                        super::qi(t),
                        super::qi(&o.name)
                    ));
                }
            }
            if o.kind == "function"
                && let (Some(owner), Some(a)) = (&o.owner, acls)
                && *owner != a.role
            {
                out.push_str(&format!(
                    "ALTER FUNCTION {} OWNER TO {};\n",
                    o.name,
                    super::qi(owner)
                ));
            }
        }
        if let Some(a) = acls {
            let functions: Vec<_> = a
                .objects
                .iter()
                .filter(|x| {
                    x.kind == "function"
                        && self
                            .apply
                            .iter()
                            .any(|o| o.kind == "function" && o.name == x.name)
                })
                .collect();
            out.push_str(&acl::set_sql(&functions, &[]));
        }
        out
    }
}

/// The plan for snapshot `db` and the target (read now): for a whole-database restore every
/// addition of the user's the target lacks (`all`), else only those `--clean` drops
/// (`dropped`). A snapshot written before snap recorded the managed schemas' objects gets an
/// empty plan.
pub fn plan(
    db: &DbSnapshot,
    tools: &PgTools,
    conn: &ConnSpec,
    all: bool,
    dropped: &BTreeSet<(String, String, String, String)>,
) -> Result<AdditionsPlan> {
    let Some(catalog) = db.catalog()? else {
        return Ok(AdditionsPlan::default());
    };
    if !all && dropped.is_empty() {
        return Ok(AdditionsPlan::default());
    }
    let mut snapshot = catalog.managed_objects.clone();
    if !all {
        snapshot.retain(|o| {
            dropped.contains(&(
                o.kind.clone(),
                o.schema.clone(),
                o.table.clone().unwrap_or_default(),
                o.name.clone(),
            ))
        });
    }
    let target = ManagedObject::read(tools, conn, None, EXTENDED_MANAGED_SCHEMAS)?;
    Ok(AdditionsPlan::with_dropped(&snapshot, &target, dropped))
}

/// The requirement-report lines of a plan: what is applied after the data, and what not.
pub fn notes(plan: &AdditionsPlan) -> Vec<Requirement> {
    let mut out = Vec::new();
    if !plan.apply.is_empty() {
        out.push(Requirement {
            blocking: false,
            what: format!(
                "your additions to auth and storage are applied after the data ({}): {}",
                plan.apply.len(),
                plan.apply
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix: Some("--no-auth-storage-additions leaves them out".into()),
        });
    }
    for l in &plan.left_out {
        out.push(Requirement {
            blocking: false,
            what: format!("{}: {}", l.what, l.reason),
            fix: None,
        });
    }
    out
}

/// Every applied object the target lacks, or has with another definition, after the restore.
pub fn differences(applied: &[ManagedObject], target: &[ManagedObject]) -> Vec<String> {
    applied
        .iter()
        .filter_map(|o| {
            match target.iter().find(|t| {
                t.kind == o.kind && t.schema == o.schema && t.table == o.table && t.name == o.name
            }) {
                None => Some(format!("{}: not in the target", describe(o))),
                Some(t) if t.def != o.def || t.enabled != o.enabled => {
                    Some(format!("{}: defined otherwise in the target", describe(o)))
                }
                Some(_) => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(
        kind: &str,
        table: Option<&str>,
        name: &str,
        def: &str,
        owner: Option<&str>,
    ) -> ManagedObject {
        ManagedObject {
            kind: kind.into(),
            schema: if table == Some("users") {
                "auth".into()
            } else {
                "storage".into()
            },
            table: table.map(str::to_string),
            name: name.into(),
            def: def.into(),
            enabled: if kind == "trigger" {
                Some("O".into())
            } else {
                None
            },
            owner: owner.map(str::to_string),
            function: None,
        }
    }

    fn snapshot() -> Vec<ManagedObject> {
        vec![
            o(
                "trigger",
                Some("users"),
                "on_auth_user_created",
                "CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.handle_new_user()",
                Some("postgres"),
            ),
            o(
                "trigger",
                Some("objects"),
                "update_objects_updated_at",
                "CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects …",
                Some("supabase_storage_admin"),
            ),
            o(
                "policy",
                Some("objects"),
                "Avatars are public",
                "CREATE POLICY \"Avatars are public\" ON storage.objects AS PERMISSIVE FOR SELECT TO PUBLIC USING ((bucket_id = 'avatars'::text))",
                None,
            ),
            o(
                "policy",
                Some("objects"),
                "Mine",
                "CREATE POLICY \"Mine\" ON storage.objects AS PERMISSIVE FOR ALL TO PUBLIC USING (true)",
                None,
            ),
            o(
                "index",
                Some("objects"),
                "objects_owner_idx",
                "CREATE INDEX objects_owner_idx ON storage.objects USING btree (owner)",
                None,
            ),
            o(
                "index",
                Some("objects"),
                "bucketid_objname",
                "CREATE UNIQUE INDEX bucketid_objname ON storage.objects USING btree (bucket_id, name)",
                None,
            ),
            o(
                "function",
                None,
                "storage.foldername(text)",
                "CREATE OR REPLACE FUNCTION storage.foldername(name text) …",
                Some("supabase_storage_admin"),
            ),
            o(
                "function",
                None,
                "auth.my_hook(jsonb)",
                "CREATE OR REPLACE FUNCTION auth.my_hook(event jsonb) …",
                Some("postgres"),
            ),
        ]
    }

    #[test]
    fn the_users_additions_are_told_from_the_platforms() {
        let s = snapshot();
        // A fresh project: the platform's trigger, index and function, and a "Mine" of its own.
        let mut mine = s[3].clone();
        mine.def = "CREATE POLICY \"Mine\" ON storage.objects AS PERMISSIVE FOR SELECT TO PUBLIC USING (false)".into();
        let target = vec![s[1].clone(), s[5].clone(), s[6].clone(), mine];
        let p = AdditionsPlan::new(&s, &target);
        let names: Vec<&str> = p.apply.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "auth.my_hook(jsonb)",
                "objects_owner_idx",
                "on_auth_user_created",
                "Avatars are public"
            ]
        );
        assert_eq!(p.left_out.len(), 1);
        assert!(
            p.left_out[0].what.contains("Mine")
                && p.left_out[0].reason.contains("another definition")
        );
        // Into the same project again: nothing to do.
        assert!(AdditionsPlan::new(&s, &s).apply.is_empty());
        let sql = p.sql(None, false);
        assert!(sql.contains("EXECUTE FUNCTION public.handle_new_user();\n"));
        let again = p.sql(None, true);
        assert!(
            again.contains("CREATE OR REPLACE TRIGGER on_auth_user_created AFTER INSERT"),
            "{again}"
        );
        assert!(again.contains("DROP POLICY IF EXISTS \"Avatars are public\" ON \"storage\".\"objects\";\nCREATE POLICY"), "{again}");
        assert!(!sql.contains("update_objects_updated_at"));
        // After the restore, verification finds them all, or names what is missing.
        let mut after = target.clone();
        after.extend(p.apply.iter().cloned());
        assert!(differences(&p.apply, &after).is_empty());
        assert_eq!(differences(&p.apply, &target).len(), 4);
    }

    #[test]
    fn a_disabled_trigger_stays_disabled() {
        let mut t = snapshot()[0].clone();
        t.enabled = Some("D".into());
        let p = AdditionsPlan::new(&[t], &[]);
        assert!(
            p.sql(None, false).contains(
                "ALTER TABLE \"auth\".\"users\" DISABLE TRIGGER \"on_auth_user_created\";"
            )
        );
    }
}
