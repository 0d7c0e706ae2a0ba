//! What a database holds, recorded with each snapshot as `inventory.json`: versions, sizes,
//! schemas and tables, extensions, realtime publication, webhooks, grants to the API roles,
//! view reloptions. Read inside the dump's snapshot, so it describes exactly what was dumped.

/// One query producing one JSON document.
pub const INVENTORY_SQL: &str = r#"
SELECT json_build_object(
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'database_size_bytes', pg_database_size(current_database()),
  'schemas', (SELECT coalesce(json_agg(json_build_object(
        'name', n.nspname,
        'tables', (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')),
        'bytes', (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
                  WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm')))
        ORDER BY n.nspname), '[]')
      FROM pg_namespace n WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'),
  'tables', (SELECT coalesce(json_agg(json_build_object(
        'schema', n.nspname, 'name', c.relname, 'row_estimate', greatest(c.reltuples, 0)::bigint,
        'bytes', pg_total_relation_size(c.oid)) ORDER BY n.nspname, c.relname), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'),
  'extensions', (SELECT coalesce(json_agg(json_build_object('name', e.extname, 'version', e.extversion, 'schema', n.nspname)
        ORDER BY e.extname), '[]')
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace),
  'realtime', (SELECT json_build_object(
        'publication', (SELECT json_build_object('insert', p.pubinsert, 'update', p.pubupdate, 'delete', p.pubdelete,
                          'truncate', p.pubtruncate, 'all_tables', p.puballtables)
                        FROM pg_publication p WHERE p.pubname = 'supabase_realtime'),
        'tables', (SELECT coalesce(json_agg(json_build_object('schema', schemaname, 'table', tablename)
                     ORDER BY schemaname, tablename), '[]')
                   FROM pg_publication_tables WHERE pubname = 'supabase_realtime'))),
  'webhooks', (SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'table', c.relname, 'trigger', t.tgname)
        ORDER BY n.nspname, c.relname, t.tgname), '[]')
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE NOT t.tgisinternal AND pn.nspname = 'supabase_functions' AND p.proname = 'http_request'),
  'grants', (SELECT coalesce(json_agg(json_build_object('grantee', grantee, 'schema', table_schema, 'table', table_name,
        'privilege', privilege_type) ORDER BY grantee, table_schema, table_name, privilege_type), '[]')
      FROM information_schema.role_table_grants WHERE grantee IN ('anon', 'authenticated', 'service_role')),
  'view_reloptions', (SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'view', c.relname, 'options', c.reloptions)
        ORDER BY n.nspname, c.relname), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND c.reloptions IS NOT NULL),
  'roles', (SELECT coalesce(json_agg(rolname ORDER BY rolname), '[]') FROM pg_roles WHERE rolname !~ '^pg_'),
  'functions', (SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', p.proname,
        'args', pg_get_function_identity_arguments(p.oid)) ORDER BY n.nspname, p.proname, 3), '[]')
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
      WHERE d.objid IS NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'),
  'policies', (SELECT coalesce(json_agg(json_build_object('schema', schemaname, 'table', tablename, 'policy', policyname)
        ORDER BY schemaname, tablename, policyname), '[]') FROM pg_policies)
);
"#;

