//! Owns `RawClient`: a small synchronous RESP client over a std `TcpStream` that keeps the raw
//! bytes of every reply, so differential tests can compare servers byte for byte.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shoal_resp::{decode_frame, Frame, Limits};

/// How long a read may block before the test fails instead of hanging.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A reply: the decoded frame and the exact bytes it was decoded from.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The decoded frame.
    pub frame: Frame,
    /// The exact bytes of the frame on the wire.
    pub raw: Bytes,
}

/// A blocking RESP client for tests.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    limits: Limits,
}

impl RawClient {
    /// Connects with the default read timeout.
    pub fn connect(addr: SocketAddr) -> io::Result<RawClient> {
        Self::connect_with_timeout(addr, DEFAULT_TIMEOUT)
    }

    /// Connects; every read and write fails after `timeout` instead of blocking forever.
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<RawClient> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            limits: Limits::default(),
        })
    }

    /// Changes the read and write timeout.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Sends one command as a RESP array of bulk strings and reads one reply frame.
    pub fn command(&mut self, args: &[&[u8]]) -> io::Result<Frame> {
        Ok(self.command_raw(args)?.frame)
    }

    /// Sends a command written as words and returns its reply, panicking on an I/O error: the
    /// one-line form transcript-style tests use.
    pub fn call(&mut self, args: &[&str]) -> Frame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        match self.command(&args) {
            Ok(frame) => frame,
            Err(e) => panic!("{}: {e}", String::from_utf8_lossy(&args.join(&b' '))),
        }
    }

    /// Like [`RawClient::command`], but also returns the reply's raw bytes.
    pub fn command_raw(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send_command(args)?;
        self.read_reply()
    }

    /// Sends one command without reading the reply (for pipelining).
    pub fn send_command(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Writes bytes exactly as given: inline commands, pipelines or malformed input.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one reply frame.
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        Ok(self.read_reply()?.frame)
    }

    /// Reads one reply frame together with its raw bytes.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        loop {
            // The decoder consumes from the buffer it is given; decoding a copy tells how many
            // bytes the frame took, so the original bytes can be kept for byte-exact diffs.
            let mut probe = self.buf.clone();
            let before = probe.len();
            match decode_frame(&mut probe, &self.limits) {
                Ok(Some(frame)) => {
                    let used = before - probe.len();
                    let raw = self.buf.split_to(used).freeze();
                    return Ok(Reply { frame, raw });
                }
                Ok(None) => {}
                Err(err) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("undecodable reply {:?}: {err:?}", escape(&self.buf)),
                    ))
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed by the server (unparsed: {:?})",
                        escape(&self.buf)
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server closes the connection and returns whatever arrived (for
    /// commands such as QUIT and for protocol errors that close the connection).
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut out = self.buf.split().to_vec();
        self.stream.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The underlying stream, for tests that need socket-level control.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Encodes a command as a RESP array of bulk strings, the form every client sends.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Renders bytes for a message: printable ASCII as is, everything else escaped.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}
