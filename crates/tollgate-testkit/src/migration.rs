//! [`SlotMigration`]: one hash slot of a [`RedisCluster`] moved to another master by hand,
//! step by step, the way `redis-cli --cluster reshard` moves each slot, so a test can stop
//! in the middle and see what clients get there.
//!
//! The steps, as Redis Cluster defines them: the target marks the slot `IMPORTING` from the
//! source and the source marks it `MIGRATING` to the target; keys move with `MIGRATE`;
//! finally every master is told the target owns the slot (`CLUSTER SETSLOT <slot> NODE`).
//! Between the first and the last step, a command over several keys of the slot gets
//! `TRYAGAIN` while some of its keys have moved and others not, and `ASK` (to the target)
//! once all of them have moved.

use crate::cluster::RedisCluster;
use crate::error::HarnessError;
use crate::resp::Reply;

/// `MIGRATE`'s own timeout, in milliseconds.
const MIGRATE_TIMEOUT_MS: &str = "5000";
/// Keys asked for per `CLUSTER GETKEYSINSLOT` while finishing.
const KEYS_PER_BATCH: &str = "100";

impl RedisCluster {
    /// The hash slot of `key`, as the cluster computes it.
    pub fn key_slot(&self, key: &str) -> Result<u16, HarnessError> {
        match self.admin(0, &["CLUSTER", "KEYSLOT", key])? {
            Reply::Integer(n) => u16::try_from(n).map_err(|_| unexpected(0, "KEYSLOT", n)),
            other => Err(unexpected(0, "KEYSLOT", other)),
        }
    }

    /// The cluster id of node `node`.
    pub fn node_id(&self, node: usize) -> Result<String, HarnessError> {
        self.admin(node, &["CLUSTER", "MYID"])?
            .text()
            .ok_or_else(|| unexpected(node, "MYID", "no text"))
    }

    /// The index of the node that owns `slot`, by each node's own account (`myself` in its
    /// `CLUSTER NODES`).
    pub fn slot_owner(&self, slot: u16) -> Result<usize, HarnessError> {
        for node in 0..self.nodes().len() {
            let nodes = self
                .admin(node, &["CLUSTER", "NODES"])?
                .text()
                .ok_or_else(|| unexpected(node, "NODES", "no text"))?;
            let owns = nodes
                .lines()
                .find(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("myself")))
                .is_some_and(|l| l.split(' ').skip(8).any(|r| range_holds(r, slot)));
            if owns {
                return Ok(node);
            }
        }
        Err(HarnessError::Command {
            node: "any".into(),
            command: "CLUSTER NODES".into(),
            reply: format!("no node owns slot {slot}"),
        })
    }

    /// Starts moving `slot` from its owner to node `to`: marks it `IMPORTING` on `to` and
    /// `MIGRATING` on the owner. No key moves yet.
    pub fn begin_slot_migration(
        &self,
        slot: u16,
        to: usize,
    ) -> Result<SlotMigration<'_>, HarnessError> {
        let from = self.slot_owner(slot)?;
        if from == to {
            return Err(HarnessError::Command {
                node: format!("127.0.0.1:{}", self.nodes()[to].port()),
                command: format!("migrate slot {slot}"),
                reply: "the node already owns the slot".into(),
            });
        }
        let (source_id, target_id) = (self.node_id(from)?, self.node_id(to)?);
        let slot_arg = slot.to_string();
        self.admin(
            to,
            &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &source_id],
        )?;
        self.admin(
            from,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &target_id],
        )?;
        Ok(SlotMigration {
            cluster: self,
            slot,
            source: from,
            target: to,
            target_id,
        })
    }
}

/// A slot on its way from one master to another; see the module documentation.
#[derive(Debug)]
#[must_use = "the slot stays half-migrated until finish() is called"]
pub struct SlotMigration<'a> {
    cluster: &'a RedisCluster,
    slot: u16,
    source: usize,
    target: usize,
    target_id: String,
}

