//! Counting the round trips clients made to a Redis server, from `INFO commandstats`.
//!
//! Redis counts every command it runs, including those a Lua script calls, so the sum of
//! `cmdstat_*` calls is not the number of round trips. A command a client sends is counted
//! once per call; [`client_calls`] leaves out the commands the given scripts call (`GET`,
//! `HMGET`, `SET`, ... as read from their source) and the `INFO` calls that take the
//! snapshots. What remains (`EVALSHA`, `EVAL`, `SCRIPT LOAD`, `PING`, `CLIENT SETINFO` on
//! connect, ...) is what the clients sent. A client sending one of a script's own commands
//! directly would be missed, which is why callers name the scripts they run.
//!
//! Both the store's round-trip tests and the load generator's `--redis-stats` count this way.

use std::collections::{BTreeMap, BTreeSet};

/// Calls per command, as `INFO commandstats` names them (`evalsha`, `config|resetstat`).
pub type CommandCalls = BTreeMap<String, u64>;

/// Parses the text of `INFO commandstats`; lines that are not a command's counts are skipped.
pub fn parse(info: &str) -> CommandCalls {
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

/// Calls per command that clients sent between two snapshots: the commands `scripts` call
/// and `INFO` are left out, and so is every command with no new calls.
pub fn client_calls(before: &CommandCalls, after: &CommandCalls, scripts: &[&str]) -> CommandCalls {
    let inner: BTreeSet<String> = scripts.iter().flat_map(|s| script_commands(s)).collect();
    after
        .iter()
        .filter(|(name, _)| !inner.contains(name.as_str()) && name.as_str() != "info")
        .map(|(name, &n)| {
            (
                name.clone(),
                n.saturating_sub(before.get(name).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "local t = redis.call('TIME')\nlocal v = redis.call(\"get\", KEYS[1])\n\
                          redis.pcall( 'HSET', KEYS[2], 'n', 1)\n";

    /// Both quote styles, pcall, and a space after the parenthesis are read; case is folded.
    #[test]
    fn commands_are_read_from_a_script() {
        let c = script_commands(SCRIPT);
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            vec!["get".to_string(), "hset".into(), "time".into()]
        );
    }

    /// Deltas keep client commands and drop script-internal ones and INFO.
    #[test]
    fn deltas_count_only_what_clients_sent() {
        let before = parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=5,usec_per_call=0.5,rejected_calls=0,failed_calls=0\r\ncmdstat_get:calls=10,usec=1\r\n",
        );
        let after = parse(
            "cmdstat_evalsha:calls=25,usec=9\r\ncmdstat_get:calls=40,usec=1\r\ncmdstat_ping:calls=15,usec=1\r\ncmdstat_info:calls=3,usec=1\r\ncmdstat_config|resetstat:calls=1,usec=1\r\n",
        );
        let d = client_calls(&before, &after, &[SCRIPT]);
        assert_eq!(
            d.into_iter().collect::<Vec<_>>(),
            vec![
                ("config|resetstat".to_string(), 1),
                ("evalsha".to_string(), 15),
                ("ping".to_string(), 15)
            ]
        );
    }

    /// A malformed line is skipped rather than misread.
    #[test]
    fn malformed_lines_are_skipped() {
        let c = parse(
            "cmdstat_get:usec=1\r\ncmdstat_set:calls=x\r\ncmdstat_del\r\ncmdstat_ping:calls=2\r\n",
        );
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            vec![("ping".to_string(), 2)]
        );
    }
}