/// `inventory.json`: what [`INVENTORY_SQL`] reads (fields in its order), then what the dump adds
/// (versions, the parts and tables it wrote, durations). One type for the writer (`snap backup
/// db`) and every reader (restore, verify, the drill, `snap dump`). Every field defaults, so an
/// inventory written by an older snap (without some of them) still reads.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Inventory {
    pub server_version: Option<String>,
    /// 0 when unknown (then no server can be chosen for a drill).
    pub server_version_num: u32,
    pub database: Option<String>,
    pub database_size_bytes: i64,
    pub schemas: Vec<SchemaInfo>,
    pub tables: Vec<TableInfo>,
    pub extensions: Vec<ExtensionInfo>,
    pub realtime: Realtime,
    pub webhooks: Vec<TableTrigger>,
    pub grants: Vec<TableGrant>,
    pub view_reloptions: Vec<ViewOptions>,
    pub roles: Vec<String>,
    pub functions: Vec<FunctionInfo>,
    pub policies: Vec<PolicyInfo>,
    /// Added by the dump: the pg_dump that wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_dump_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supabase: Option<bool>,
    pub dumps: Vec<super::dump::PartSummary>,
    pub dumped_tables: Vec<super::dump::TableSummary>,
    pub skipped: Vec<String>,
    pub duration_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SchemaInfo {
    pub name: String,
    pub tables: i64,
    pub bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub row_estimate: i64,
    pub bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExtensionInfo {
    pub name: String,
    pub version: String,
    pub schema: Option<String>,
}

/// The `supabase_realtime` publication (absent on a plain PostgreSQL) and its tables.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Realtime {
    pub publication: Option<Publication>,
    pub tables: Vec<PublishedTable>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Publication {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub truncate: bool,
    pub all_tables: bool,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PublishedTable {
    pub schema: String,
    pub table: String,
}

/// A database webhook: a trigger calling `supabase_functions.http_request`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TableTrigger {
    pub schema: String,
    pub table: String,
    pub trigger: String,
}

/// A table privilege of one of the API roles (anon, authenticated, service_role).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TableGrant {
    pub grantee: String,
    pub schema: String,
    pub table: String,
    pub privilege: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ViewOptions {
    pub schema: String,
    pub view: String,
    pub options: Vec<String>,
}

/// A function that is not an extension's, by its identity arguments.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FunctionInfo {
    pub schema: String,
    pub name: String,
    pub args: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PolicyInfo {
    pub schema: String,
    pub table: String,
    pub policy: String,
}

impl Inventory {
    /// Whether the database had this schema.
    pub fn has_schema(&self, name: &str) -> bool {
        self.schemas.iter().any(|s| s.name == name)
    }

    /// The inventory limited to the tables `keep` accepts (webhooks and realtime tables).
    pub fn scoped(&self, keep: impl Fn(&str, &str) -> bool) -> Inventory {
        let mut v = self.clone();
        v.webhooks.retain(|w| keep(&w.schema, &w.table));
        v.realtime.tables.retain(|t| keep(&t.schema, &t.table));
        v
    }
}

/// Every object's whole ACL, recorded with each snapshot in `catalog.json` ([`Catalog`]) (run with
/// `search_path = ''`, so names and function signatures are schema-qualified and the same
/// whatever the session's search_path). A NULL ACL (the built-in default) is spelled out with
/// `acldefault`; the owner's own entries name the owner `=owner`, so they follow ownership.
/// Extension members and the system schemas are left out. The same query reads a restore's
/// target for verification, so writer and checker agree on every spelling.
pub const ACLS_SQL: &str = r#"
WITH objs AS (
  SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind, n.nspname AS schema,
         format('%I.%I', n.nspname, c.relname) AS name, c.relname::text AS obj, NULL::text AS col, c.relowner AS owner,
         coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)) AS acl,
         c.oid AS oid, 'pg_class'::regclass AS cls
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'column', n.nspname, format('%I.%I', n.nspname, c.relname), c.relname::text, a.attname::text, c.relowner, a.attacl, c.oid, 'pg_class'::regclass
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'function', n.nspname, format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)), p.proname::text, NULL, p.proowner,
         coalesce(p.proacl, acldefault('f', p.proowner)), p.oid, 'pg_proc'::regclass
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  UNION ALL
  SELECT 'schema', n.nspname, format('%I', n.nspname), n.nspname::text, NULL, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner)),
         n.oid, 'pg_namespace'::regclass
    FROM pg_namespace n
  UNION ALL
  SELECT 'type', n.nspname, format_type(t.oid, NULL), t.typname::text, NULL, t.typowner, coalesce(t.typacl, acldefault('T', t.typowner)),
         t.oid, 'pg_type'::regclass
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('e', 'd', 'r', 'm')
      OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
)
SELECT json_build_object(
  'role', current_user,
  'objects', (SELECT coalesce(json_agg(json_build_object('kind', o.kind, 'schema', o.schema, 'name', o.name, 'object', o.obj, 'column', o.col,
        'entries', (SELECT coalesce(json_agg(json_build_array(
              CASE WHEN a.grantee = o.owner THEN '=owner' WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
              a.privilege_type, a.is_grantable) ORDER BY a.grantee, a.privilege_type), '[]')
            FROM aclexplode(CASE WHEN cardinality(o.acl) > 0 THEN o.acl END) a))
        ORDER BY o.kind, o.name, o.col), '[]')
      FROM objs o
     WHERE o.schema !~ '^pg_' AND o.schema <> 'information_schema'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.cls AND d.objid = o.oid AND d.deptype = 'e')),
  'defaults', (SELECT coalesce(json_agg(json_build_object('role', pg_get_userbyid(d.defaclrole), 'schema', n.nspname,
        'objtype', d.defaclobjtype::text,
        'entries', (SELECT coalesce(json_agg(json_build_array(
              CASE WHEN a.grantee = d.defaclrole THEN '=owner' WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
              a.privilege_type, a.is_grantable) ORDER BY a.grantee, a.privilege_type), '[]')
            FROM aclexplode(CASE WHEN cardinality(d.defaclacl) > 0 THEN d.defaclacl END) a))
        ORDER BY 1), '[]')
      FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace)
);
"#;

