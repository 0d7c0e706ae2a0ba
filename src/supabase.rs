//! Facts about a Supabase project's database that snap relies on, in one place: the schemas the
//! platform manages, the roles it reserves, the tables never dumped, and which managed schemas
//! users extend. The dump (`source::postgres`), the restore, its verification and the drill
//! (`ops::dbrestore`) all read them from here. Sources: the Supabase CLI's dump exclusions and
//! supautils' reserved roles (`../shared/supabase-facts.md`).

/// The schemas the platform manages (patterns as pg_dump takes them: `*` wildcards). Their
/// definitions are left out of `schema.sql` (the platform creates them), `--clean` never drops
/// them, and verification counts only what is outside them as the user's.
pub const MANAGED_SCHEMAS: &[&str] = &[
    "information_schema",
    "pg_*",
    "_analytics",
    "_realtime",
    "_supavisor",
    "auth",
    "etl",
    "extensions",
    "pgbouncer",
    "realtime",
    "storage",
    "supabase_functions",
    "supabase_migrations",
    "cron",
    "dbdev",
    "graphql",
    "graphql_public",
    "net",
    "pgmq",
    "pgsodium",
    "pgsodium_masks",
    "pgtle",
    "repack",
    "tiger",
    "tiger_data",
    "timescaledb_*",
    "_timescaledb_*",
    "topology",
    "vault",
];

/// Managed schemas whose ROWS are the user's and are dumped (users, objects, webhooks, cron jobs,
/// queues). The data of every other managed schema is left out.
pub const MANAGED_SCHEMAS_WITH_USER_DATA: &[&str] = &[
    "auth",
    "storage",
    "supabase_functions",
    "cron",
    "net",
    "pgmq",
    "dbdev",
];

/// Managed schemas users customise (triggers, policies, functions): their definitions are kept
/// in each snapshot (`managed/<schema>.sql`, `catalog.json`) and the user's additions restored.
pub const EXTENDED_MANAGED_SCHEMAS: &[&str] = &["auth", "storage"];

/// The schema of the migration history (`supabase migration`), dumped whole when present.
pub const MIGRATIONS_SCHEMA: &str = "supabase_migrations";

/// Single tables whose data is never dumped (schema, table): the platform's own migration
/// bookkeeping, and tables Postgres cannot read (Supabase docs).
pub const DATA_EXCLUDED_TABLES: &[(&str, &str)] = &[
    ("auth", "schema_migrations"),
    ("storage", "migrations"),
    ("supabase_functions", "migrations"),
    ("storage", "buckets_vectors"),
    ("storage", "vector_indexes"),
];

/// Roles whose CREATE/ALTER ROLE the Supabase platform blocks (supautils), besides the
/// `supabase_*` and `cli_login_*` families.
const RESERVED_ROLES: &[&str] = &[
    "anon",
    "authenticated",
    "authenticator",
    "dashboard_user",
    "pgbouncer",
    "postgres",
    "service_role",
    "pgsodium_keyholder",
    "pgsodium_keyiduser",
    "pgsodium_keymaker",
    "pgtle_admin",
];

/// The publication Realtime streams changes from.
pub const REALTIME_PUBLICATION: &str = "supabase_realtime";

/// Whether `schema` is one of [`MANAGED_SCHEMAS`].
pub fn is_managed_schema(schema: &str) -> bool {
    MANAGED_SCHEMAS
        .iter()
        .any(|p| glob_match(p.as_bytes(), schema.as_bytes()))
}

/// The managed schemas whose data is left out of the dump (patterns, for `--exclude-schema`).
pub fn data_excluded_schemas() -> impl Iterator<Item = &'static str> {
    MANAGED_SCHEMAS
        .iter()
        .copied()
        .filter(|s| !MANAGED_SCHEMAS_WITH_USER_DATA.contains(s))
}

/// Whether `role` is a reserved Supabase role (anon, authenticated, authenticator, cli_login_*,
/// dashboard_user, pgbouncer, postgres, service_role, supabase_*, pgsodium_keyholder/keyiduser/
/// keymaker, pgtle_admin).
pub fn is_reserved_role(role: &str) -> bool {
    RESERVED_ROLES.contains(&role)
        || role.starts_with("supabase_")
        || role.starts_with("cli_login_")
}

/// Whether `role` is a reserved role every project has (all but the per-login `cli_login_*`):
/// roles.sql does not create them, so a restore target must have them already.
pub fn is_project_role(role: &str) -> bool {
    is_reserved_role(role) && !role.starts_with("cli_login_")
}

/// Whether `role` is one of the platform's own service roles (`supabase_admin`,
/// `supabase_auth_admin`, `supabase_storage_admin`, …): what they own in auth and storage is the
/// platform's, what other roles made there is the user's.
pub fn is_platform_role(role: &str) -> bool {
    role.starts_with("supabase_")
}

/// `*` matches any run of bytes, `?` any one byte; everything else matches itself.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_roles() {
        for r in [
            "anon",
            "authenticated",
            "authenticator",
            "cli_login_postgres",
            "dashboard_user",
            "pgbouncer",
            "postgres",
            "service_role",
            "supabase_admin",
            "supabase_auth_admin",
            "supabase_storage_admin",
            "supabase_realtime_admin",
            "pgsodium_keyholder",
            "pgsodium_keyiduser",
            "pgsodium_keymaker",
            "pgtle_admin",
        ] {
            assert!(is_reserved_role(r), "{r}");
        }
        for r in [
            "app_user",
            "Anon",
            "postgres2",
            "supabase",
            "pgsodium_other",
            "my_anon",
            "cli_login",
        ] {
            assert!(!is_reserved_role(r), "{r}");
        }
    }

    #[test]
    fn exclusion_lists() {
        for s in [
            "auth",
            "storage",
            "pg_catalog",
            "pg_toast",
            "timescaledb_information",
            "_timescaledb_cache",
            "vault",
            "etl",
        ] {
            assert!(is_managed_schema(s), "{s}");
        }
        for s in [
            "public",
            "My Schema",
            "pg",
            "authx",
            "storage2",
            "timescaledb",
        ] {
            assert!(!is_managed_schema(s), "{s}");
        }
        for s in [
            "auth",
            "storage",
            "supabase_functions",
            "cron",
            "net",
            "pgmq",
        ] {
            assert!(!data_excluded_schemas().any(|x| x == s), "{s} data is kept");
        }
        assert!(DATA_EXCLUDED_TABLES.contains(&("storage", "migrations")));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b", b"abc"));
        assert!(glob_match(b"a?c", b"abc"));
    }

    /// The data exclusions are the managed schemas minus those holding user data: exactly the
    /// list the dump passed pg_dump before the facts had one home.
    #[test]
    fn data_exclusions() {
        let mut got: Vec<&str> = data_excluded_schemas().collect();
        got.sort();
        let mut want = vec![
            "information_schema",
            "pg_*",
            "graphql",
            "graphql_public",
            "pgsodium",
            "pgsodium_masks",
            "pgtle",
            "repack",
            "tiger",
            "tiger_data",
            "timescaledb_*",
            "_timescaledb_*",
            "topology",
            "vault",
            "extensions",
            "pgbouncer",
            "realtime",
            "supabase_migrations",
            "_analytics",
            "_realtime",
            "_supavisor",
            "etl",
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(is_managed_schema("dbdev") && !data_excluded_schemas().any(|s| s == "dbdev"));
    }
}
