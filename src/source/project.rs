//! A whole Supabase project in ONE snapshot: its database (under `db/<database>/`) and its
//! storage (under `storage/<bucket>/`), so a restore brings back the rows of `storage.objects`
//! and the files they describe from the same night.

use super::postgres::DatabaseSource;
use super::storage::StorageSource;
use super::{EntrySink, ProjectSummary, Source, SourceSummary};
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

    /// The database's and the storage's summaries side by side.
    fn summary(&self) -> SourceSummary {
        SourceSummary::Project(ProjectSummary {
            database: self.db.as_ref().map(|d| d.db_summary().clone()),
            storage: self.storage.as_ref().map(|s| s.storage_summary().clone()),
        })
    }
}