/// One entry of an ACL: grantee (`=owner` for the object's owner, `PUBLIC`, or a role name),
/// privilege (`SELECT`, `EXECUTE`, …), with grant option.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AclEntry(pub String, pub String, pub bool);

/// The whole ACL of one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectAcl {
    /// `table` (also views, materialized views, foreign tables), `sequence`, `column`,
    /// `function` (also procedures and aggregates), `schema` or `type`.
    pub kind: String,
    /// The schema the object is in (for a schema: itself).
    pub schema: String,
    /// The object as SQL names it, schema-qualified (`"public"."t"`, `"public"."f"(text)`);
    /// for a column, its table.
    pub name: String,
    /// The object's own name, unquoted (a column's table).
    pub object: String,
    pub column: Option<String>,
    pub entries: Vec<AclEntry>,
}

/// Default privileges (`ALTER DEFAULT PRIVILEGES`) of one role, in one schema or everywhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultAcl {
    pub role: String,
    /// None: the role's global defaults.
    pub schema: Option<String>,
    /// `r` tables, `S` sequences, `f` functions, `T` types, `n` schemas.
    pub objtype: String,
    pub entries: Vec<AclEntry>,
}

/// What [`ACLS_SQL`] returns ([`Catalog::acls`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Acls {
    /// The role the dump ran as.
    pub role: String,
    pub objects: Vec<ObjectAcl>,
    pub defaults: Vec<DefaultAcl>,
}

impl Acls {
    /// Run [`ACLS_SQL`] (in `snapshot` when given) and parse it.
    pub fn read(
        tools: &super::pgbin::PgTools,
        conn: &super::conn::ConnSpec,
        snapshot: Option<&str>,
    ) -> crate::error::Result<Acls> {
        let out = super::session::query_qualified(tools, conn, snapshot, ACLS_SQL)?;
        serde_json::from_str(&out).map_err(|e| {
            crate::error::Error::Invalid(format!(
                "privileges query returned unexpected output: {e}"
            ))
        })
    }
}

