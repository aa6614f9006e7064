//! [`HarnessError`]: why a test server could not be started.

use std::io;
use std::time::Duration;

/// Why the harness could not give a test its Redis.
///
/// Every message says what failed and, where the harness knows, what to do about it; failures
/// of a started server carry the end of its log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A program the harness runs is not installed.
    #[error("{program} not found on PATH: install it (apt-get install {package})")]
    NotInstalled {
        /// The program looked for, e.g. `redis-server`.
        program: &'static str,
        /// The Debian package that brings it.
        package: &'static str,
    },

    /// A program is installed but could not be run.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program run.
        program: &'static str,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// No free port could be reserved on 127.0.0.1.
    #[error("could not reserve a free port on 127.0.0.1: {0}")]
    NoFreePort(#[source] io::Error),

    /// Some other I/O step of the harness failed (temporary directory, log file, signal).
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A program the harness ran (such as `openssl`) ran and failed.
    #[error("{program} {args} failed ({status}): {stderr}")]
    ProgramFailed {
        /// The program run.
        program: &'static str,
        /// Its arguments, as run.
        args: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },

    /// `redis-server` exited, never answered, or kept losing its port to other processes.
    #[error(
        "redis-server on 127.0.0.1:{port} did not start: {reason}\n--- end of its log ---\n{log}"
    )]
    StartFailed {
        /// The port it was started on (the last one tried).
        port: u16,
        /// What happened.
        reason: String,
        /// The last lines the server wrote.
        log: String,
    },

    /// A cluster was asked for with fewer masters than Redis Cluster allows.
    #[error("a Redis Cluster needs at least 3 masters (redis-cli --cluster create refuses fewer), asked for {0}")]
    TooFewMasters(usize),

    /// `redis-cli --cluster create` failed or did not finish.
    #[error("redis-cli --cluster create failed ({status}):\n{output}")]
    ClusterCreate {
        /// How it ended, e.g. `exit status: 1` or `timed out after 60s`.
        status: String,
        /// What it printed.
        output: String,
    },

    /// The cluster did not become healthy on every node in time.
    #[error("cluster did not reach cluster_state:ok on every node within {timeout:?}: {detail}")]
    ClusterNotReady {
        /// How long the harness waited.
        timeout: Duration,
        /// The first node that was not ready and what it reported.
        detail: String,
    },

    /// An admin command sent to a node (to move a slot, say) failed or got an error reply.
    #[error("{command} on {node} failed: {reply}")]
    Command {
        /// The node, `127.0.0.1:port`.
        node: String,
        /// The command sent.
        command: String,
        /// The error reply, or what went wrong on the connection.
        reply: String,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}

impl HarnessError {
    /// Why `program`, from the Debian package `package`, could not be run: not installed, or
    /// refused by the operating system.
    pub(crate) fn spawning(
        program: &'static str,
        package: &'static str,
        source: io::Error,
    ) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => HarnessError::NotInstalled { program, package },
            _ => HarnessError::Spawn { program, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "not installed" message names the program and the package that installs it.
    #[test]
    fn not_installed_message_says_what_to_install() {
        let err = HarnessError::NotInstalled {
            program: "redis-server",
            package: "redis-server",
        };
        assert_eq!(
            err.to_string(),
            "redis-server not found on PATH: install it (apt-get install redis-server)"
        );
    }
}
