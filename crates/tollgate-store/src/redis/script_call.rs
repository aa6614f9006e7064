//! One call of a Lua script by its SHA1, written straight into one command buffer.
//!
//! Why not `redis::ScriptInvocation` on the hot path: it keeps every key and argument in a
//! `Vec` of its own and copies them all into a fresh command on each call; a check has some
//! twenty of them, and callgrind counted that copying among the larger costs of a check. A
//! [`ScriptCall`] writes each value once, in the order Redis reads them.
//!
//! A server that does not know the script (restart, failover, `SCRIPT FLUSH`) answers
//! `NOSCRIPT`; the call is then sent again as `EVAL` with the source, which runs it and
//! caches it on that server. `EVAL` carries the same keys, so on Cluster it is routed to the
//! same node as the `EVALSHA` was (a `SCRIPT LOAD` has no key to route by).

use redis::{Cmd, FromRedisValue, RedisResult, RedisWrite, ServerErrorKind, ToRedisArgs};
use std::io::Write;
use std::sync::LazyLock;

/// A Lua script and its SHA1, as Redis names it.
pub struct LuaScript {
    source: String,
    sha1: String,
}

impl LuaScript {
    /// The script of `source`.
    pub fn new(source: impl Into<String>) -> Self {
        let source = source.into();
        let sha1 = redis::Script::new(&source).get_hash().to_string();
        LuaScript { source, sha1 }
    }

    /// The script's SHA1 in hex.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// The script's source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A call of this script over `num_keys` keys, sized for `args` keys and arguments of
    /// `bytes` bytes in all, so building it does not grow the command's buffers. Add the
    /// keys first (Redis reads KEYS before ARGV), with [`ScriptCall::arg`] or
    /// [`ScriptCall::arg_joined`].
    pub fn call_sized(&'static self, num_keys: usize, args: usize, bytes: usize) -> ScriptCall {
        let mut cmd = Cmd::with_capacity(3 + args, "EVALSHA".len() + self.sha1.len() + 4 + bytes);
        cmd.arg("EVALSHA").arg(self.sha1.as_bytes()).arg(num_keys);
        ScriptCall { script: self, cmd }
    }
}

/// A script call being built, or ready to send.
pub struct ScriptCall {
    script: &'static LuaScript,
    cmd: Cmd,
}

impl ScriptCall {
    /// Appends an argument (ARGV).
    pub fn arg<T: ToRedisArgs>(&mut self, value: T) -> &mut Self {
        self.cmd.arg(value);
        self
    }

    /// Appends one key or argument made of `pieces` joined, copied straight into the
    /// command rather than built as a string first.
    pub fn arg_joined(&mut self, pieces: &[&str]) -> &mut Self {
        let mut out = self.cmd.writer_for_next_arg();
        for piece in pieces {
            // The writer appends to the command's Vec, which cannot fail.
            let _ = out.write_all(piece.as_bytes());
        }
        drop(out);
        self
    }

    /// The `EVALSHA` command as it will be sent.
    pub fn command(&self) -> &Cmd {
        &self.cmd
    }

    /// Sends the call, falling back to `EVAL` once if the server does not know the script.
    pub async fn query<T: FromRedisValue>(
        &self,
        con: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<T> {
        match self.cmd.query_async(con).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.eval_with_source().query_async(con).await
            }
            other => other,
        }
    }

    /// The same call as `EVAL` with the source in place of the SHA1.
    fn eval_with_source(&self) -> Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(self.script.source.as_bytes());
        for a in self.cmd.args_iter().skip(2) {
            if let redis::Arg::Simple(bytes) = a {
                eval.arg(bytes);
            }
        }
        eval
    }
}

/// Reads a reply of integers the scripts send packed in one string: each a 64-bit
/// little-endian signed integer (Lua `struct.pack('<i8', n)`). `None` unless the length is
/// a whole number of them.
///
/// Why packed: the redis crate's reply parser spends about a microsecond on each element of
/// an array reply, and a check's reply has 2 + 6 per limit of them, so the script sends one
/// string; and in Redis's Lua each number written as decimal text is a sprintf, which cost
/// Redis more than the rest of the reply, where packing them is one call per limit.
pub fn unpack_integers(reply: &[u8]) -> Option<Vec<i64>> {
    let (words, rest) = reply.as_chunks::<8>();
    rest.is_empty()
        .then(|| words.iter().map(|w| i64::from_le_bytes(*w)).collect())
}

/// Builds a static [`LuaScript`] lazily.
pub type StaticScript = LazyLock<LuaScript>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_integers() {
        let mut reply = Vec::new();
        for n in [1i64, 1_764_000_000_000_000, -3, 0] {
            reply.extend_from_slice(&n.to_le_bytes());
        }
        assert_eq!(
            unpack_integers(&reply),
            Some(vec![1, 1_764_000_000_000_000, -3, 0])
        );
        assert_eq!(unpack_integers(b""), Some(vec![]));
        assert_eq!(unpack_integers(&reply[..7]), None);
        assert_eq!(unpack_integers(b"1 1764000000000000"), None);
    }

    #[test]
    fn eval_fallback_keeps_keys_and_arguments() {
        static S: StaticScript = LazyLock::new(|| LuaScript::new("return ARGV[1]"));
        let mut call = S.call_sized(2, 4, 16);
        call.arg("k1").arg("k2").arg(7).arg("t");
        let sha: Vec<Vec<u8>> = arg_bytes(call.command());
        assert_eq!(sha[0], b"EVALSHA");
        assert_eq!(sha[1], S.sha1().as_bytes());
        let eval = arg_bytes(&call.eval_with_source());
        assert_eq!(eval[0], b"EVAL");
        assert_eq!(eval[1], b"return ARGV[1]");
        assert_eq!(&eval[2..], &sha[2..]);
        assert_eq!(
            &eval[2..],
            &[
                b"2".to_vec(),
                b"k1".to_vec(),
                b"k2".to_vec(),
                b"7".to_vec(),
                b"t".to_vec()
            ]
        );
    }

    fn arg_bytes(cmd: &Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect()
    }
}
