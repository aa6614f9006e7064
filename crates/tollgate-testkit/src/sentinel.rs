//! A Redis Sentinel for tests: `redis-server <conf> --sentinel` on a configuration the test
//! writes (plain or TLS ports, the master to monitor, passwords), killed and waited for when
//! the [`RedisSentinel`] is dropped.
//!
//! Unlike [`RedisServer`](crate::RedisServer), the harness does not probe it: what "ready"
//! means (knows its master, answers over TLS) is the test's own question.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::HarnessError;

const REDIS_SERVER: &str = "redis-server";

/// A running sentinel; see the module documentation.
#[derive(Debug)]
pub struct RedisSentinel {
    child: Child,
}

impl RedisSentinel {
    /// Writes `config` to `dir/sentinel.conf` (a sentinel rewrites its file, so `dir` must be
    /// the test's own) and starts a sentinel on it.
    pub fn start(dir: &Path, config: &str) -> Result<RedisSentinel, HarnessError> {
        let conf = dir.join("sentinel.conf");
        std::fs::write(&conf, config).map_err(|source| HarnessError::Io {
            what: format!("writing {}", conf.display()),
            source,
        })?;
        let child = Command::new(REDIS_SERVER)
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::spawning(REDIS_SERVER, "redis-server", source))?;
        Ok(RedisSentinel { child })
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