/// The objects of the Supabase-managed schemas users add to (`auth`, `storage`: triggers,
/// policies, indexes, functions), each with the SQL that creates it, recorded as
/// `inventory.json`'s `managed_objects` (run with `search_path = ''`, so every name in the
/// definitions is qualified). The platform's own objects are among them; a restore tells them
/// apart by comparing with the target (see `ops::dbrestore::additions`). The same query reads
/// the target.
pub fn managed_objects_sql(schemas: &[&str]) -> String {
    let list = schemas
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
SELECT coalesce(json_agg(x ORDER BY x->>'kind', x->>'schema', x->>'table', x->>'name'), '[]') FROM (
  SELECT json_build_object('kind', 'function', 'schema', n.nspname, 'table', NULL,
         'name', format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)),
         'def', pg_get_functiondef(p.oid), 'owner', pg_get_userbyid(p.proowner)) AS x
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname IN ({list}) AND p.prokind IN ('f', 'p')
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  UNION ALL
  SELECT json_build_object('kind', 'trigger', 'schema', n.nspname, 'table', c.relname, 'name', t.tgname,
         'def', pg_get_triggerdef(t.oid), 'enabled', t.tgenabled::text, 'owner', pg_get_userbyid(p.proowner),
         'function', format('%I.%I', pn.nspname, p.proname))
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
   WHERE NOT t.tgisinternal AND n.nspname IN ({list})
  UNION ALL
  SELECT json_build_object('kind', 'policy', 'schema', n.nspname, 'table', c.relname, 'name', pol.polname,
         'def', format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s', pol.polname, n.nspname, c.relname,
            CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
            CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
            (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY r) FROM unnest(pol.polroles) r),
            ' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')',
            ' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')')) AS x
    FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ({list})
  UNION ALL
  SELECT json_build_object('kind', 'index', 'schema', n.nspname, 'table', c.relname, 'name', ic.relname,
         'def', pg_get_indexdef(i.indexrelid)) AS x
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ({list}) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
) z;
"#
    )
}

/// One object of a managed schema ([`managed_objects_sql`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManagedObject {
    /// `function`, `trigger`, `policy` or `index`.
    pub kind: String,
    pub schema: String,
    /// The table of a trigger, policy or index.
    pub table: Option<String>,
    /// The name (a function: its qualified signature).
    pub name: String,
    /// The SQL that creates it (no trailing `;`).
    pub def: String,
    /// A trigger's `tgenabled` (`O` on, `D` disabled, `R` replica, `A` always).
    #[serde(default)]
    pub enabled: Option<String>,
    /// A function's owner; a trigger's: its function's owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// A trigger's function (`schema.name`).
    #[serde(default)]
    pub function: Option<String>,
}

impl ManagedObject {
    /// Read [`managed_objects_sql`] (in `snapshot` when given).
    pub fn read(
        tools: &super::pgbin::PgTools,
        conn: &super::conn::ConnSpec,
        snapshot: Option<&str>,
        schemas: &[&str],
    ) -> crate::error::Result<Vec<ManagedObject>> {
        let out =
            super::session::query_qualified(tools, conn, snapshot, &managed_objects_sql(schemas))?;
        serde_json::from_str(&out).map_err(|e| {
            crate::error::Error::Invalid(format!(
                "managed-schema query returned unexpected output: {e}"
            ))
        })
    }
}

/// `db/<database>/catalog.json` (repo-format.md §7.3): what a restore needs to make the
/// catalogs exact beyond schema.sql. Kept apart from `inventory.json`, which changes with every
/// backup (durations, snapshot id), so that this one deduplicates from night to night.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    pub version: u32,
    pub acls: Acls,
    pub managed_objects: Vec<ManagedObject>,
}

impl Catalog {
    pub const VERSION: u32 = 1;
    pub const FILE: &'static str = "catalog.json";

    /// Parse `catalog.json`; an unknown version is an error that says so.
    pub fn parse(bytes: &[u8], what: &str) -> crate::error::Result<Catalog> {
        let c: Catalog = serde_json::from_slice(bytes)
            .map_err(|e| crate::error::Error::corrupt(what, e.to_string()))?;
        if c.version != Catalog::VERSION {
            return Err(crate::error::Error::corrupt(
                what,
                format!(
                    "unknown version {} (this snap reads {}); upgrade snap",
                    c.version,
                    Catalog::VERSION
                ),
            ));
        }
        Ok(c)
    }
}
