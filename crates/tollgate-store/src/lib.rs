//! Limit state stores for tollgate: the Store trait, the Redis backend (standalone, Cluster,
//! Sentinel; Lua scripts) and the in-memory backend.
//!
//! Module map:
//! - [`store`]: the [`Store`] trait every backend implements.
//! - [`catalog`]: control-plane records and the [`CatalogStore`] trait that keeps them.
//! - `clock`: the wall clock, read in one place.
//! - [`error`]: [`StoreError`], which knows whether a retry makes sense.
//! - [`keys`]: every Redis key name, built in one place around one hash tag.
//! - [`memory`]: the in-process backend, the embedded default for a single instance.
//! - [`redis`]: the Redis backend and its Lua scripts.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod catalog;
mod clock;
pub mod error;
pub mod keys;
pub mod memory;
pub mod redis;
pub mod store;

pub use catalog::CatalogStore;
pub use error::StoreError;
pub use memory::MemoryStore;
pub use redis::{RedisConfig, RedisMode, RedisStore, RedisTlsFiles};
pub use store::{QuotaUpdate, Store};
