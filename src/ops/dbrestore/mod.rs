//! `snap restore --db`: load a database snapshot into a target database.
//!
//! 1. [`inspect`] the target and compare it with the snapshot's inventory ([`requirements`]):
//!    blocking problems (a missing extension, webhooks or realtime not enabled, a reserved role
//!    missing, an older server, user tables already present) stop the restore with the fix.
//! 2. [`restore`] (one routine for the whole database, a schema, a table, `--data-only`,
//!    `--jobs`, `--clean`) streams roles.sql → schema.sql → data.sql (session_replication_role = replica,
//!    so triggers stay off) → migrations.sql into ONE `psql --single-transaction` with
//!    ON_ERROR_STOP: a failure leaves the target as it was, and the failing statement is named
//!    with its part and line. On a Supabase target, statements a hosted project refuses
//!    (`GRANT … TO "postgres"`, `ALTER … OWNER TO "supabase_admin"`, the vector tables postgres
//!    cannot write) are skipped and listed, never silently dropped. Then `NOTIFY pgrst`.
//! 3. [`verify`] compares the target with the snapshot: row counts per table, functions,
//!    policies, realtime publication tables, grants to the API roles.
//!
//! Files: `requirements` (target inspection and the report), `schema_blocks` (schema.sql by
//!    TOC block, scope filters, `--clean` plans), `load` (feeding psql), `verify`, `drill` (the
//!    restore drill into a throwaway local cluster, `--verify`).

pub mod acl;
pub mod additions;
pub mod clean;
pub mod data_plan;
pub mod drill;
mod fkeys;
mod load;
mod requirements;
mod schema_blocks;
mod verify;

use serde::Serialize;

use crate::error::{Error, Result};

pub use additions::{AdditionsPlan, notes as additions_notes, plan as additions_plan};
pub use clean::CleanPlan;
pub use data_plan::{DataPlan, plan as data_plan, plan_for_psql};
pub use drill::{DrillReport, drill};
pub use load::{
    RestoreOptions, RestoreReport, privileges_sql, refused_on_managed_target, restore,
    restore_parts, scoped_parts, write_planned_data_sql,
};
pub use requirements::{
    Requirement, TargetInfo, inspect, plan_notes, requirements, scope_inventory, table_exists,
    tables_with_rows,
};
pub use schema_blocks::{
    SqlBlock, filter_schema_sql, owned_sequences, split_schema_sql, user_schemas,
};
pub use verify::{Check, verify};

pub use crate::supabase::is_managed_schema;

/// What a restore covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scope {
    Whole,
    Schema(String),
    Table(String, String),
}

impl Scope {
    /// `--table schema.table` (quoted parts are not needed: the first `.` separates).
    pub fn table(spec: &str) -> Result<Scope> {
        match spec.split_once('.') {
            Some((s, t)) if !s.is_empty() && !t.is_empty() => {
                Ok(Scope::Table(s.to_string(), t.to_string()))
            }
            _ => Err(Error::Invalid(format!(
                "--table {spec:?}: expected schema.table, e.g. public.orders"
            ))),
        }
    }

    pub fn covers_table(&self, schema: &str, table: &str) -> bool {
        match self {
            Scope::Whole => true,
            Scope::Schema(s) => s == schema,
            Scope::Table(s, t) => s == schema && t == table,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::Whole => "the whole database".into(),
            Scope::Schema(s) => format!("schema {s}"),
            Scope::Table(s, t) => format!("table {s}.{t}"),
        }
    }
}

