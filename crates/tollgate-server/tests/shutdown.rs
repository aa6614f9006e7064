//! SIGTERM: calls in flight finish, and the process stops within its drain bound even while
//! clients hold connections open without finishing a request.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::Tollgate;

/// A TCP connection to the gRPC port that never sends its HTTP/2 preface, and one to the
/// HTTP port whose request headers never end, do not hold the process past
/// `--shutdown-grace-ms`: without a bound, either kept it running until SIGKILL.
#[test]
fn silent_connections_do_not_hold_the_stop() {
    let mut t = Tollgate::start(&["--shutdown-grace-ms", "1000"]);
    let _grpc = TcpStream::connect(("127.0.0.1", t.grpc_port)).unwrap();
    let mut http = TcpStream::connect(("127.0.0.1", t.http_port)).unwrap();
    http.write_all(b"POST /v1/check HTTP/1.1\r\nHost: tollgate\r\n")
        .unwrap();
    // Let both servers accept the connections before the signal.
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    t.terminate();
    let status = t
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", t.log()));
    let took = asked.elapsed();
    assert!(status.success(), "{status}:\n{}", t.log());
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(
        t.log().contains("connections still open"),
        "the forced stop is logged:\n{}",
        t.log()
    );
}
