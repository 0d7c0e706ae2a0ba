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
