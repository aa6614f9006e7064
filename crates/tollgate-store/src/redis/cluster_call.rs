//! A Cluster connection as one store call uses it: a command that Redis Cluster refuses with
//! `TRYAGAIN` is sent again, after a short pause that doubles, until the call's deadline.
//! So is one refused with `ASK` or `MOVED`: the client follows those itself, and gives them
//! back only when its tries ran out on `TRYAGAIN` just before the slot moved on.
//!
//! Why: while a slot migrates between masters, a command over several keys of it gets
//! `TRYAGAIN` as long as some of its keys have moved and others not (and from the new master
//! while any is missing there, which a check whose throttle key has expired meets too). It
//! runs once the migration completes. The cluster client retries it 16 times itself, with
//! the short pauses the store gives it (`CLUSTER_RETRY_MAX_WAIT_MS`), a few hundred ms in all;
//! a migration may take longer, and a check may have longer to wait. All three refusals mean
//! the command did not run, so sending it again is safe for any command.

use super::cluster_pool::ClusterConnection;
use redis::aio::ConnectionLike;
use redis::{Cmd, RedisError, RedisFuture, RedisResult, Value};
use std::time::Duration;
use tokio::time::Instant;

/// First and longest pause between two tries.
const PAUSES: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(32));

/// A Cluster connection and the deadline of the call using it.
#[derive(Clone)]
pub(super) struct ClusterCall {
    conn: ClusterConnection,
    /// Until when `TRYAGAIN` is retried; `None` (a connection at rest in its slot) never.
    deadline: Option<Instant>,
}

impl ClusterCall {
    /// `conn`, with no deadline yet.
    pub(super) fn new(conn: ClusterConnection) -> Self {
        ClusterCall {
            conn,
            deadline: None,
        }
    }

    /// Sets the deadline of the call about to use this handle.
    pub(super) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }
}

/// Whether Redis Cluster refused `e`'s command, unrun, because its slot is moving: its keys
/// are split by a migration (`TRYAGAIN`), or are elsewhere (`ASK`, `MOVED`).
fn is_slot_moving(e: &RedisError) -> bool {
    use redis::ServerErrorKind::{Ask, Moved, TryAgain};
    matches!(e.kind(), redis::ErrorKind::Server(TryAgain | Ask | Moved))
}

/// Sends `cmd` again after the refusal `last`, pausing 1, 2, 4, ... ms (at most 32) before
/// each try, while `deadline` leaves room for the pause; then gives the last refusal.
async fn retry(
    conn: &mut ClusterConnection,
    cmd: &Cmd,
    mut last: RedisError,
    deadline: Instant,
) -> RedisResult<Value> {
    let (mut pause, longest) = PAUSES;
    while Instant::now() + pause < deadline {
        tokio::time::sleep(pause).await;
        match conn.req_packed_command(cmd).await {
            Err(e) if is_slot_moving(&e) => last = e,
            other => return other,
        }
        pause = (pause * 2).min(longest);
    }
    Err(last)
}

impl ConnectionLike for ClusterCall {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Some(deadline) = self.deadline else {
            return self.conn.req_packed_command(cmd);
        };
        Box::pin(async move {
            match self.conn.req_packed_command(cmd).await {
                Err(e) if is_slot_moving(&e) => retry(&mut self.conn, cmd, e, deadline).await,
                other => other,
            }
        })
    }

    /// Pipelines are sent as they are: the store sends none on Cluster.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