/// `'x'`: an SQL string literal (standard_conforming_strings on, as pg_dump sets it).
pub(crate) fn ql(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"x"` with embedded quotes doubled (pg_dump --quote-all-identifiers spelling).
pub fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::load::*;
    use super::requirements::*;
    use super::schema_blocks::*;
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn target() -> TargetInfo {
        TargetInfo {
            server_version_num: 150018,
            extensions: vec!["plpgsql".into(), "pgcrypto".into()],
            available_extensions: vec!["pgcrypto".into(), "uuid-ossp".into()],
            roles: vec!["postgres".into(), "anon".into()],
            publications: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn requirement_report() {
        // An inventory as stored (the reader takes what the writer wrote, missing fields too).
        let inv: crate::source::postgres::inventory::Inventory = serde_json::from_value(json!({
            "server_version_num": 160002,
            "extensions": [{"name": "plpgsql", "schema": "pg_catalog"}, {"name": "pgcrypto", "schema": "extensions"}, {"name": "uuid-ossp", "schema": "extensions"}, {"name": "postgis", "schema": "public"}],
            "webhooks": [{"schema": "public", "table": "orders", "trigger": "w"}],
            "realtime": {"tables": [{"schema": "public", "table": "orders"}]},
            "roles": ["anon", "authenticated", "app_user", "postgres"],
        }))
        .unwrap();
        let mut t = target();
        t.nonempty_tables = vec!["public.orders".into()];
        let r = requirements(
            &inv,
            &[
                ("public".into(), "orders".into()),
                ("public".into(), "x".into()),
            ],
            &t,
        );
        let text: Vec<String> = r
            .iter()
            .map(|x| format!("{} | {}", x.what, x.fix.clone().unwrap_or_default()))
            .collect();
        assert!(r.iter().all(|x| x.blocking));
        assert!(
            text[0].contains("PostgreSQL 15, older than the snapshot's 16"),
            "{text:?}"
        );
        assert!(text.iter().any(|l| {
            l.contains("CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA \"extensions\";")
        }));
        assert!(
            text.iter()
                .any(|l| l.contains("postgis is not installed in the target (and not available"))
        );
        assert!(
            !text
                .iter()
                .any(|l| l.contains("pgcrypto") || l.contains("plpgsql"))
        );
        assert!(
            text.iter()
                .any(|l| l.contains("webhook") && l.contains("Database Webhooks"))
        );
        assert!(text.iter().any(|l| l.contains("supabase_realtime")));
        assert!(
            text.iter()
                .any(|l| l.contains("role authenticated is reserved"))
        );
        assert!(
            !text.iter().any(|l| l.contains("app_user")),
            "roles.sql creates user roles"
        );
        assert!(text.iter().any(|l| l.contains("already has rows in public.orders") && !l.contains("public.x")));
        // A satisfied target: no problems.
        let t = TargetInfo {
            server_version_num: 160004,
            extensions: vec!["pgcrypto".into(), "uuid-ossp".into(), "postgis".into()],
            roles: vec!["anon".into(), "authenticated".into(), "postgres".into()],
            publications: vec!["supabase_realtime".into()],
            has_http_request: true,
            ..Default::default()
        };
        assert!(requirements(&inv, &[("public".into(), "orders".into())], &t).is_empty());
    }

    #[test]
    fn failing_statement_is_shown_whole() {
        let sql = b"SET x = 1;\n\nALTER TABLE ONLY billing.invoices\n    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);\nSELECT 1;\n";
        assert_eq!(
            statement_ending_at(sql, 4),
            "ALTER TABLE ONLY billing.invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);"
        );
        assert_eq!(statement_ending_at(sql, 5), "SELECT 1;");
        assert_eq!(statement_ending_at(sql, 1), "SET x = 1;");
    }

    #[test]
    fn managed_target_statements() {
        assert!(refused_on_managed_target(
            "GRANT ALL ON TABLE \"public\".\"orders\" TO \"postgres\";"
        ));
        assert!(refused_on_managed_target(
            "ALTER TABLE \"public\".\"orders\" OWNER TO \"supabase_admin\";"
        ));
        assert!(refused_on_managed_target(
            "CREATE TABLE IF NOT EXISTS \"storage\".\"buckets_vectors\" ("
        ));
        assert!(!refused_on_managed_target(
            "GRANT ALL ON TABLE \"public\".\"orders\" TO \"anon\";"
        ));
        assert!(!refused_on_managed_target(
            "ALTER TABLE \"public\".\"orders\" OWNER TO \"postgres\";"
        ));
        assert!(!refused_on_managed_target(
            "-- GRANT ALL ON TABLE x TO \"postgres\";"
        ));
    }

    /// schema.sql of tests/fixtures/supabase.sql as `snap backup db` stores it (pg_dump 15.18
    /// --schema-only --quote-all-identifiers with the Supabase CLI cleanups).
    const REAL_SCHEMA_SQL: &str = r##"--
-- PostgreSQL database dump
--

-- \restrict oLgiWzMWjyL6Ptw6LSo5EtxiVQRUgRZoiRtv2N9gCQ9YDAlJRW5EmEGyoQDXoVd

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: billing; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA IF NOT EXISTS "billing";


ALTER SCHEMA "billing" OWNER TO "postgres";

--
-- Name: SCHEMA "billing"; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON SCHEMA "billing" IS 'Invoices (owned by the application)';


--
-- Name: SCHEMA "public"; Type: COMMENT; Schema: -; Owner: pg_database_owner
--

COMMENT ON SCHEMA "public" IS 'standard public schema';


--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS "pgcrypto" WITH SCHEMA "extensions";


--
-- Name: EXTENSION "pgcrypto"; Type: COMMENT; Schema: -; Owner: 
--

-- COMMENT ON EXTENSION "pgcrypto" IS 'cryptographic functions';


--
-- Name: uuid-ossp; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA "extensions";


--
-- Name: EXTENSION "uuid-ossp"; Type: COMMENT; Schema: -; Owner: 
--

-- COMMENT ON EXTENSION "uuid-ossp" IS 'generate universally unique identifiers (UUIDs)';


--
-- Name: order_status; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE "public"."order_status" AS ENUM (
    'pending',
    'paid',
    'shipped',
    'cancelled',
    'refunded'
);


ALTER TYPE "public"."order_status" OWNER TO "postgres";

--
-- Name: TYPE "order_status"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TYPE "public"."order_status" IS 'Lifecycle of an order';


--
-- Name: handle_new_user(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE OR REPLACE FUNCTION "public"."handle_new_user"() RETURNS "trigger"
    LANGUAGE "plpgsql" SECURITY DEFINER
    SET "search_path" TO ''
    AS $$
BEGIN
  INSERT INTO public.profiles (id, username, full_name)
  VALUES (NEW.id, split_part(NEW.email, '@', 1), NEW.raw_user_meta_data ->> 'full_name');
  RETURN NEW;
END
$$;


ALTER FUNCTION "public"."handle_new_user"() OWNER TO "postgres";

--
-- Name: set_updated_at(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE OR REPLACE FUNCTION "public"."set_updated_at"() RETURNS "trigger"
    LANGUAGE "plpgsql"
    AS $$
BEGIN
  NEW.updated_at := '2024-06-01 12:00:00+00';
  RETURN NEW;
END
$$;


ALTER FUNCTION "public"."set_updated_at"() OWNER TO "postgres";

--
-- Name: invoice_number_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE IF NOT EXISTS "public"."invoice_number_seq"
    START WITH 1000
    INCREMENT BY 7
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE "public"."invoice_number_seq" OWNER TO "postgres";

SET default_tablespace = '';

SET default_table_access_method = "heap";

--
-- Name: invoices; Type: TABLE; Schema: billing; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "billing"."invoices" (
    "id" bigint DEFAULT "nextval"('"public"."invoice_number_seq"'::"regclass") NOT NULL,
    "order_id" bigint NOT NULL,
    "amount_cents" bigint NOT NULL,
    "issued_on" "date" NOT NULL,
    "memo" "text"
);


ALTER TABLE "billing"."invoices" OWNER TO "postgres";

--
-- Name: order_items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."order_items" (
    "order_id" bigint NOT NULL,
    "line" integer NOT NULL,
    "sku" "text" NOT NULL,
    "qty" integer NOT NULL,
    "unit_price" numeric(10,2) NOT NULL,
    CONSTRAINT "order_items_qty_check" CHECK (("qty" > 0))
);


ALTER TABLE "public"."order_items" OWNER TO "postgres";

--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."orders" (
    "id" bigint NOT NULL,
    "user_id" "uuid" NOT NULL,
    "total" numeric(12,2) NOT NULL,
    "created_at" timestamp with time zone DEFAULT "now"() NOT NULL,
    "status" "public"."order_status" DEFAULT 'pending'::"public"."order_status" NOT NULL,
    "receipt" "bytea",
    "note" "text",
    CONSTRAINT "orders_total_check" CHECK (("total" >= (0)::numeric))
);


ALTER TABLE "public"."orders" OWNER TO "postgres";

--
-- Name: TABLE "orders"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE "public"."orders" IS 'Customer orders: one row per checkout';


--
-- Name: order_totals; Type: VIEW; Schema: public; Owner: postgres
--

CREATE OR REPLACE VIEW "public"."order_totals" WITH ("security_invoker"='true') AS
 SELECT "o"."user_id",
    "count"(*) AS "orders",
    "sum"("o"."total") AS "total"
   FROM "public"."orders" "o"
  GROUP BY "o"."user_id";


ALTER TABLE "public"."order_totals" OWNER TO "postgres";

--
-- Name: VIEW "order_totals"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON VIEW "public"."order_totals" IS 'Per-user totals, with the caller''s RLS';


--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

ALTER TABLE "public"."orders" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME "public"."orders_id_seq"
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: profiles; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE IF NOT EXISTS "public"."profiles" (
    "id" "uuid" NOT NULL,
    "username" "text",
    "full_name" "text",
    "bio" "text",
    "settings" "jsonb" DEFAULT '{}'::"jsonb" NOT NULL,
    "updated_at" timestamp with time zone
);


ALTER TABLE "public"."profiles" OWNER TO "postgres";

--
-- Name: TABLE "profiles"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE "public"."profiles" IS 'Public profile of each user — créé par un trigger ✓';


--
-- Name: COLUMN "profiles"."settings"; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON COLUMN "public"."profiles"."settings" IS 'UI settings (JSON)';


--
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: billing; Owner: postgres
--

ALTER TABLE ONLY "billing"."invoices"
    ADD CONSTRAINT "invoices_pkey" PRIMARY KEY ("id");


--
-- Name: order_items order_items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."order_items"
    ADD CONSTRAINT "order_items_pkey" PRIMARY KEY ("order_id", "line");


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."orders"
    ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("id");


--
-- Name: profiles profiles_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_pkey" PRIMARY KEY ("id");


--
-- Name: profiles profiles_username_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_username_key" UNIQUE ("username");


--
-- Name: orders_user_id_idx; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX "orders_user_id_idx" ON "public"."orders" USING "btree" ("user_id");


--
-- Name: orders orders_webhook; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE OR REPLACE TRIGGER "orders_webhook" AFTER INSERT ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION "supabase_functions"."http_request"('http://host.docker.internal:54321/functions/v1/order-created', 'POST', '{"Content-type":"application/json"}', '{}', '5000');


--
-- Name: profiles profiles_set_updated_at; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE OR REPLACE TRIGGER "profiles_set_updated_at" BEFORE UPDATE ON "public"."profiles" FOR EACH ROW EXECUTE FUNCTION "public"."set_updated_at"();


--
-- Name: invoices invoices_order_id_fkey; Type: FK CONSTRAINT; Schema: billing; Owner: postgres
--

ALTER TABLE ONLY "billing"."invoices"
    ADD CONSTRAINT "invoices_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id");


--
-- Name: order_items order_items_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."order_items"
    ADD CONSTRAINT "order_items_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE CASCADE;


--
-- Name: orders orders_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."orders"
    ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "public"."profiles"("id");


--
-- Name: profiles profiles_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."profiles"
    ADD CONSTRAINT "profiles_id_fkey" FOREIGN KEY ("id") REFERENCES "auth"."users"("id") ON DELETE CASCADE;


--
-- Name: profiles Public profiles are viewable by everyone; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Public profiles are viewable by everyone" ON "public"."profiles" FOR SELECT USING (true);


--
-- Name: profiles Users can update own profile; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users can update own profile" ON "public"."profiles" FOR UPDATE TO "authenticated" USING ((( SELECT "auth"."uid"() AS "uid") = "id")) WITH CHECK ((( SELECT "auth"."uid"() AS "uid") = "id"));


--
-- Name: orders Users create own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users create own orders" ON "public"."orders" FOR INSERT TO "authenticated" WITH CHECK ((( SELECT "auth"."uid"() AS "uid") = "user_id"));


--
-- Name: order_items Users see items of own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users see items of own orders" ON "public"."order_items" FOR SELECT TO "authenticated" USING ((EXISTS ( SELECT 1
   FROM "public"."orders" "o"
  WHERE (("o"."id" = "order_items"."order_id") AND ("o"."user_id" = ( SELECT "auth"."uid"() AS "uid"))))));


--
-- Name: orders Users see own orders; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY "Users see own orders" ON "public"."orders" FOR SELECT TO "authenticated" USING ((( SELECT "auth"."uid"() AS "uid") = "user_id"));


--
-- Name: order_items; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."order_items" ENABLE ROW LEVEL SECURITY;

--
-- Name: orders; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."orders" ENABLE ROW LEVEL SECURITY;

--
-- Name: profiles; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE "public"."profiles" ENABLE ROW LEVEL SECURITY;

--
-- Name: supabase_realtime; Type: PUBLICATION; Schema: -; Owner: postgres
--

-- CREATE PUBLICATION "supabase_realtime" WITH (publish = 'insert, update, delete, truncate');


ALTER PUBLICATION "supabase_realtime" OWNER TO "postgres";

--
-- Name: supabase_realtime orders; Type: PUBLICATION TABLE; Schema: public; Owner: postgres
--

ALTER PUBLICATION "supabase_realtime" ADD TABLE ONLY "public"."orders";


--
-- Name: supabase_realtime profiles; Type: PUBLICATION TABLE; Schema: public; Owner: postgres
--

ALTER PUBLICATION "supabase_realtime" ADD TABLE ONLY "public"."profiles";


--
-- Name: SCHEMA "billing"; Type: ACL; Schema: -; Owner: postgres
--

GRANT USAGE ON SCHEMA "billing" TO "service_role";


--
-- Name: SCHEMA "public"; Type: ACL; Schema: -; Owner: pg_database_owner
--

GRANT USAGE ON SCHEMA "public" TO "anon";
GRANT USAGE ON SCHEMA "public" TO "authenticated";
GRANT USAGE ON SCHEMA "public" TO "service_role";


--
-- Name: FUNCTION "handle_new_user"(); Type: ACL; Schema: public; Owner: postgres
--

REVOKE ALL ON FUNCTION "public"."handle_new_user"() FROM PUBLIC;


--
-- Name: FUNCTION "set_updated_at"(); Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "anon";
GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "authenticated";
GRANT ALL ON FUNCTION "public"."set_updated_at"() TO "service_role";


--
-- Name: SEQUENCE "invoice_number_seq"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON SEQUENCE "public"."invoice_number_seq" TO "authenticated";
GRANT ALL ON SEQUENCE "public"."invoice_number_seq" TO "service_role";


--
-- Name: TABLE "invoices"; Type: ACL; Schema: billing; Owner: postgres
--

GRANT SELECT ON TABLE "billing"."invoices" TO "service_role";


--
-- Name: TABLE "order_items"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON TABLE "public"."order_items" TO "authenticated";
GRANT ALL ON TABLE "public"."order_items" TO "service_role";


--
-- Name: TABLE "orders"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON TABLE "public"."orders" TO "authenticated";
GRANT ALL ON TABLE "public"."orders" TO "service_role";
GRANT SELECT ON TABLE "public"."orders" TO "app_user";


--
-- Name: TABLE "order_totals"; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE "public"."order_totals" TO "anon";
GRANT ALL ON TABLE "public"."order_totals" TO "authenticated";
GRANT ALL ON TABLE "public"."order_totals" TO "service_role";


--
-- Name: SEQUENCE "orders_id_seq"; Type: ACL; Schema: public; Owner: postgres
--

GRANT ALL ON SEQUENCE "public"."orders_id_seq" TO "authenticated";
GRANT ALL ON SEQUENCE "public"."orders_id_seq" TO "service_role";


--
-- Name: TABLE "profiles"; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE "public"."profiles" TO "anon";
GRANT ALL ON TABLE "public"."profiles" TO "authenticated";
GRANT ALL ON TABLE "public"."profiles" TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR SEQUENCES; Type: DEFAULT ACL; Schema: public; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "anon";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "authenticated";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON SEQUENCES  TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "anon";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "authenticated";
ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT ALL ON TABLES  TO "service_role";


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: supabase_admin
--

-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "anon";
-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "authenticated";
-- ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin" IN SCHEMA "public" GRANT ALL ON TABLES  TO "service_role";


--
-- Name: issue_grant_on_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

-- CREATE EVENT TRIGGER "issue_grant_on_ddl" ON "ddl_command_end"
--          WHEN TAG IN ('CREATE EXTENSION')
--    EXECUTE FUNCTION "extensions"."grant_on_ddl"();


-- ALTER EVENT TRIGGER "issue_grant_on_ddl" OWNER TO "postgres";

--
-- PostgreSQL database dump complete
--

-- \unrestrict oLgiWzMWjyL6Ptw6LSo5EtxiVQRUgRZoiRtv2N9gCQ9YDAlJRW5EmEGyoQDXoVd

"##;

    fn kinds(text: &str) -> Vec<String> {
        split_schema_sql(text)
            .1
            .iter()
            .map(|b| {
                format!(
                    "{} | {} | {}",
                    b.kind,
                    b.schema.as_deref().unwrap_or("-"),
                    b.name
                )
            })
            .collect()
    }

    #[test]
    fn splits_real_pg_dump_output_into_blocks() {
        let (pre, blocks) = split_schema_sql(REAL_SCHEMA_SQL);
        assert!(
            pre.contains("SET client_encoding = 'UTF8';")
                && pre.contains("set_config('search_path', '', false)")
        );
        assert!(!pre.contains("-- Name:"));
        assert_eq!(blocks.len(), REAL_SCHEMA_SQL.matches("\n-- Name: ").count());
        // Nothing lost, nothing duplicated.
        assert_eq!(
            pre + &blocks.iter().map(|b| b.text.as_str()).collect::<String>(),
            REAL_SCHEMA_SQL
        );
        let b = blocks
            .iter()
            .find(|b| b.kind == "CONSTRAINT" && b.name == "orders orders_pkey")
            .unwrap();
        assert_eq!(b.schema.as_deref(), Some("public"));
        assert!(
            b.text.contains("ALTER TABLE ONLY \"public\".\"orders\"")
                && !b.text.contains("orders_user_id_idx")
        );
        assert_eq!(
            parse_toc("-- Name: EXTENSION \"pgcrypto\"; Type: COMMENT; Schema: -; Owner: "),
            Some(("EXTENSION \"pgcrypto\"".into(), "COMMENT".into(), None))
        );
        assert_eq!(
            user_schemas(&blocks).into_iter().collect::<Vec<_>>(),
            vec!["billing".to_string(), "public".to_string()]
        );
    }

    #[test]
    fn schema_filter_keeps_the_schema_and_its_objects_only() {
        let billing = filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Schema("billing".into()));
        let k = kinds(&billing);
        assert_eq!(
            k,
            vec![
                "SCHEMA | - | billing",
                "COMMENT | - | SCHEMA \"billing\"",
                "TABLE | billing | invoices",
                "CONSTRAINT | billing | invoices invoices_pkey",
                "FK CONSTRAINT | billing | invoices invoices_order_id_fkey",
                "ACL | - | SCHEMA \"billing\"",
                "ACL | billing | TABLE \"invoices\"",
            ],
            "{billing}"
        );
        assert!(
            billing.starts_with("--\n-- PostgreSQL database dump")
                && billing.contains("SET row_security = off;")
        );
        let public = filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Schema("public".into()));
        assert!(
            !public.contains("\"billing\".")
                && !public.contains("CREATE SCHEMA IF NOT EXISTS \"billing\"")
        );
        assert!(
            public.contains("CREATE TYPE \"public\".\"order_status\"")
                && public.contains("ADD TABLE ONLY \"public\".\"orders\"")
        );
        assert!(
            !public.contains("Type: EXTENSION"),
            "extensions are requirements, not part of a schema"
        );
        assert_eq!(
            filter_schema_sql(REAL_SCHEMA_SQL, &Scope::Whole),
            REAL_SCHEMA_SQL
        );
    }

    #[test]
    fn table_filter_keeps_the_table_and_what_hangs_on_it() {
        let orders = filter_schema_sql(
            REAL_SCHEMA_SQL,
            &Scope::Table("public".into(), "orders".into()),
        );
        let k = kinds(&orders);
        for want in [
            "TABLE | public | orders",
            "COMMENT | public | TABLE \"orders\"",
            "SEQUENCE | public | orders_id_seq",
            "CONSTRAINT | public | orders orders_pkey",
            "INDEX | public | orders_user_id_idx",
            "TRIGGER | public | orders orders_webhook",
            "FK CONSTRAINT | public | orders orders_user_id_fkey",
            "POLICY | public | orders Users create own orders",
            "POLICY | public | orders Users see own orders",
            "ROW SECURITY | public | orders",
            "PUBLICATION TABLE | public | supabase_realtime orders",
            "ACL | public | TABLE \"orders\"",
            "ACL | public | SEQUENCE \"orders_id_seq\"",
        ] {
            assert!(k.contains(&want.to_string()), "{want} missing from {k:#?}");
        }
        assert_eq!(k.len(), 13, "{k:#?}");
        // Not the tables that reference it, nor the view over it.
        assert!(
            !orders.contains("order_items")
                && !orders.contains("order_totals")
                && !orders.contains("invoices")
        );

        // A serial column: CREATE SEQUENCE, OWNED BY and DEFAULT blocks (realistic pg_dump text).
        let serial = "SET x = 1;\n\n--\n-- Name: t; Type: TABLE; Schema: s; Owner: postgres\n--\n\nCREATE TABLE IF NOT EXISTS \"s\".\"t\" (\n    \"id\" integer NOT NULL\n);\n\n\
--\n-- Name: t_id_seq; Type: SEQUENCE; Schema: s; Owner: postgres\n--\n\nCREATE SEQUENCE IF NOT EXISTS \"s\".\"t_id_seq\"\n    AS integer\n    START WITH 1;\n\n\
--\n-- Name: t_id_seq; Type: SEQUENCE OWNED BY; Schema: s; Owner: postgres\n--\n\nALTER SEQUENCE \"s\".\"t_id_seq\" OWNED BY \"s\".\"t\".\"id\";\n\n\
--\n-- Name: t2; Type: TABLE; Schema: s; Owner: postgres\n--\n\nCREATE TABLE IF NOT EXISTS \"s\".\"t2\" (\"id\" integer);\n\n\
--\n-- Name: t id; Type: DEFAULT; Schema: s; Owner: postgres\n--\n\nALTER TABLE ONLY \"s\".\"t\" ALTER COLUMN \"id\" SET DEFAULT \"nextval\"('\"s\".\"t_id_seq\"'::\"regclass\");\n\n\
--\n-- Name: t2 t2_t_fkey; Type: FK CONSTRAINT; Schema: s; Owner: postgres\n--\n\nALTER TABLE ONLY \"s\".\"t2\"\n    ADD CONSTRAINT \"t2_t_fkey\" FOREIGN KEY (\"id\") REFERENCES \"s\".\"t\"(\"id\");\n";
        let k = kinds(&filter_schema_sql(
            serial,
            &Scope::Table("s".into(), "t".into()),
        ));
        assert_eq!(
            k,
            vec![
                "TABLE | s | t",
                "SEQUENCE | s | t_id_seq",
                "SEQUENCE OWNED BY | s | t_id_seq",
                "DEFAULT | s | t id"
            ]
        );
        let (_, blocks) = split_schema_sql(serial);
        assert!(setval_in_scope(
            "SELECT pg_catalog.setval('\"s\".\"t_id_seq\"', 5, true);",
            &Scope::Table("s".into(), "t".into()),
            &owned_sequences(&blocks, "s", "t")
        ));
        assert!(!setval_in_scope(
            "SELECT pg_catalog.setval('\"s\".\"u_id_seq\"', 5, true);",
            &Scope::Table("s".into(), "t".into()),
            &owned_sequences(&blocks, "s", "t")
        ));
        assert!(setval_in_scope(
            "SELECT pg_catalog.setval('\"s\".\"u_id_seq\"', 5, true);",
            &Scope::Schema("s".into()),
            &BTreeSet::new()
        ));
        assert!(!setval_in_scope(
            "SELECT pg_catalog.setval('\"s2\".\"u_id_seq\"', 5, true);",
            &Scope::Schema("s".into()),
            &BTreeSet::new()
        ));
    }

    #[test]
    fn clean_never_drops_managed_schemas() {
        use super::clean::cleaned;
        assert_eq!(
            cleaned(REAL_SCHEMA_SQL, &Scope::Whole).0,
            vec!["billing".to_string(), "public".into()]
        );
        assert_eq!(
            cleaned(REAL_SCHEMA_SQL, &Scope::Schema("auth".into())),
            (vec![], None)
        );
        for s in [
            "auth",
            "storage",
            "extensions",
            "supabase_migrations",
            "pg_toast",
            "realtime",
            "vault",
        ] {
            assert!(is_managed_schema(s), "{s}");
        }
        assert_eq!(roles_for(b"CREATE ROLE \"app_user\";\nALTER ROLE \"app_user\" WITH NOLOGIN;\nCREATE ROLE \"other\";\n", &["app_user".into()]), b"-- snap: the role exists: CREATE ROLE \"app_user\";\nALTER ROLE \"app_user\" WITH NOLOGIN;\nCREATE ROLE \"other\";\n");
        assert!(Scope::table("public").is_err());
        assert_eq!(
            Scope::table("public.orders").unwrap(),
            Scope::Table("public".into(), "orders".into())
        );
    }
}
