//! Declarative bootstrap: the YAML file of plans and keys applied to the shared record store,
//! idempotently. `tollgate serve --config FILE` applies it at start; `tollgate apply -f FILE`
//! applies it to a running fleet's Redis, and every instance picks the change up.
//!
//! What the file names, it owns: each plan and key in it is created or brought to what the
//! file says (a key's value included), and each of its keys ends up in exactly the plans the
//! file lists for it. Records the file does not name are left alone, so keys created through
//! the management API survive a restart. Applying the same file twice changes nothing (and
//! does not bump the catalog version). A plan keeps the quota start (the "first period" of
//! its offset) it was created with.

use crate::catalog_sync::CatalogSync;
use crate::cli::{ApplyArgs, ServeSettings};
use crate::config::{self, ConfigFile};
use anyhow::Context;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tollgate_core::apikey::{ApiKey, KeyHash};
use tollgate_store::catalog::{CatalogRecords, Change, Commit, KeyRecord, PlanRecord};
use tollgate_store::CatalogStore;
use tracing::{info, warn};

/// What applying a file did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Plans created.
    pub plans_created: usize,
    /// Plans changed.
    pub plans_updated: usize,
    /// Keys created.
    pub keys_created: usize,
    /// Keys changed.
    pub keys_updated: usize,
    /// Memberships added or removed.
    pub memberships_changed: usize,
    /// The catalog version afterwards.
    pub version: u64,
}

impl fmt::Display for ApplySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "usage plans: {} created, {} updated; API keys: {} created, {} updated; {} plan memberships changed; catalog version {}",
            self.plans_created, self.plans_updated, self.keys_created, self.keys_updated, self.memberships_changed, self.version
        )
    }
}

/// The changes that bring `current` to what `file` says.
pub fn changes_for(
    current: &CatalogRecords,
    file: &ConfigFile,
    keep_values: bool,
    now_s: i64,
) -> (Vec<Change>, ApplySummary) {
    let mut changes = Vec::new();
    let mut summary = ApplySummary::default();
    for p in &file.usage_plans {
        let existing = current.plans.get(&p.id);
        let mut plan = p.clone();
        if plan.name.is_empty() {
            plan.name = plan.id.clone();
        }
        if plan.quota_start_s == 0 {
            plan.quota_start_s = existing
                .filter(|e| e.plan.quota.is_some() && e.plan.quota_start_s != 0)
                .map_or(now_s, |e| e.plan.quota_start_s);
        }
        let record = PlanRecord {
            plan,
            tags: existing.map(|e| e.tags.clone()).unwrap_or_default(),
        };
        match existing {
            Some(e) if *e == record => {}
            Some(_) => {
                summary.plans_updated += 1;
                changes.push(Change::PutPlan(record));
            }
            None => {
                summary.plans_created += 1;
                changes.push(Change::PutPlan(record));
            }
        }
    }
    for k in &file.api_keys {
        let id = k.id.clone().unwrap_or_else(|| k.name.clone());
        let existing = current.keys.get(&id);
        let key = ApiKey {
            id: id.clone(),
            name: k.name.clone(),
            description: k.description.clone(),
            customer_id: k.customer_id.clone(),
            enabled: k.enabled,
            value_hash: KeyHash::of(&k.value),
            tags: k.tags.clone(),
        };
        let value = keep_values.then(|| k.value.clone());
        match existing {
            Some(e) if e.key == key && e.value == value => {}
            Some(e) => {
                summary.keys_updated += 1;
                changes.push(Change::PutKey(KeyRecord {
                    key,
                    value,
                    created_s: e.created_s,
                    updated_s: now_s,
                }));
            }
            None => {
                summary.keys_created += 1;
                changes.push(Change::PutKey(KeyRecord {
                    key,
                    value,
                    created_s: now_s,
                    updated_s: now_s,
                }));
            }
        }
        let have: Vec<&str> = current.plans_of_key(&id).collect();
        for p in &k.usage_plan_ids {
            if !have.contains(&p.as_str()) {
                summary.memberships_changed += 1;
                changes.push(Change::AddMember {
                    plan_id: p.clone(),
                    key_id: id.clone(),
                });
            }
        }
        for p in have {
            if !k.usage_plan_ids.iter().any(|w| w == p) {
                summary.memberships_changed += 1;
                changes.push(Change::RemoveMember {
                    plan_id: p.to_string(),
                    key_id: id.clone(),
                });
            }
        }
    }
    (changes, summary)
}

