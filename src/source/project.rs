//! A whole Supabase project in ONE snapshot: its database (under `db/<database>/`) and its
//! storage (under `storage/<bucket>/`), so a restore brings back the rows of `storage.objects`
//! and the files they describe from the same night.

use serde_json::{Value, json};

use super::postgres::DatabaseSource;
use super::storage::StorageSource;
use super::{EntrySink, Source};
use crate::error::{Error, Result};
use crate::snapshot::SourceKind;

pub struct ProjectSource {
    db: Option<DatabaseSource>,
    storage: Option<StorageSource>,
}

impl ProjectSource {
    /// A project source; at least one part must be given.
    pub fn new(db: Option<DatabaseSource>, storage: Option<StorageSource>) -> ProjectSource {
        ProjectSource { db, storage }
    }

    fn parts(&mut self) -> Vec<&mut dyn Source> {
        let mut v: Vec<&mut dyn Source> = Vec::new();
        if let Some(d) = self.db.as_mut() {
            v.push(d);
        }
        if let Some(s) = self.storage.as_mut() {
            v.push(s);
        }
        v
    }
}

impl Source for ProjectSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Project
    }

    fn paths(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(d) = &self.db {
            p.extend(d.paths());
        }
        if let Some(s) = &self.storage {
            p.extend(s.paths());
        }
        p
    }

    fn description(&self) -> String {
        let mut d = Vec::new();
        if let Some(db) = &self.db {
            d.push(db.description());
        }
        if let Some(s) = &self.storage {
            d.push(s.description());
        }
        format!("project: {}", d.join("; "))
    }

    /// The database first (its dump is one consistent point in time), then the storage.
    fn run(&mut self, sink: &mut dyn EntrySink) -> Result<()> {
        let parts = self.parts();
        if parts.is_empty() {
            return Err(Error::Invalid(
                "a project backup needs a database, a storage API, or both".into(),
            ));
        }
        for p in parts {
            p.run(sink)?;
        }
        Ok(())
    }

    /// `{"database": …, "storage": …}` (each `null` when absent).
    fn summary(&self) -> Value {
        json!({
            "database": self.db.as_ref().map(Source::summary).unwrap_or(Value::Null),
            "storage": self.storage.as_ref().map(Source::summary).unwrap_or(Value::Null),
        })
    }
}
