//! A minimal blocking HTTP/1.1 client for tests: `GET` over a `std::net::TcpStream`, returning
//! the status code, headers and body, so tests need no HTTP crate.
//!
//! It understands `Content-Length`, `Transfer-Encoding: chunked` and bodies delimited by the
//! server closing the connection. Every request asks for `Connection: close`, and one deadline
//! bounds the whole exchange (connect, write, every read), so a silent server fails the test
//! with `TimedOut` instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The default deadline for a whole request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response accepted; a test talking to a runaway server gets an error, not an
/// exhausted machine.
const MAX_RESPONSE: usize = 64 << 20;

/// A response: status, headers in the order received, and the body with any chunked framing
/// removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200.
    pub status: u16,
    /// The reason phrase after the code (may be empty).
    pub reason: String,
    /// Header names as sent and values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text; invalid UTF-8 is replaced rather than reported, which suits assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` from the server at `addr` (anything `ToSocketAddrs` accepts, such as
/// `"127.0.0.1:9121"`), with [`DEFAULT_TIMEOUT`]. `path` starts with `/` and may carry a query
/// string, already encoded (see [`encode_component`]).
pub fn get(addr: impl ToSocketAddrs, path: &str) -> io::Result<Response> {
    get_with_timeout(addr, path, DEFAULT_TIMEOUT)
}

/// Like [`get`], with the deadline for the whole exchange given.
pub fn get_with_timeout(
    addr: impl ToSocketAddrs,
    path: &str,
    timeout: Duration,
) -> io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let Some(&addr) = addrs.first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no address to connect to",
        ));
    };
    let mut stream = TcpStream::connect_timeout(&addr, remaining(deadline)?)?;
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: shoal-testkit\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        pos: 0,
        eof: false,
        deadline,
    };
    read_response(&mut reader)
}

/// Percent-encodes `s` for use as one query-string value: everything but unreserved characters
/// (RFC 3986: letters, digits, `-._~`) is escaped, so PromQL's braces, quotes and `=` survive.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The time left before `deadline`, or `TimedOut` when none is.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "HTTP request timed out",
        ))
    } else {
        Ok(left)
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Buffered reads from the connection, each bounded by what is left of the deadline.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    deadline: Instant,
}

impl Reader {
    /// Reads more bytes into the buffer; returns false at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() > MAX_RESPONSE {
            return Err(invalid("HTTP response too large"));
        }
        // Once every buffered byte has been consumed the buffer starts afresh, so it never
        // holds more than the unread part of the response plus one read.
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.stream
            .set_read_timeout(Some(remaining(self.deadline)?))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = match self.stream.read(&mut chunk) {
            Ok(n) => n,
            // A read timeout surfaces as WouldBlock on Unix; report it as what it is.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "HTTP request timed out",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// One line without its CRLF (a bare LF is accepted too).
    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let mut line = &self.buf[self.pos..self.pos + i];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                let text = String::from_utf8_lossy(line).into_owned();
                self.pos += i + 1;
                return Ok(text);
            }
            if self.buf.len() - self.pos > 64 * 1024 {
                return Err(invalid("HTTP header line too long"));
            }
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a line",
                ));
            }
        }
    }

    /// Exactly `n` bytes.
    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n > MAX_RESPONSE {
            return Err(invalid("HTTP body too large"));
        }
        while self.buf.len() - self.pos < n {
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} of {n} body bytes",
                        self.buf.len() - self.pos
                    ),
                ));
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// Everything until the server closes the connection.
    fn until_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? {}
        let out = self.buf[self.pos..].to_vec();
        self.pos = self.buf.len();
        Ok(out)
    }
}

fn read_response(r: &mut Reader) -> io::Result<Response> {
    let (status, reason, headers) = loop {
        let head = read_head(r)?;
        // An interim 1xx response (100 Continue) is followed by the real one.
        if !(100..200).contains(&head.0) {
            break head;
        }
    };
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    if status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        read_chunked(r)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        r.exact(len)?
    } else {
        r.until_close()?
    };
    Ok(response)
}

type Head = (u16, String, Vec<(String, String)>);

fn read_head(r: &mut Reader) -> io::Result<Head> {
    let status_line = r.line()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!(
            "not an HTTP/1.x status line: {status_line:?}"
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..1000).contains(c))
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let line = r.line()?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("bad header line {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
        if headers.len() > 1000 {
            return Err(invalid("too many HTTP headers"));
        }
    }
    Ok((status, reason, headers))
}

/// A chunked body: hex sizes (extensions after `;` ignored), data, and trailers that are read
/// and dropped.
fn read_chunked(r: &mut Reader) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = r.line()?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            while !r.line()?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_RESPONSE {
            return Err(invalid("HTTP body too large"));
        }
        body.extend_from_slice(&r.exact(size)?);
        let end = r.line()?;
        if !end.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Serves one connection: reads the request head, then writes `parts` with short pauses in
    /// between so the client sees them in separate reads. Returns the address and the request
    /// the server received.
    fn serve_once(parts: Vec<Vec<u8>>) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            for p in parts {
                s.write_all(&p).unwrap();
                s.flush().unwrap();
                thread::sleep(Duration::from_millis(5));
            }
            String::from_utf8(req).unwrap()
        });
        (addr, handle)
    }

    #[test]
    fn content_length_body_and_headers() {
        let (addr, h) = serve_once(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Len".to_vec(),
            b"gth: 5\r\n\r\nhel".to_vec(),
            b"lo".to_vec(),
        ]);
        let r = get(addr, "/metrics").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
        assert_eq!(r.text(), "hello");
        let req = h.join().unwrap();
        assert!(req.starts_with("GET /metrics HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Connection: close\r\n"), "{req}");
        assert!(req.contains(&format!("Host: {addr}\r\n")), "{req}");
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let (addr, h) = serve_once(vec![
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            b"4;ext=1\r\nnot \r\n".to_vec(),
            b"a\r\nfound here\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec(),
        ]);
        let r = get(addr, "/nothing").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.reason, "Not Found");
        assert_eq!(r.text(), "not found here");
        h.join().unwrap();
    }

    #[test]
    fn body_until_close_and_interim_response() {
        let (addr, h) = serve_once(vec![
            b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\r\n\r\nuntil ".to_vec(),
            b"the end".to_vec(),
        ]);
        let r = get(addr, "/").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "until the end");
        h.join().unwrap();
    }

    #[test]
    fn no_content_has_no_body() {
        let (addr, h) = serve_once(vec![b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()]);
        let r = get(addr, "/").unwrap();
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        h.join().unwrap();
    }

    #[test]
    fn short_body_is_an_error() {
        let (addr, h) = serve_once(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()
        ]);
        let e = get(addr, "/").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        h.join().unwrap();
    }

    #[test]
    fn garbage_is_invalid_data() {
        let (addr, h) = serve_once(vec![b"+PONG\r\n".to_vec()]);
        let e = get(addr, "/").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        h.join().unwrap();
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let e = get_with_timeout(addr, "/", Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    #[test]
    fn encodes_promql() {
        assert_eq!(
            encode_component(r#"shoal_commands_total{cmd="set"}"#),
            "shoal_commands_total%7Bcmd%3D%22set%22%7D"
        );
        assert_eq!(encode_component("a b~-._"), "a%20b~-._");
    }
}