impl SlotMigration<'_> {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The index of the node the slot leaves.
    pub fn source(&self) -> usize {
        self.source
    }

    /// The index of the node the slot goes to.
    pub fn target(&self) -> usize {
        self.target
    }

    /// Moves `keys` (all in the slot, all on the source) to the target with `MIGRATE`.
    pub fn move_keys(&self, keys: &[&str]) -> Result<(), HarnessError> {
        if keys.is_empty() {
            return Ok(());
        }
        let port = self.cluster.nodes()[self.target].port().to_string();
        let mut args = vec![
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "0",
            MIGRATE_TIMEOUT_MS,
            "KEYS",
        ];
        args.extend_from_slice(keys);
        self.cluster.admin(self.source, &args)?;
        Ok(())
    }

    /// Moves every key still on the source, then tells every master (the target first, as
    /// `redis-cli` does) that the target owns the slot.
    pub fn finish(self) -> Result<(), HarnessError> {
        let slot = self.slot.to_string();
        loop {
            let keys = match self.cluster.admin(
                self.source,
                &["CLUSTER", "GETKEYSINSLOT", &slot, KEYS_PER_BATCH],
            )? {
                Reply::Array(Some(items)) => items
                    .iter()
                    .filter_map(Reply::text)
                    .collect::<Vec<String>>(),
                other => return Err(unexpected(self.source, "GETKEYSINSLOT", other)),
            };
            if keys.is_empty() {
                break;
            }
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.move_keys(&keys)?;
        }
        let others = (0..self.cluster.nodes().len()).filter(|&n| n != self.target);
        for node in std::iter::once(self.target).chain(others) {
            self.cluster.admin(
                node,
                &["CLUSTER", "SETSLOT", &slot, "NODE", &self.target_id],
            )?;
        }
        Ok(())
    }
}

/// Whether a slot field of `CLUSTER NODES` (`5461`, `0-5460`, or `[93->-id]` for a slot in
/// migration) covers `slot` as owned.
fn range_holds(field: &str, slot: u16) -> bool {
    if field.starts_with('[') {
        return false;
    }
    let (lo, hi) = field.split_once('-').unwrap_or((field, field));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&slot),
        _ => false,
    }
}

fn unexpected(node: usize, command: &str, reply: impl std::fmt::Debug) -> HarnessError {
    HarnessError::Command {
        node: format!("node {node}"),
        command: format!("CLUSTER {command}"),
        reply: format!("unexpected reply {reply:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slot fields of `CLUSTER NODES` are read as Redis writes them.
    #[test]
    fn reads_slot_fields() {
        assert!(range_holds("0-5460", 0));
        assert!(range_holds("0-5460", 5460));
        assert!(!range_holds("0-5460", 5461));
        assert!(range_holds("5461", 5461));
        assert!(!range_holds("[93->-abc]", 93));
        assert!(!range_holds("connected", 1));
    }

    /// A slot moved by hand ends on the target with its keys, and every node agrees.
    #[test]
    fn moves_a_slot_with_its_keys() {
        let cluster = RedisCluster::start(3).unwrap();
        let key = "{moving}:a";
        let slot = cluster.key_slot(key).unwrap();
        let from = cluster.slot_owner(slot).unwrap();
        for k in [key, "{moving}:b"] {
            cluster.admin(from, &["SET", k, "1"]).unwrap();
        }
        let to = (from + 1) % 3;
        let migration = cluster.begin_slot_migration(slot, to).unwrap();
        migration.move_keys(&[key]).unwrap();
        assert!(matches!(
            cluster.admin(from, &["MGET", key, "{moving}:b"]),
            Err(HarnessError::Command { reply, .. }) if reply.starts_with("TRYAGAIN")
        ));
        migration.finish().unwrap();
        assert_eq!(cluster.slot_owner(slot).unwrap(), to);
        assert_eq!(
            cluster.admin(to, &["EXISTS", key, "{moving}:b"]).unwrap(),
            Reply::Integer(2)
        );
        for node in 0..3 {
            assert_eq!(
                cluster
                    .admin(node, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
                    .unwrap(),
                Reply::Integer(if node == to { 2 } else { 0 })
            );
        }
    }
}
