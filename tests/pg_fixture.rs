//! The throwaway PostgreSQL cluster helper (tests/support/pg.rs) and the Supabase-shaped fixture
//! (tests/fixtures/supabase.sql) work: clusters start as root or not, load the fixture, dump
//! with the real pg_dump, check passwords over TCP, and leave nothing behind.

#[path = "support/pg.rs"]
mod pg;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pg::*;

fn q(c: &PgCluster, db: &str, sql: &str) -> String {
    c.psql_db(db, sql)
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn supabase_fixture_loads_with_its_objects_and_dumps() {
    let c = PgCluster::start();
    let bin_major: u32 = c
        .bin
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c.server_major(), bin_major);
    assert!(c.server_major() >= 15);

    c.create_supabase_db("shop");
    for (table, rows) in SUPABASE_FIXTURE_ROWS {
        assert_eq!(c.count("shop", table), *rows, "rows in {table}");
    }

    // Roles and their settings.
    assert_eq!(
        lines(&q(
            &c,
            "shop",
            "SELECT rolname || ':' || rolcanlogin || ':' || rolsuper FROM pg_roles \
             WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator', 'supabase_admin', 'app_user') \
             ORDER BY 1"
        )),
        [
            "anon:false:false",
            "app_user:true:false",
            "authenticated:false:false",
            "authenticator:true:false",
            "service_role:false:false",
            "supabase_admin:true:true",
        ]
    );
    let settings = q(
        &c,
        "shop",
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole \
         WHERE r.rolname = 'app_user' AND s.setdatabase = 0",
    );
    assert_eq!(settings, "statement_timeout=5s,work_mem=8MB");

    // Schemas, extensions in `extensions`.
    let schemas = q(
        &c,
        "shop",
        "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)'",
    );
    assert_eq!(
        schemas,
        "auth,billing,extensions,public,storage,supabase_functions,supabase_migrations"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT string_agg(e.extname || '@' || n.nspname, ',' ORDER BY e.extname) FROM pg_extension e \
              JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"
        ),
        "pgcrypto@extensions,uuid-ossp@extensions"
    );

    // The user's trigger on auth.users, the webhook on public.orders, the other trigger.
    let triggers = q(
        &c,
        "shop",
        "SELECT t.tgrelid::regclass || ':' || t.tgname || ':' || p.pronamespace::regnamespace || '.' || p.proname \
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal ORDER BY 1",
    );
    assert_eq!(
        lines(&triggers),
        [
            "auth.users:on_auth_user_created:public.handle_new_user",
            "orders:orders_webhook:supabase_functions.http_request",
            "profiles:profiles_set_updated_at:public.set_updated_at",
        ]
    );
    assert_eq!(
        q(&c, "shop", "SELECT evtname FROM pg_event_trigger"),
        "issue_grant_on_ddl"
    );

    // RLS, policies, grants, publication, view options, sequence, enum, comments.
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT string_agg(oid::regclass::text, ',' ORDER BY oid::regclass::text) FROM pg_class \
              WHERE relrowsecurity"
        ),
        "order_items,orders,profiles,storage.buckets,storage.objects"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'storage'"
        ),
        "2"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
        ),
        "5"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT has_table_privilege('anon', 'public.profiles', 'SELECT') \
              || ',' || has_table_privilege('anon', 'public.orders', 'SELECT') \
              || ',' || has_table_privilege('authenticated', 'public.orders', 'INSERT') \
              || ',' || has_table_privilege('service_role', 'public.order_items', 'DELETE')"
        ),
        "true,false,true,true"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) \
              FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        ),
        "public.orders,public.profiles"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'public.order_totals'::regclass"
        ),
        "security_invoker=true"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT last_value || ':' || is_called FROM public.invoice_number_seq"
        ),
        "90001:true"
    );
    assert_eq!(
        q(&c, "shop", "SELECT max(id) FROM billing.invoices"),
        (1000 + 499 * 7).to_string()
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum \
              WHERE enumtypid = 'public.order_status'::regtype"
        ),
        "pending,paid,shipped,cancelled,refunded"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT obj_description('public.profiles'::regclass, 'pg_class')"
        ),
        "Public profile of each user — créé par un trigger ✓"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM supabase_migrations.schema_migrations WHERE cardinality(statements) = 2"
        ),
        "3"
    );

    // The awkward values are really there.
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM public.profiles WHERE full_name = 'Zoë Ünïcødé 🎉'"
        ),
        "10"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM public.profiles WHERE position(E'\\n\\\\.\\n' IN bio) > 0"
        ),
        "9"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM public.profiles WHERE position(E'\\t' IN bio) > 0 AND position(E'\\\\' IN bio) > 0"
        ),
        "8"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT encode(receipt, 'hex') FROM public.orders WHERE id = 1"
        ),
        "00000000"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(*) FROM public.orders WHERE position('\\x00'::bytea IN receipt) > 0"
        ),
        "1800"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT settings->'langs'->>2 FROM public.profiles LIMIT 1"
        ),
        "日本"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT array_to_string(path_tokens, '|') FROM storage.objects WHERE id = md5('object-1')::uuid"
        ),
        "reports|2024|report 1 (final).pdf"
    );
    assert_eq!(
        q(
            &c,
            "shop",
            "SELECT count(DISTINCT hook_table_id) FROM supabase_functions.hooks"
        ),
        "1"
    );

    // The real pg_dump of the data completes, over TCP with the URL as snap will use it.
    let dump = c
        .client("pg_dump")
        .env_remove("PGHOST")
        .args([
            "--data-only",
            "--quote-all-identifier",
            "--role",
            "postgres",
            "--dbname",
            &c.url_db("shop"),
        ])
        .output()
        .expect("spawn pg_dump");
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8(dump.stdout).expect("the dump is UTF-8");
    assert!(text.contains("COPY \"public\".\"orders\" (\"id\", \"user_id\", \"total\", \"created_at\", \"status\", \"receipt\", \"note\") FROM stdin;"));
    assert!(text.contains("COPY \"storage\".\"objects\" (\"id\", \"bucket_id\", \"name\", \"owner\", \"created_at\", \"updated_at\", \"last_accessed_at\", \"metadata\", \"version\", \"user_metadata\") FROM stdin;"), "generated column is not dumped");
    assert!(
        text.contains(
            "SELECT pg_catalog.setval('\"public\".\"invoice_number_seq\"', 90001, true);"
        )
    );
    assert!(text.contains("Zoë Ünïcødé 🎉"));
    assert!(text.contains("\\\\x00000000"), "bytea in COPY text form");
    assert_eq!(text.matches("\nCOPY ").count(), SUPABASE_FIXTURE_ROWS.len());

    let roles = c
        .client("pg_dumpall")
        .args([
            "--roles-only",
            "--no-role-passwords",
            "--quote-all-identifier",
        ])
        .output()
        .expect("spawn pg_dumpall");
    assert!(
        roles.status.success(),
        "pg_dumpall: {}",
        String::from_utf8_lossy(&roles.stderr)
    );
    let roles = String::from_utf8(roles.stdout).unwrap();
    assert!(
        roles.contains("ALTER ROLE \"app_user\" SET \"statement_timeout\" TO '5s';"),
        "{roles}"
    );

    // The fixture loads again into another database of the same cluster (roles exist by then)
    // and is deterministic: the same data, table by table.
    c.create_supabase_db("shop2");
    let a = c.table_fingerprints("shop");
    assert_eq!(a.len(), SUPABASE_FIXTURE_ROWS.len());
    assert_eq!(a["public.orders"].split(':').next(), Some("2000"));
    assert_eq!(a, c.table_fingerprints("shop2"));

    // And the plain fixture.
    c.create_db("plain");
    c.load_file("plain", &fixture("plain.sql"));
    for (table, rows) in PLAIN_FIXTURE_ROWS {
        assert_eq!(c.count("plain", table), *rows, "rows in {table}");
    }
    assert_eq!(
        q(
            &c,
            "plain",
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('auth', 'storage')"
        ),
        "0"
    );
}

