//! The Envoy rate-limit config directory (`--rls-config DIR`): envoyproxy/ratelimit YAML
//! files, loaded at start and reloaded when they change.
//!
//! Every `*.yaml` and `*.yml` file directly in the directory is read (hidden files are not,
//! so the `..data` links of a Kubernetes ConfigMap mount are skipped and the files they point
//! to are read through their links); each file defines one domain. The directory is polled:
//! when its files' names or contents differ from the last load tried, they are parsed and
//! validated together, and only if all of them are good does the new set of domains replace
//! the old one, at once. A broken file keeps the previous config in force; it is logged with
//! the file, the field path and the line, and counted in `tollgate_rls_config_errors_total`,
//! once per distinct broken content. Polling rather than file events: it sees every way a
//! file can change (editors that replace files, ConfigMap symlink swaps, network file
//! systems) and costs a read of a few small files per interval.

use crate::limiter::Limiter;
use crate::metrics::metrics;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tollgate_core::rls::{RlsConfig, RlsRegistry};
use tracing::{info, warn};

/// Why the config directory could not be loaded.
#[derive(Debug, Error)]
pub enum RlsLoadError {
    /// The directory or a file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// What could not be read.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not YAML of the expected shape.
    #[error("{file}: {at}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// Field path where parsing failed.
        at: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A file parses but does not validate, or two files define one domain.
    #[error("{0}")]
    Invalid(String),
}

/// The files of the directory as last read: names and contents, sorted by name.
pub type Snapshot = Vec<(String, String)>;

/// Reads every config file of `dir`.
pub fn read_dir(dir: &Path) -> Result<Snapshot, RlsLoadError> {
    let read_err = |path: &Path, source| RlsLoadError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let entry = entry.map_err(|e| read_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if name.starts_with('.') || !is_yaml {
            continue;
        }
        let path = entry.path();
        // Follows symlinks; a directory named *.yaml is not a file and is skipped.
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        files.push((name, text));
    }
    files.sort();
    Ok(files)
}

/// Parses and validates a snapshot into the domains it defines.
pub fn build(files: &Snapshot) -> Result<RlsRegistry, RlsLoadError> {
    let mut configs = Vec::with_capacity(files.len());
    for (name, text) in files {
        let de = serde_norway::Deserializer::from_str(text);
        let cfg: RlsConfig =
            serde_path_to_error::deserialize(de).map_err(|e| RlsLoadError::Parse {
                file: name.clone(),
                at: match e.path().to_string().as_str() {
                    "." => "top level".to_string(),
                    p => p.to_string(),
                },
                message: e.into_inner().to_string(),
            })?;
        configs.push((name.clone(), cfg));
    }
    RlsRegistry::from_configs(configs).map_err(|e| RlsLoadError::Invalid(e.to_string()))
}

/// Loads `dir` once, for start-up: an error here stops the service, as there is no previous
/// config to keep.
pub fn load(dir: &Path) -> Result<(Snapshot, RlsRegistry), RlsLoadError> {
    let files = read_dir(dir)?;
    let registry = build(&files)?;
    Ok((files, registry))
}

/// Records a load that took effect.
pub fn loaded(registry: &RlsRegistry, dir: &Path) {
    let m = metrics();
    m.rls_config_reloads.inc();
    m.rls_config_domains.set(registry.len() as i64);
    let mut domains: Vec<&str> = registry.domain_names().collect();
    domains.sort_unstable();
    info!(dir = %dir.display(), domains = ?domains, "rate-limit config loaded");
}

/// Polls `dir` every `interval` until `shutdown` resolves, swapping good changes into
/// `limiter`. `last` is what the start-up load read.
pub async fn watch(
    dir: PathBuf,
    limiter: Arc<Limiter>,
    interval: Duration,
    mut last: Snapshot,
    shutdown: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut read_failing = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let dir2 = dir.clone();
        let files = match tokio::task::spawn_blocking(move || read_dir(&dir2)).await {
            Ok(Ok(files)) => {
                read_failing = false;
                files
            }
            Ok(Err(e)) => {
                // A directory that vanished for a moment (a redeploy) keeps the config; say
                // so once, not every interval.
                if !read_failing {
                    warn!(error = %e, "rate-limit config directory unreadable; keeping the previous config");
                    metrics().rls_config_errors.inc();
                    read_failing = true;
                }
                continue;
            }
            Err(e) => {
                warn!(error = %e, "rate-limit config reader failed");
                continue;
            }
        };
        if files == last {
            continue;
        }
        match build(&files) {
            Ok(registry) => {
                loaded(&registry, &dir);
                limiter.set_rls_registry(registry);
            }
            Err(e) => {
                metrics().rls_config_errors.inc();
                warn!(error = %e, "rate-limit config refused; keeping the previous config");
            }
        }
        last = files;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// YAML files load as domains; hidden and other files are skipped.
    #[test]
    fn loads_yaml_files_only() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "domain: a\n");
        write(dir.path(), "b.yml", "domain: b\n");
        write(dir.path(), ".hidden.yaml", "not: [valid\n");
        write(dir.path(), "notes.txt", "whatever");
        let (files, registry) = load(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(registry.len(), 2);
    }

    /// Errors name the file and, for YAML, the field path and line.
    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "bad.yaml",
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n",
        );
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml: "), "{e}");
        assert!(e.contains("fortnight"), "{e}");
        write(
            dir.path(),
            "bad.yaml",
            "domain: d\ndescriptors:\n  - key: k\n    valu: x\n",
        );
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("bad.yaml: descriptors[0]") && e.contains("valu"),
            "{e}"
        );
        assert!(e.contains("line"), "{e}");
    }
}
