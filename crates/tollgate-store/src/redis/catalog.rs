//! Control-plane records in Redis, all under the hash tag `{cat}` (see [`crate::keys`]).
//!
//! Reads are one script call (`catalog_load.lua`) so the version and the records are one
//! snapshot; commits are one script call (`catalog_commit.lua`) that checks the version,
//! writes, bumps the version and publishes it; a restore (`catalog_restore.lua`) puts a
//! whole catalog back the same way. Subscribers listen on a dedicated pub/sub
//! connection. Pub/sub is lossy across reconnects, so callers also poll the version.

use super::{RedisMode, RedisStore};
use crate::catalog::PlanRecord;
use crate::catalog::{CatalogRecords, CatalogStore, Change, ChangeStream, Commit, KeyRecord};
use crate::error::classify;
use crate::keys;
use crate::StoreError;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::Script;
use std::sync::LazyLock;

/// The snapshot read; see its header for the KEYS/ARGV contract.
static LOAD_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/catalog_load.lua")));

/// The versioned commit; see its header for the KEYS/ARGV contract.
static COMMIT_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/catalog_commit.lua")));

/// The whole-catalog restore; see its header for the KEYS/ARGV contract.
static RESTORE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/catalog_restore.lua")));

fn catalog_keys() -> [String; 4] {
    [
        keys::catalog_version_key(),
        keys::catalog_plans_key(),
        keys::catalog_keys_key(),
        keys::catalog_members_key(),
    ]
}

fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Protocol(format!("stored {what} `{id}` is unreadable: {e}"))
}

/// Builds the records from the load script's reply.
fn parse_snapshot(
    version: &str,
    plans: Vec<String>,
    key_records: Vec<String>,
    members: Vec<String>,
) -> Result<CatalogRecords, StoreError> {
    let mut out = CatalogRecords {
        version: version
            .parse()
            .map_err(|e| corrupt("catalog version", version, e))?,
        ..CatalogRecords::default()
    };
    for pair in plans.chunks_exact(2) {
        let p: PlanRecord =
            serde_json::from_str(&pair[1]).map_err(|e| corrupt("usage plan", &pair[0], e))?;
        out.plans.insert(pair[0].clone(), p);
    }
    for pair in key_records.chunks_exact(2) {
        let k: KeyRecord =
            serde_json::from_str(&pair[1]).map_err(|e| corrupt("API key", &pair[0], e))?;
        out.keys.insert(pair[0].clone(), k);
    }
    for field in members {
        let (p, k) = keys::split_member_field(&field)
            .ok_or_else(|| corrupt("membership", &field, "no `:`"))?;
        out.members.insert((p.to_string(), k.to_string()));
    }
    Ok(out)
}

/// What a commit or restore script's reply `{ applied (0|1), version }` came to.
fn commit_of((applied, version): (i64, u64)) -> Commit {
    if applied == 1 {
        Commit::Applied(version)
    } else {
        Commit::Stale(version)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Protocol(format!("cannot encode: {e}")))
}

#[async_trait]
impl CatalogStore for RedisStore {
    async fn load_catalog(&self) -> Result<CatalogRecords, StoreError> {
        let mut inv = LOAD_SCRIPT.prepare_invoke();
        for k in catalog_keys() {
            inv.key(k);
        }
        let (version, plans, key_records, members): (
            String,
            Vec<String>,
            Vec<String>,
            Vec<String>,
        ) = self.run(async move |c| inv.invoke_async(c).await).await?;
        parse_snapshot(&version, plans, key_records, members)
    }

    async fn catalog_version(&self) -> Result<u64, StoreError> {
        let key = keys::catalog_version_key();
        let v: Option<u64> = self
            .run(async move |c| redis::cmd("GET").arg(&key).query_async(c).await)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn commit(
        &self,
        expected_version: u64,
        changes: &[Change],
    ) -> Result<Commit, StoreError> {
        let mut inv = COMMIT_SCRIPT.prepare_invoke();
        for k in catalog_keys() {
            inv.key(k);
        }
        inv.arg(expected_version).arg(keys::catalog_channel());
        for c in changes {
            let (op, field, value) = match c {
                Change::PutPlan(p) => ("p+", p.plan.id.clone(), to_json(p)?),
                Change::DeletePlan(id) => ("p-", id.clone(), String::new()),
                Change::PutKey(k) => ("k+", k.key.id.clone(), to_json(k)?),
                Change::DeleteKey(id) => ("k-", id.clone(), String::new()),
                Change::AddMember { plan_id, key_id } => {
                    ("m+", keys::member_field(plan_id, key_id), "1".to_string())
                }
                Change::RemoveMember { plan_id, key_id } => {
                    ("m-", keys::member_field(plan_id, key_id), String::new())
                }
            };
            inv.arg(op).arg(field).arg(value);
        }
        let reply = self.run(async move |c| inv.invoke_async(c).await).await?;
        Ok(commit_of(reply))
    }

    async fn restore(
        &self,
        expected_version: u64,
        records: &CatalogRecords,
    ) -> Result<Commit, StoreError> {
        let mut inv = RESTORE_SCRIPT.prepare_invoke();
        for k in catalog_keys() {
            inv.key(k);
        }
        inv.arg(expected_version)
            .arg(records.version)
            .arg(keys::catalog_channel());
        for (id, plan) in &records.plans {
            inv.arg("p+").arg(id).arg(to_json(plan)?);
        }
        for (id, key) in &records.keys {
            inv.arg("k+").arg(id).arg(to_json(key)?);
        }
        for (plan_id, key_id) in &records.members {
            inv.arg("m+")
                .arg(keys::member_field(plan_id, key_id))
                .arg("1");
        }
        let reply = self.run(async move |c| inv.invoke_async(c).await).await?;
        Ok(commit_of(reply))
    }

    async fn subscribe(&self) -> Result<ChangeStream, StoreError> {
        // PUBLISH reaches subscribers on every node of a Cluster, so any seed node will do.
        // Through Sentinel the master moves; there, callers rely on polling the version.
        if self.mode == RedisMode::Sentinel {
            return Err(StoreError::Config(
                "catalog change notifications are not subscribed in sentinel mode; the version is polled instead".into(),
            ));
        }
        let mut last_error = StoreError::Config("no Redis URL given".into());
        for url in &self.urls {
            // With the CA and client certificate the pools use: a bare URL would not carry them.
            let client = match super::connection_info(url, self.certs.as_ref())
                .and_then(|info| redis::Client::open(info).map_err(super::config_error))
            {
                Ok(client) => client,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let attempt = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(keys::catalog_channel()).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(pubsub)) => {
                    return Ok(Box::pin(pubsub.into_on_message().map(|msg| {
                        // A payload that is not a version still means "something changed".
                        msg.get_payload::<u64>().unwrap_or(0)
                    })));
                }
                Ok(Err(e)) => last_error = classify(e, self.ca_file()),
                Err(_) => last_error = StoreError::Timeout(self.timeout.as_millis() as u64),
            }
        }
        Err(last_error)
    }
}
