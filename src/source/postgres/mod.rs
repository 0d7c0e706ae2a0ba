//! A Supabase (or plain Postgres) database as a backup source: pg_dump/pg_dumpall streamed from
//! child processes into the repository, split per table, with an inventory. See docs/database.md.

pub mod cluster;
pub mod conn;
pub mod data_order;
pub mod dump;
pub mod inventory;
pub mod pgbin;
pub mod sanitize;
pub mod session;
pub mod split;

pub use dump::{DatabaseSource, DbOptions, DbSummary};
