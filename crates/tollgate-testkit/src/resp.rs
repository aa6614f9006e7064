//! A blocking, minimal RESP2 client over std's `TcpStream`.
//!
//! Just enough to ask a server `PING`, `AUTH`, `INFO` and `CLUSTER INFO` while it starts,
//! without an async runtime (the harness must work inside `#[tokio::test]` as well as in
//! `#[test]`, and a nested runtime would panic). Tests talk to the servers with the real
//! `redis` crate.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`, `+PONG`.
    Simple(String),
    /// `-ERR ...`, `-NOAUTH ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` followed by n bytes, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` followed by n replies, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, for bulk and simple strings.
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// One connection to a server on 127.0.0.1.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `127.0.0.1:port`; `timeout` bounds the connect and every read and write.
    pub(crate) fn connect(port: u16, timeout: Duration) -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply.
    pub(crate) fn call(&mut self, args: &[&str]) -> io::Result<Reply> {
        self.reader.get_mut().write_all(&encode(args))?;
        read_reply(&mut self.reader)
    }
}

/// Encodes a command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| invalid("empty or malformed reply line"))?;
    match kind {
        "+" => Ok(Reply::Simple(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => Ok(Reply::Integer(parse_int(rest)?)),
        "$" => {
            let Ok(len) = usize::try_from(parse_int(rest)?) else {
                return Ok(Reply::Bulk(None));
            };
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(invalid("bulk string not terminated by CRLF"));
            }
            buf.truncate(len);
            Ok(Reply::Bulk(Some(buf)))
        }
        "*" => {
            let Ok(len) = usize::try_from(parse_int(rest)?) else {
                return Ok(Reply::Array(None));
            };
            let items = (0..len).map(|_| read_reply(r)).collect::<io::Result<_>>()?;
            Ok(Reply::Array(Some(items)))
        }
        other => Err(invalid(format!("unexpected RESP type byte {other:?}"))),
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.strip_suffix("\r\n")
        .map(str::to_owned)
        .ok_or_else(|| invalid("reply line not terminated by CRLF"))
}

fn parse_int(s: &str) -> io::Result<i64> {
    s.parse()
        .map_err(|_| invalid(format!("bad integer {s:?} in reply")))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Returns the value of `field` in an `INFO`-style `field:value` text.
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == field)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(&mut &bytes[..])
    }

    /// Commands are encoded as RESP arrays of bulk strings, so empty and binary-safe
    /// arguments (such as passwords) survive.
    #[test]
    fn encodes_commands_as_bulk_string_arrays() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode(&["AUTH", "a b"]),
            b"*2\r\n$4\r\nAUTH\r\n$3\r\na b\r\n"
        );
        assert_eq!(encode(&["SET", ""]), b"*2\r\n$3\r\nSET\r\n$0\r\n\r\n");
    }

    /// Every RESP2 reply type is read, including nil bulk strings and nested arrays.
    #[test]
    fn reads_every_resp2_reply_type() {
        assert_eq!(parse(b"+PONG\r\n").unwrap(), Reply::Simple("PONG".into()));
        assert_eq!(
            parse(b"-NOAUTH Authentication required.\r\n").unwrap(),
            Reply::Error("NOAUTH Authentication required.".into())
        );
        assert_eq!(parse(b":-7\r\n").unwrap(), Reply::Integer(-7));
        assert_eq!(
            parse(b"$5\r\na\r\nbc\r\n").unwrap(),
            Reply::Bulk(Some(b"a\r\nbc".to_vec()))
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Array(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n*1\r\n+x\r\n").unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Array(Some(vec![Reply::Simple("x".into())]))
            ]))
        );
    }

    /// Truncated or malformed replies are errors, not panics.
    #[test]
    fn rejects_malformed_replies() {
        for bad in [
            &b""[..],
            b"+PONG",
            b"$3\r\nab",
            b":x\r\n",
            b"?\r\n",
            b"\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    /// `INFO` fields are found by exact name, not by prefix.
    #[test]
    fn finds_info_fields_by_exact_name() {
        let info = "# Server\r\nprocess_id:42\r\nprocess_supervised:no\r\ncluster_state:ok\r\n";
        assert_eq!(info_field(info, "process_id"), Some("42"));
        assert_eq!(info_field(info, "cluster_state"), Some("ok"));
        assert_eq!(info_field(info, "process"), None);
    }
}
