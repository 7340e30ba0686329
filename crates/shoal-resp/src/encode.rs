//! Owns writing `Frame`s to the wire for RESP2 or RESP3, including the RESP3-to-RESP2 downgrades.

use bytes::{BufMut, BytesMut};

use crate::double::format_double;
use crate::frame::Frame;
use crate::scan::fmt_u64;
use crate::Protocol;

/// Appends the wire form of `frame` for protocol `proto` to `out`.
///
/// Integers and lengths are formatted on the stack; only `out` ever grows.
pub fn encode(frame: &Frame, proto: Protocol, out: &mut BytesMut) {
    // Frames are built by the server, but decoded frames can be nested up to the decoder's
    // depth cap; an explicit stack keeps the encoder's stack use flat either way.
    let mut stack: Vec<Pending<'_>> = Vec::new();
    let mut next = Some(frame);
    loop {
        if let Some(frame) = next.take() {
            if let Some(children) = encode_one(frame, proto, out) {
                stack.push(children);
            }
        }
        match stack.last_mut() {
            None => return,
            Some(pending) => match pending.next() {
                Some(child) => next = Some(child),
                None => {
                    stack.pop();
                }
            },
        }
    }
}

/// The children of an aggregate that still have to be written, in wire order.
enum Pending<'a> {
    List(std::slice::Iter<'a, Frame>),
    Pairs {
        pairs: std::slice::Iter<'a, (Frame, Frame)>,
        value: Option<&'a Frame>,
    },
}

impl<'a> Pending<'a> {
    fn next(&mut self) -> Option<&'a Frame> {
        match self {
            Pending::List(items) => items.next(),
            Pending::Pairs { pairs, value } => {
                if let Some(v) = value.take() {
                    return Some(v);
                }
                let (k, v) = pairs.next()?;
                *value = Some(v);
                Some(k)
            }
        }
    }
}

