//! Deletion plans (`prune/<id>`): the first phase of two-phase pack deletion.
//! A plan condemns packs; a later prune deletes them once the plan is older than the grace
//! period and no snapshot needs them. While condemned, a pack stays readable but writers do
//! not deduplicate against it. See repo-format.md §Prune.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionPlan {
    pub version: u32,
    pub created: DateTime<Utc>,
    pub host: String,
    /// Packs condemned by this plan.
    pub packs: Vec<Id>,
}

/// A plan as stored: its object name and content.
#[derive(Debug, Clone)]
pub struct StoredPlan {
    pub name: String,
    pub plan: DeletionPlan,
}

pub fn write_plan(
    backend: &dyn Backend,
    key: &MasterKey,
    packs: Vec<Id>,
    now: DateTime<Utc>,
) -> Result<String> {
    let plan = DeletionPlan {
        version: 1,
        created: now,
        host: crate::util::hostname(),
        packs,
    };
    let sealed = blob::encode(
        key,
        BlobKind::DeletionPlan,
        &Id::default(),
        &serde_json::to_vec(&plan).expect("plan serializes"),
        3,
    );
    let name = format!("prune/{}", Id::hash_of(&sealed));
    // Prune frees space: on a full disk it spends the reserve for its plan (§1).
    crate::repo::reserve::put_spending(backend, &name, &sealed)?;
    Ok(name)
}

/// All deletion plans. A plan that cannot be read is an error: skipping it could let a writer
/// deduplicate against a pack that is about to be deleted.
pub fn read_plans(backend: &dyn Backend, key: &MasterKey) -> Result<Vec<StoredPlan>> {
    let mut out = Vec::new();
    for obj in backend.list("prune/")? {
        let sealed = match backend.get_bounded(&obj.name, crate::repo::limits::PLAN) {
            Ok(b) => b,
            Err(Error::NotFound { .. }) => continue, // finished meanwhile
            Err(e) => return Err(e),
        };
        let plain = blob::decode(key, BlobKind::DeletionPlan, &Id::default(), &sealed)
            .map_err(|e| Error::corrupt(format!("deletion plan {}", obj.name), e.to_string()))?;
        let plan = serde_json::from_slice(&plain)
            .map_err(|e| Error::corrupt(format!("deletion plan {}", obj.name), e.to_string()))?;
        out.push(StoredPlan {
            name: obj.name,
            plan,
        });
    }
    out.sort_by_key(|p| p.plan.created);
    Ok(out)
}

/// Every pack some plan condemns.
pub fn condemned_packs(backend: &dyn Backend, key: &MasterKey) -> Result<HashSet<Id>> {
    Ok(read_plans(backend, key)?
        .into_iter()
        .flat_map(|p| p.plan.packs)
        .collect())
}