/// Applies the file at `path` to `store`; with `dry_run`, only says what it would do.
pub async fn apply(
    store: &dyn CatalogStore,
    path: &Path,
    keep_values: bool,
    now_s: i64,
    dry_run: bool,
) -> anyhow::Result<ApplySummary> {
    let shown = path.display().to_string();
    let file = config::read_file(path)?;
    // The file must be valid on its own before it meets the stored records.
    config::build(&shown, file.clone(), now_s)?;
    for _ in 0..16 {
        let current = store.load_catalog().await?;
        let (changes, mut summary) = changes_for(&current, &file, keep_values, now_s);
        summary.version = current.version;
        if changes.is_empty() || dry_run {
            return Ok(summary);
        }
        let mut next = current.clone();
        next.apply(&changes);
        next.to_catalog()
            .with_context(|| format!("{shown} conflicts with the stored records"))?;
        match store.commit(current.version, &changes).await? {
            Commit::Applied(v) => {
                summary.version = v;
                return Ok(summary);
            }
            Commit::Stale(_) => continue,
        }
    }
    anyhow::bail!("the stored records kept changing while applying {shown}; try again")
}

/// At start: applies `config` (if any) and loads the records into `sync`. If the store is
/// unreachable the instance keeps the file's catalog and retries in the background.
pub async fn at_start(
    sync: Arc<CatalogSync>,
    config: Option<PathBuf>,
    keep_values: bool,
) -> anyhow::Result<()> {
    let attempt = {
        let sync = sync.clone();
        let config = config.clone();
        move || {
            let sync = sync.clone();
            let config = config.clone();
            async move {
                if let Some(path) = &config {
                    let s = apply(
                        &**sync.store(),
                        path,
                        keep_values,
                        crate::admin::now_s(),
                        false,
                    )
                    .await?;
                    info!(file = %path.display(), "{s}");
                }
                sync.reload().await?;
                anyhow::Ok(())
            }
        }
    };
    match attempt().await {
        Ok(()) => Ok(()),
        // A file that contradicts the stored records is an operator error: stop.
        Err(e) if e.downcast_ref::<tollgate_store::StoreError>().is_none() => Err(e),
        Err(e) => {
            warn!(error = %e, "record store not reachable; enforcing the config file until it is");
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match attempt().await {
                        Ok(()) => {
                            info!("records loaded from the store");
                            return;
                        }
                        Err(e) => warn!(error = %e, "still cannot load records"),
                    }
                }
            });
            Ok(())
        }
    }
}

/// `tollgate apply -f FILE`.
pub async fn apply_command(args: ApplyArgs) -> anyhow::Result<()> {
    if args
        .redis
        .redis_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        anyhow::bail!(
            "apply writes to the shared Redis: give --redis-url (or TOLLGATE_REDIS_URL); an instance on the embedded memory store applies --config at start"
        );
    }
    let mut s = ServeSettings::with_defaults();
    s.redis = args.redis.clone();
    s.redis_timeout_ms = args.redis_timeout_ms;
    let (_, store) = crate::app::build_stores(&s)?;
    let summary = apply(
        &*store,
        &args.file,
        args.keep_key_values,
        crate::admin::now_s(),
        args.dry_run,
    )
    .await?;
    if args.dry_run {
        println!("{}: would change {summary}", args.file.display());
    } else {
        println!("{}: applied; {summary}", args.file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        config::parse_file(
            "seed",
            include_str!("../../../examples/calculator/tollgate.yaml"),
        )
        .unwrap()
    }

    /// The seed creates two plans and two keys; a second application changes nothing.
    #[test]
    fn idempotent() {
        let mut records = CatalogRecords::default();
        let (changes, s) = changes_for(&records, &file(), false, 100);
        assert_eq!(
            (s.plans_created, s.keys_created, s.memberships_changed),
            (2, 2, 2)
        );
        records.apply(&changes);
        assert!(records.to_catalog().is_ok());
        assert!(records.keys.values().all(|k| k.value.is_none()));
        let (again, s) = changes_for(&records, &file(), false, 200);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(s, ApplySummary::default());
        // Keeping values is a change; the quota start stays the first one.
        let (kept, s) = changes_for(&records, &file(), true, 300);
        assert_eq!(s.keys_updated, 2);
        records.apply(&kept);
        assert!(records
            .keys
            .values()
            .all(|k| k.value.is_some() && k.created_s == 100));
        assert!(records.plans.values().all(|p| p.plan.quota_start_s == 100));
    }

    /// A key's plans become what the file lists; records the file does not name stay.
    #[test]
    fn file_owns_what_it_names() {
        let mut records = CatalogRecords::default();
        records.apply(&changes_for(&records, &file(), false, 1).0);
        records.apply(&[Change::AddMember {
            plan_id: "premium-usage-plan".into(),
            key_id: "testApikey".into(),
        }]);
        let mut other = records.keys["testApikey"].clone();
        other.key.id = "apiKey1".into();
        other.key.value_hash = KeyHash::of("another-value-0123456789");
        records.apply(&[Change::PutKey(other)]);
        let (changes, s) = changes_for(&records, &file(), false, 2);
        assert_eq!(s.memberships_changed, 1);
        assert!(
            matches!(&changes[..], [Change::RemoveMember { plan_id, .. }] if plan_id == "premium-usage-plan")
        );
        records.apply(&changes);
        assert!(records.keys.contains_key("apiKey1"));
    }
}
