//! Counting Redis round trips with `INFO commandstats`, during a load run.
//!
//! The counting itself (which commands a client sent, leaving out those `check.lua` calls
//! and the `INFO` calls of this counter) is `tollgate_testkit::commandstats`, shared with the
//! server's round-trip tests; this is the connection that takes the snapshots.

use anyhow::Context;
use tollgate_store::redis::CHECK_LUA;
pub use tollgate_testkit::commandstats::CommandCalls;
use tollgate_testkit::commandstats::{client_calls, parse};

/// Client round trips per command between two snapshots (tollgate sends no command that
/// `check.lua` also calls; change this when that changes).
pub fn round_trips(before: &CommandCalls, after: &CommandCalls) -> CommandCalls {
    client_calls(before, after, &[CHECK_LUA])
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
        Ok(parse(&info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_testkit::commandstats::script_commands;

    /// The check script's own commands are found in its source, so they are not counted.
    #[test]
    fn check_script_commands() {
        let c = script_commands(CHECK_LUA);
        for name in ["time", "get", "hmget", "set", "hset", "expireat", "hincrby"] {
            assert!(c.contains(name), "{name} missing from {c:?}");
        }
        assert!(!c.contains("evalsha"));
    }

    /// A script call counts; the commands it ran inside Redis do not.
    #[test]
    fn script_internals_are_not_round_trips() {
        let before = parse("cmdstat_evalsha:calls=1,usec=1\r\ncmdstat_hmget:calls=1,usec=1\r\n");
        let after = parse("cmdstat_evalsha:calls=3,usec=1\r\ncmdstat_hmget:calls=5,usec=1\r\n");
        assert_eq!(
            round_trips(&before, &after).into_iter().collect::<Vec<_>>(),
            vec![("evalsha".to_string(), 2)]
        );
    }
}
