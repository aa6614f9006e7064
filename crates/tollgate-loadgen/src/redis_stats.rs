//! Counting Redis round trips with `INFO commandstats`.
//!
//! Redis counts every command it runs, including those a Lua script calls, so the sum of
//! `cmdstat_*` calls is not the number of round trips. A command that a client sends is
//! counted once per call; the commands `check.lua` calls (`GET`, `HMGET`, `SET`, ... as read
//! from its source) are left out, as are the `INFO` calls of this counter. What remains —
//! `EVALSHA`, `EVAL`, `SCRIPT LOAD`, `PING`, `CLIENT SETINFO` on connect, ... — is what the
//! clients sent. (A client sending one of the script's own commands directly would be missed;
//! tollgate sends none today. Change [`round_trips`] when that changes.)

use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_store::redis::CHECK_LUA;

/// Calls per command, as `INFO commandstats` names them (`evalsha`, `config|resetstat`).
pub type CommandCalls = BTreeMap<String, u64>;

/// Parses the text of `INFO commandstats`.
pub fn parse_commandstats(info: &str) -> CommandCalls {
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// The commands a Lua source calls through `redis.call` / `redis.pcall`, lower-cased.
pub fn script_commands(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for marker in ["redis.call(", "redis.pcall("] {
        for part in source.split(marker).skip(1) {
            let part = part.trim_start();
            if let Some(q) = part.chars().next().filter(|c| *c == '\'' || *c == '"') {
                if let Some(name) = part[1..].split(q).next() {
                    out.insert(name.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// Client round trips per command between two snapshots.
pub fn round_trips(before: &CommandCalls, after: &CommandCalls) -> CommandCalls {
    let inner = script_commands(CHECK_LUA);
    after
        .iter()
        .filter(|(name, _)| !inner.contains(name.as_str()) && name.as_str() != "info")
        .map(|(name, &n)| {
            (
                name.clone(),
                n.saturating_sub(*before.get(name).unwrap_or(&0)),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A connection that snapshots a Redis server's command counts.
pub struct RedisStats {
    conn: redis::aio::MultiplexedConnection,
}

impl RedisStats {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {url}"))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("cannot connect to Redis at {url} for INFO"))?;
        Ok(RedisStats { conn })
    }

    /// Calls per command so far.
    pub async fn snapshot(&mut self) -> anyhow::Result<CommandCalls> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.conn)
            .await
            .context("INFO commandstats")?;
        Ok(parse_commandstats(&info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's own commands are found in its source.
    #[test]
    fn check_script_commands() {
        let c = script_commands(CHECK_LUA);
        for name in ["time", "get", "hmget", "set", "hset", "expireat", "hincrby"] {
            assert!(c.contains(name), "{name} missing from {c:?}");
        }
        assert!(!c.contains("evalsha"));
    }

    /// Deltas keep client commands and drop script-internal ones and INFO.
    #[test]
    fn deltas() {
        let before = parse_commandstats(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=5,usec_per_call=0.5,rejected_calls=0,failed_calls=0\r\ncmdstat_get:calls=10,usec=1\r\n",
        );
        let after = parse_commandstats(
            "cmdstat_evalsha:calls=25,usec=9\r\ncmdstat_get:calls=40,usec=1\r\ncmdstat_ping:calls=15,usec=1\r\ncmdstat_info:calls=3,usec=1\r\ncmdstat_config|resetstat:calls=1,usec=1\r\n",
        );
        let d = round_trips(&before, &after);
        assert_eq!(
            d.into_iter().collect::<Vec<_>>(),
            vec![
                ("config|resetstat".to_string(), 1),
                ("evalsha".to_string(), 15),
                ("ping".to_string(), 15)
            ]
        );
    }
}