/// Writes one frame's header (and whole body for scalars); returns the children of an
/// aggregate so the caller writes them next.
fn encode_one<'a>(frame: &'a Frame, proto: Protocol, out: &mut BytesMut) -> Option<Pending<'a>> {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        Frame::Simple(s) => line(out, b'+', s),
        Frame::Error(s) => line(out, b'-', s),
        Frame::Integer(n) => integer(out, *n),
        Frame::Bulk(b) => bulk(out, b'$', b),
        Frame::Null => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Frame::NullArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Frame::Array(items) => {
            header(out, b'*', items.len() as u64);
            return Some(Pending::List(items.iter()));
        }
        Frame::Set(items) => {
            header(out, if resp3 { b'~' } else { b'*' }, items.len() as u64);
            return Some(Pending::List(items.iter()));
        }
        Frame::Push(items) => {
            header(out, if resp3 { b'>' } else { b'*' }, items.len() as u64);
            return Some(Pending::List(items.iter()));
        }
        Frame::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len() as u64);
            } else {
                header(out, b'*', (pairs.len() as u64).saturating_mul(2));
            }
            return Some(Pending::Pairs {
                pairs: pairs.iter(),
                value: None,
            });
        }
        Frame::Double(d) => {
            let repr = format_double(*d);
            if resp3 {
                out.reserve(repr.as_bytes().len() + 3);
                out.put_u8(b',');
                out.put_slice(repr.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                bulk(out, b'$', repr.as_bytes());
            }
        }
        Frame::DoubleText(text) => {
            if resp3 {
                line(out, b',', text);
            } else {
                bulk(out, b'$', text);
            }
        }
        Frame::Boolean(b) => {
            if resp3 {
                out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Frame::BigNumber(n) => {
            if resp3 {
                line(out, b'(', n);
            } else {
                bulk(out, b'$', n);
            }
        }
        Frame::Verbatim { format, text } => {
            if resp3 {
                header(out, b'=', text.len() as u64 + 4);
                out.reserve(text.len() + 6);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            } else {
                bulk(out, b'$', text);
            }
        }
    }
    None
}

/// `<tag><n>\r\n`.
fn header(out: &mut BytesMut, tag: u8, n: u64) {
    let mut digits = [0u8; 20];
    let digits = fmt_u64(n, &mut digits);
    out.reserve(digits.len() + 3);
    out.put_u8(tag);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

fn integer(out: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let digits = fmt_u64(n.unsigned_abs(), &mut digits);
    out.reserve(digits.len() + 4);
    out.put_u8(b':');
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// `<tag><len>\r\n<payload>\r\n`.
fn bulk(out: &mut BytesMut, tag: u8, payload: &[u8]) {
    let len = payload.len();
    if len < 10 {
        // Short payloads (most collection elements): the whole bulk is at most 15 bytes,
        // assembled on the stack and written with one fixed-size copy, then trimmed.
        let mut b = [0u8; 16];
        b[0] = tag;
        b[1] = b'0' + len as u8;
        b[2] = b'\r';
        b[3] = b'\n';
        for (d, s) in b[4..].iter_mut().zip(payload) {
            *d = *s;
        }
        b[4 + len] = b'\r';
        b[5 + len] = b'\n';
        out.put_slice(&b);
        out.truncate(out.len() - (10 - len));
        return;
    }
    let mut digits = [0u8; 20];
    let digits = fmt_u64(len as u64, &mut digits);
    out.reserve(digits.len() + len + 5);
    out.put_u8(tag);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// `<tag><text>\r\n` with `\r` and `\n` inside `text` written as spaces, as Redis does for
/// status and error replies, so that no reply text can split itself into two replies.
fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        for &b in text {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn wire(frame: &Frame, proto: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(frame, proto, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn both(frame: Frame, resp2: &str, resp3: &str) {
        assert_eq!(wire(&frame, Protocol::Resp2), resp2, "{frame:?} RESP2");
        assert_eq!(wire(&frame, Protocol::Resp3), resp3, "{frame:?} RESP3");
    }

    #[test]
    fn scalars() {
        both(Frame::ok(), "+OK\r\n", "+OK\r\n");
        both(Frame::simple("PONG"), "+PONG\r\n", "+PONG\r\n");
        both(
            Frame::error("ERR syntax error"),
            "-ERR syntax error\r\n",
            "-ERR syntax error\r\n",
        );
        both(Frame::Integer(0), ":0\r\n", ":0\r\n");
        both(
            Frame::Integer(i64::MIN),
            ":-9223372036854775808\r\n",
            ":-9223372036854775808\r\n",
        );
        both(Frame::bulk("foo"), "$3\r\nfoo\r\n", "$3\r\nfoo\r\n");
        both(Frame::bulk(""), "$0\r\n\r\n", "$0\r\n\r\n");
        for len in [1, 8, 9, 10, 11, 99, 100, 12345] {
            let text = "x".repeat(len);
            let wire = format!("${len}\r\n{text}\r\n");
            both(Frame::bulk(text), &wire, &wire);
        }
        both(Frame::Null, "$-1\r\n", "_\r\n");
        both(Frame::NullArray, "*-1\r\n", "_\r\n");
        both(Frame::Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n");
        both(
            Frame::DoubleText(Bytes::from_static(b"13.36138933897018433")),
            "$20\r\n13.36138933897018433\r\n",
            ",13.36138933897018433\r\n",
        );
        both(
            Frame::Double(0.1),
            "$19\r\n0.10000000000000001\r\n",
            ",0.10000000000000001\r\n",
        );
        both(Frame::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n");
        both(
            Frame::Double(f64::NEG_INFINITY),
            "$4\r\n-inf\r\n",
            ",-inf\r\n",
        );
        both(Frame::Boolean(true), ":1\r\n", "#t\r\n");
        both(Frame::Boolean(false), ":0\r\n", "#f\r\n");
        both(
            Frame::BigNumber(Bytes::from_static(b"-12345678901234567890")),
            "$21\r\n-12345678901234567890\r\n",
            "(-12345678901234567890\r\n",
        );
        both(
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"Some string"),
            },
            "$11\r\nSome string\r\n",
            "=15\r\ntxt:Some string\r\n",
        );
    }

    #[test]
    fn line_breaks_in_status_and_error_become_spaces() {
        both(
            Frame::error("ERR bad\r\nthing\n"),
            "-ERR bad  thing \r\n",
            "-ERR bad  thing \r\n",
        );
        both(
            Frame::Simple(Bytes::from_static(b"a\rb")),
            "+a b\r\n",
            "+a b\r\n",
        );
    }

    #[test]
    fn aggregates() {
        both(
            Frame::Array(vec![Frame::bulk("a"), Frame::Integer(1)]),
            "*2\r\n$1\r\na\r\n:1\r\n",
            "*2\r\n$1\r\na\r\n:1\r\n",
        );
        both(Frame::Array(vec![]), "*0\r\n", "*0\r\n");
        both(
            Frame::Map(vec![
                (Frame::bulk("k"), Frame::Integer(1)),
                (Frame::bulk("l"), Frame::Array(vec![Frame::Null])),
            ]),
            "*4\r\n$1\r\nk\r\n:1\r\n$1\r\nl\r\n*1\r\n$-1\r\n",
            "%2\r\n$1\r\nk\r\n:1\r\n$1\r\nl\r\n*1\r\n_\r\n",
        );
        both(
            Frame::Set(vec![Frame::bulk("x")]),
            "*1\r\n$1\r\nx\r\n",
            "~1\r\n$1\r\nx\r\n",
        );
        both(
            Frame::Push(vec![Frame::bulk("message"), Frame::Boolean(true)]),
            "*2\r\n$7\r\nmessage\r\n:1\r\n",
            ">2\r\n$7\r\nmessage\r\n#t\r\n",
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let mut frame = Frame::Integer(7);
        for _ in 0..100_000 {
            frame = Frame::Array(vec![frame]);
        }
        let mut out = BytesMut::new();
        encode(&frame, Protocol::Resp3, &mut out);
        assert_eq!(out.len(), 100_000 * 4 + 4);
        // Dropping a frame this deep would recurse, so unwrap it level by level.
        while let Frame::Array(mut items) = frame {
            frame = items.pop().unwrap_or(Frame::Null);
        }
    }
}