#[test]
fn password_cluster_accepts_special_characters_and_rejects_wrong_ones() {
    let pw = "p@ss:w/rd?#%*'x y";
    let c = PgCluster::start_with_password(pw);
    assert!(c.password_required);

    let tcp = |password: Option<&str>, dbname: &str| {
        let mut cmd = c.client("psql");
        cmd.env("PGHOST", "127.0.0.1").args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-c",
            "SELECT 'ok'",
            "-d",
            dbname,
        ]);
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let o = cmd.output().expect("spawn psql");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    let (ok, out, err) = tcp(Some(pw), "postgres");
    assert!(ok && out == "ok", "right password refused: {err}");
    let (ok, _, err) = tcp(Some("p@ss:w/rd?#%*'x"), "postgres");
    assert!(
        !ok && err.contains("password authentication failed for user \"postgres\""),
        "{err}"
    );
    let (ok, _, err) = tcp(None, "postgres");
    assert!(!ok && err.contains("no password supplied"), "{err}");
    // The percent-encoded URL carries it too.
    let (ok, out, err) = tcp(None, &c.url_with_password("postgres"));
    assert!(
        ok && out == "ok",
        "{} refused: {err}",
        c.url_with_password("postgres")
    );
    assert!(
        c.url_with_password("postgres")
            .contains("p%40ss%3Aw%2Frd%3F%23%25%2A%27x%20y@")
    );
    // The Unix socket stays trusted (the helpers use it).
    assert_eq!(c.psql("SELECT current_user"), "postgres");
}

fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // A zombie is dead (its parent, not us, may reap it late).
        Ok(s) => !matches!(
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
    }
}

/// Live processes whose parent is `pid` or whose command line mentions `dir`.
fn leftovers(pid: i32, dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let needle = dir.to_str().unwrap();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: i32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if state == "Z" || state == "X" {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if ppid == pid || cmdline.contains(needle) {
            found.push(format!("{p}: {cmdline}"));
        }
    }
    found
}

struct Seen {
    port: u16,
    pid: i32,
    dir: PathBuf,
}

fn seen(c: &PgCluster) -> Seen {
    let pid = c.pid().expect("postmaster.pid");
    assert!(alive(pid));
    Seen {
        port: c.port,
        pid,
        dir: c.dir().to_path_buf(),
    }
}

fn assert_gone(s: &Seen) {
    // pg_ctl stop -w has waited for the postmaster; allow its exit a moment to settle.
    for _ in 0..50 {
        if !alive(s.pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(s.pid), "postmaster {} still running", s.pid);
    let left = leftovers(s.pid, &s.dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(!s.dir.exists(), "{} not removed", s.dir.display());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.port));
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "port {} still accepts connections",
        s.port
    );
}

#[test]
fn clusters_run_side_by_side_and_are_removed_on_drop_even_after_a_panic() {
    // Two at once: distinct ports, dirs and servers.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(PgCluster::start);
        let b = s.spawn(PgCluster::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (sa, sb) = (seen(&a), seen(&b));
    assert_ne!(sa.port, sb.port);
    assert_ne!(sa.dir, sb.dir);
    a.create_db("only_in_a");
    assert_eq!(
        b.psql("SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'"),
        "0"
    );
    // The data directory belongs to the server's user (postgres when we are root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::MetadataExt;
        let uid = fs::metadata(&a.data_dir).unwrap().uid();
        assert_ne!(uid, 0, "the server must not run as root");
        assert_eq!(
            a.psql("SELECT current_setting('data_directory')"),
            a.data_dir.to_str().unwrap()
        );
    }
    drop(a);
    assert_gone(&sa);
    assert_eq!(
        b.psql("SELECT 1"),
        "1",
        "dropping one cluster left the other running"
    );
    drop(b);
    assert_gone(&sb);

    // A test that panics with a running cluster still stops and removes it.
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let c = PgCluster::start();
        tx.send(seen(&c)).unwrap();
        panic!("deliberate panic with a running cluster (expected by this test)");
    })
    .join();
    assert!(r.is_err());
    assert_gone(&rx.recv().unwrap());
}
