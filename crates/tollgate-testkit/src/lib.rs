//! Test harness for tollgate: starts real redis-server processes (standalone and Cluster) on
//! free ports and removes them afterwards, and counts the round trips clients made to them.
//!
//! ```no_run
//! use tollgate_testkit::{RedisCluster, RedisServer};
//!
//! let server = RedisServer::start()?;          // redis-server on a free port, own temp dir
//! let client_url = server.url();               // "redis://127.0.0.1:<port>/"
//!
//! let cluster = RedisCluster::start(3)?;       // 3 masters, all 16384 slots covered
//! let seed_urls = cluster.urls();
//! # drop((client_url, seed_urls));
//! # Ok::<(), tollgate_testkit::HarnessError>(())
//! ```
//!
//! Module map:
//! - [`server`]: [`RedisServer`], one `redis-server` child process: start (plain, with a
//!   password, with extra arguments, or with a TLS port too), stop, restart on the same port,
//!   pause and resume.
//! - [`cluster`]: [`RedisCluster`], N masters joined with `redis-cli --cluster create`, over
//!   TLS too if asked.
//! - [`migration`]: [`SlotMigration`], one hash slot moved to another master step by step.
//! - [`sentinel`]: [`RedisSentinel`], a Redis Sentinel on a configuration the test writes.
//! - [`error`]: [`HarnessError`], what went wrong and what to do about it.
//! - [`commandstats`]: the round trips clients made to a server, from `INFO commandstats`.
//! - [`pki`]: certificates for TLS tests (a private CA, server and client certificates), by
//!   the `openssl` command line.
//! - `ports` (private): free loopback ports.
//! - `resp` (private): a blocking, minimal RESP client over std's `TcpStream`, used to see
//!   when a server is up, so the harness needs no async runtime.
//!
//! Everything here is synchronous and needs no runtime, so it can be called from a plain
//! `#[test]` and from inside `#[tokio::test]` alike (it blocks that test's thread for the
//! few tens of milliseconds a server takes to start).
//!
//! No process outlives its test. Dropping a [`RedisServer`] or [`RedisCluster`] kills its
//! processes, waits for them and removes their directories; this also happens when the test
//! panics and unwinds. For a test process that dies without unwinding (abort, `SIGKILL`), each
//! server has a small `sh` watchdog that kills it within about a second of the test process
//! going away; this also covers servers kept in a `static`, which are never dropped.
//!
//! Requires `redis-server` (Redis 7 or newer, for `--cluster-port`) and, for clusters,
//! `redis-cli` on `PATH`: `apt-get install redis-server` brings both.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod cluster;
pub mod commandstats;
pub mod error;
pub mod migration;
pub mod pki;
mod ports;
mod resp;
pub mod sentinel;
pub mod server;

pub use cluster::RedisCluster;
pub use error::HarnessError;
pub use migration::SlotMigration;
pub use pki::{private_pki, self_signed};
pub use sentinel::RedisSentinel;
pub use server::{RedisServer, TlsFiles};
