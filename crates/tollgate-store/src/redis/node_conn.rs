//! The connection the cluster client keeps to each Cluster node: a multiplexed connection
//! that writes the `ASKING` of an `ASK` redirect together with the command it is for.
//!
//! While a slot migrates, the old master answers `ASK <slot> <new master>` to a command whose
//! keys have all moved; the client must then send `ASKING` and the command to the new
//! master, with nothing between them on that connection: `ASKING` sets a flag that the next
//! command on the connection spends, whichever command that is. The redis crate sends
//! `ASKING`, waits for its reply, and only then sends the command. On a multiplexed
//! connection, other checks' commands go out in that gap and spend the flag, so the command
//! arrives without it and gets `MOVED` back to the old master, which answers `ASK` again.
//! Under load a check on a migrating slot bounced so until the client's retries ran out, and
//! every `MOVED` made the client reload its whole slot map.
//!
//! [`NodeConn`] holds `ASKING` back and writes it in front of the command, as one pipeline
//! that goes out in one piece. This relies on how the crate (1.x) follows `ASK`: it clones
//! the node's connection, sends `ASKING` on the clone, then the command on that same clone.
//! The flag lives in the clone, so concurrent checks never see each other's.
//! `moved_keys_are_followed_by_ask` in `tests/redis_cluster.rs` fails if that changes.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::Connect;
use redis::{AsyncConnectionConfig, Cmd, IntoConnectionInfo, RedisFuture, Value};

/// A multiplexed connection to one Cluster node; see the module documentation.
#[derive(Clone)]
pub(super) struct NodeConn {
    inner: MultiplexedConnection,
    /// `ASKING` was asked for on this handle and goes out with its next command.
    asking: bool,
}

/// Whether `cmd` is `ASKING` (the crate sends it alone, with no argument).
fn is_asking(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    matches!(
        (args.next(), args.next()),
        (Some(redis::Arg::Simple(name)), None) if name.eq_ignore_ascii_case(b"ASKING")
    )
}

impl ConnectionLike for NodeConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if is_asking(cmd) {
            self.asking = true;
            return Box::pin(async { Ok(Value::Okay) });
        }
        if !std::mem::take(&mut self.asking) {
            return self.inner.req_packed_command(cmd);
        }
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.cmd("ASKING").add_command(cmd.clone());
            let reply = self.inner.req_packed_commands(&pipe, 1, 1).await?;
            reply.into_iter().next().ok_or_else(|| {
                redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "no reply to a command sent after ASKING",
                ))
            })
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if !std::mem::take(&mut self.asking) {
            return self.inner.req_packed_commands(pipeline, offset, count);
        }
        Box::pin(async move {
            if pipeline.is_transaction() {
                // ASKING would have to go in front of MULTI, which the pipeline writes itself:
                // sent alone first, as the crate does. The store sends no transactions.
                self.inner.req_packed_command(&redis::cmd("ASKING")).await?;
                return self
                    .inner
                    .req_packed_commands(pipeline, offset, count)
                    .await;
            }
            let mut pipe = redis::pipe();
            pipe.cmd("ASKING");
            for cmd in pipeline.cmd_iter() {
                pipe.add_command(cmd.clone());
            }
            self.inner
                .req_packed_commands(&pipe, offset + 1, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl Connect for NodeConn {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            let inner = MultiplexedConnection::connect_with_config(info, config).await?;
            Ok(NodeConn {
                inner,
                asking: false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `ASKING` itself is held back, in any case.
    #[test]
    fn recognises_asking() {
        assert!(is_asking(&redis::cmd("ASKING")));
        assert!(is_asking(&redis::cmd("asking")));
        assert!(!is_asking(redis::cmd("ASKING").arg("x")));
        assert!(!is_asking(&redis::cmd("PING")));
        assert!(!is_asking(redis::cmd("GET").arg("ASKING")));
    }
}
