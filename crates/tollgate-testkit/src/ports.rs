//! Free loopback ports.
//!
//! A port is found by binding `127.0.0.1:0` and reading the port the kernel chose. The
//! listener is then closed so that redis-server can bind the port itself, which leaves a short
//! window in which another process can take it; the server module detects that and retries
//! with new ports.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::Duration;

/// How often to try binding before giving up (binding port 0 fails only when the ephemeral
/// range is exhausted, which is usually momentary).
const BIND_ATTEMPTS: usize = 5;

/// Returns `n` distinct ports that were free on 127.0.0.1 a moment ago.
///
/// All `n` listeners are held open together, so the ports differ from each other.
pub(crate) fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let mut last_err = None;
    for attempt in 0..BIND_ATTEMPTS {
        match bind_n(n) {
            Ok(ports) => return Ok(ports),
            Err(err) => last_err = Some(err),
        }
        thread::sleep(Duration::from_millis(20 << attempt));
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no bind attempt was made")))
}

fn bind_n(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports handed out together are distinct and can be bound again once released.
    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(4).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        for port in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        }
    }
}
