//! Control-plane records (usage plans, API keys, which key is in which plan) and the
//! [`CatalogStore`] trait every backend implements to keep them.
//!
//! Writes are optimistic: a caller reads the records at some version, validates the result of
//! its changes against the whole catalog (with [`CatalogRecords::to_catalog`], so every
//! uniqueness and reference rule lives once, in core), and commits the changes only if the
//! stored catalog is still at that version. The check and the write are one atomic step in
//! every backend (one Lua script on Redis, one lock in memory), so two instances can never
//! both create the same key value or put one key into two plans of the same API stage: the
//! second commit finds a newer version, re-reads and re-validates. Every applied commit bumps
//! the version and notifies subscribers, which is how all instances learn of a change.

use crate::StoreError;
use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use tollgate_core::apikey::ApiKey;
use tollgate_core::catalog::Catalog;
use tollgate_core::plan::UsagePlan;
use tollgate_core::CoreError;

/// A usage plan as stored: the core plan plus what only the management API needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The plan.
    pub plan: UsagePlan,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// An API key as stored: the core key (value hash only) plus metadata.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key, holding the SHA-256 of its value.
    pub key: ApiKey,
    /// The value itself, kept only when the operator opted in (`--keep-key-values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Unix second of creation.
    pub created_s: i64,
    /// Unix second of the last change.
    pub updated_s: i64,
}

// Never print a key value.
impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key", &self.key)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("created_s", &self.created_s)
            .field("updated_s", &self.updated_s)
            .finish()
    }
}

/// Every control-plane record at one version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogRecords {
    /// Bumped by every applied commit; 0 for a store that never had one.
    pub version: u64,
    /// Plans by id.
    pub plans: BTreeMap<String, PlanRecord>,
    /// Keys by id.
    pub keys: BTreeMap<String, KeyRecord>,
    /// `(plan id, key id)` pairs: the key is in the plan.
    pub members: BTreeSet<(String, String)>,
}

/// One change to the records. Changes are mechanical: deleting a plan or key does not remove
/// its memberships by itself, the caller lists those too, and validation refuses a result
/// with a dangling membership.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace a plan.
    PutPlan(PlanRecord),
    /// Delete a plan by id.
    DeletePlan(String),
    /// Create or replace a key.
    PutKey(KeyRecord),
    /// Delete a key by id.
    DeleteKey(String),
    /// Put key `key_id` into plan `plan_id`.
    AddMember {
        /// The plan.
        plan_id: String,
        /// The key.
        key_id: String,
    },
    /// Take key `key_id` out of plan `plan_id`.
    RemoveMember {
        /// The plan.
        plan_id: String,
        /// The key.
        key_id: String,
    },
}

/// What a commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Applied; the catalog is now at this version.
    Applied(u64),
    /// Not applied: the catalog had moved on to this version. Re-read, re-validate, retry.
    Stale(u64),
}

/// Versions of the catalog as commits are announced. The stream ends when the subscription
/// is lost (a Redis connection drop); the caller subscribes again.
pub type ChangeStream = Pin<Box<dyn Stream<Item = u64> + Send>>;

impl CatalogRecords {
    /// Applies `changes` in order, without validating (see [`CatalogRecords::to_catalog`]).
    pub fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::PutPlan(p) => {
                    self.plans.insert(p.plan.id.clone(), p.clone());
                }
                Change::DeletePlan(id) => {
                    self.plans.remove(id);
                }
                Change::PutKey(k) => {
                    self.keys.insert(k.key.id.clone(), k.clone());
                }
                Change::DeleteKey(id) => {
                    self.keys.remove(id);
                }
                Change::AddMember { plan_id, key_id } => {
                    self.members.insert((plan_id.clone(), key_id.clone()));
                }
                Change::RemoveMember { plan_id, key_id } => {
                    self.members.remove(&(plan_id.clone(), key_id.clone()));
                }
            }
        }
    }

    /// Builds and so validates the core catalog of these records: every field, unique ids
    /// and key values, known references, one plan per key and API stage.
    pub fn to_catalog(&self) -> Result<Catalog, CoreError> {
        let subscriptions: Vec<(String, String)> = self
            .members
            .iter()
            .map(|(p, k)| (k.clone(), p.clone()))
            .collect();
        Catalog::new(
            self.plans.values().map(|p| p.plan.clone()).collect(),
            self.keys.values().map(|k| k.key.clone()).collect(),
            &subscriptions,
        )
    }

    /// Ids of the keys in plan `plan_id`.
    pub fn keys_of_plan<'a>(&'a self, plan_id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .filter(move |(p, _)| p == plan_id)
            .map(|(_, k)| k.as_str())
    }

    /// Ids of the plans key `key_id` is in.
    pub fn plans_of_key<'a>(&'a self, key_id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .filter(move |(_, k)| k == key_id)
            .map(|(p, _)| p.as_str())
    }
}

/// Where control-plane records live. One async trait, one file per backend.
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Every record, read as one consistent snapshot.
    async fn load_catalog(&self) -> Result<CatalogRecords, StoreError>;

    /// The current version, a cheap read for polling.
    async fn catalog_version(&self) -> Result<u64, StoreError>;

    /// Applies `changes` atomically if the stored catalog is still at `expected_version`;
    /// an empty list is a no-op that still reports the version. An applied commit bumps the
    /// version by one and notifies every subscriber.
    async fn commit(&self, expected_version: u64, changes: &[Change])
        -> Result<Commit, StoreError>;

    /// Replaces every stored record with `records`, and the version with `records.version`,
    /// if the stored catalog is still at `expected_version`; notifies every subscriber when
    /// applied. For an instance that finds the store behind the records it enforces, which
    /// only happens when the store lost data (see `CatalogSync` in the server).
    async fn restore(
        &self,
        expected_version: u64,
        records: &CatalogRecords,
    ) -> Result<Commit, StoreError>;

    /// Announcements of new versions, from any instance.
    async fn subscribe(&self) -> Result<ChangeStream, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::apikey::KeyHash;

    fn key(id: &str) -> KeyRecord {
        KeyRecord {
            key: ApiKey {
                id: id.into(),
                name: id.into(),
                description: None,
                customer_id: None,
                enabled: true,
                value_hash: KeyHash::of(id),
                tags: Default::default(),
            },
            value: Some("secret-value-0123456789".into()),
            created_s: 1,
            updated_s: 2,
        }
    }

    /// Records round-trip through JSON, and Debug never shows a kept value.
    #[test]
    fn key_record_json_and_debug() {
        let k = key("k1");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<KeyRecord>(&json).unwrap(), k);
        assert!(!format!("{k:?}").contains("secret-value"));
    }

    /// A membership of an unknown key makes the records invalid.
    #[test]
    fn dangling_membership_is_refused() {
        let mut r = CatalogRecords::default();
        r.apply(&[
            Change::PutKey(key("k1")),
            Change::AddMember {
                plan_id: "nope".into(),
                key_id: "k1".into(),
            },
        ]);
        assert!(r.to_catalog().is_err());
        r.apply(&[Change::RemoveMember {
            plan_id: "nope".into(),
            key_id: "k1".into(),
        }]);
        assert!(r.to_catalog().is_ok());
    }
}
