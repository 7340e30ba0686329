//! Owns decoding RESP2/RESP3 replies into `Frame`s for clients and tests, without recursion.
//!
//! Decoding runs in two passes over the buffered bytes. The first pass only checks that a
//! whole, well-formed frame is buffered and finds where it ends, so an incomplete reply
//! costs nothing but a scan and leaves the buffer untouched. The second pass splits exactly
//! that many bytes off the buffer, freezes them, and builds the frame with every string
//! sharing the frozen bytes. Both passes walk nested aggregates with an explicit stack
//! capped at [`MAX_NESTING_DEPTH`], so hostile input cannot overflow the call stack.
//!
//! Attributes (`|`) are read and dropped: the decoder returns the value they annotate.
//! RESP3 streamed strings and aggregates (`$?`, `*?`) are not supported; Redis never
//! sends them.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::frame::Frame;
use crate::limits::{Limits, ProtocolError};
use crate::scan::{find_byte, parse_ll};

/// Deepest nesting of aggregates (attributes included) the decoder accepts.
pub const MAX_NESTING_DEPTH: usize = 128;

/// Aggregates are never preallocated beyond this many slots from a peer's claim.
const MAX_PREALLOC: usize = 1024;

/// The aggregate kinds, which only differ in how their children become a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Array,
    Map,
    Set,
    Push,
    /// An attribute map followed by the value it annotates: `2n + 1` children of which
    /// only the last is kept.
    Attribute,
}

/// One header or scalar read from the wire; strings are byte ranges into the input.
enum Token {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    Null,
    NullArray,
    Double(f64),
    Boolean(bool),
    BigNumber(Range<usize>),
    Verbatim([u8; 3], Range<usize>),
    /// An aggregate header with the number of child frames that follow it.
    Aggregate(Kind, usize),
}

fn err(message: &str) -> ProtocolError {
    ProtocolError::new(message)
}

/// Decodes one reply from the front of `buf`.
///
/// `Ok(None)` means the reply is not complete yet and nothing was consumed. On success the
/// reply's bytes are removed from `buf`. RESP2 `$-1` and RESP3 `_` decode to
/// [`Frame::Null`], `*-1` to [`Frame::NullArray`], blob errors `!` to [`Frame::Error`].
pub fn decode_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
    let Some(end) = measure(buf, limits)? else {
        return Ok(None);
    };
    let data = buf.split_to(end).freeze();
    build(&data, limits)
}

/// First pass: returns the length of the complete frame at the front of `data`.
fn measure(data: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
    let mut pos = 0;
    // Children still expected by each open aggregate, innermost last.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let Some((token, next)) = read_token(data, pos, limits)? else {
            return Ok(None);
        };
        pos = next;
        if let Token::Aggregate(_, children) = token {
            if children > 0 {
                if open.len() >= MAX_NESTING_DEPTH {
                    return Err(err("Protocol error: reply nesting too deep"));
                }
                open.push(children);
                continue;
            }
        }
        // A value is complete: close every aggregate it completes.
        loop {
            match open.last_mut() {
                None => return Ok(Some(pos)),
                Some(remaining) => {
                    *remaining -= 1;
                    if *remaining > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

/// An aggregate being assembled during the second pass.
struct Partial {
    kind: Kind,
    remaining: usize,
    items: Vec<Frame>,
}

impl Partial {
    fn finish(self) -> Frame {
        match self.kind {
            Kind::Array => Frame::Array(self.items),
            Kind::Set => Frame::Set(self.items),
            Kind::Push => Frame::Push(self.items),
            Kind::Map => {
                let mut pairs = Vec::with_capacity(self.items.len() / 2);
                let mut items = self.items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    pairs.push((k, v));
                }
                Frame::Map(pairs)
            }
            Kind::Attribute => self.items.into_iter().next_back().unwrap_or(Frame::Null),
        }
    }
}

/// Second pass: builds the frame from bytes `measure` accepted; strings share `data`.
fn build(data: &Bytes, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
    let mut pos = 0;
    let mut open: Vec<Partial> = Vec::new();
    loop {
        let Some((token, next)) = read_token(data, pos, limits)? else {
            // `measure` saw a complete frame in these very bytes, so this cannot happen;
            // report it rather than trusting that.
            return Err(err("Protocol error: reply ended early"));
        };
        pos = next;
        let mut value = match token {
            Token::Simple(r) => Frame::Simple(data.slice(r)),
            Token::Error(r) => Frame::Error(data.slice(r)),
            Token::Integer(n) => Frame::Integer(n),
            Token::Bulk(r) => Frame::Bulk(data.slice(r)),
            Token::Null => Frame::Null,
            Token::NullArray => Frame::NullArray,
            Token::Double(d) => Frame::Double(d),
            Token::Boolean(b) => Frame::Boolean(b),
            Token::BigNumber(r) => Frame::BigNumber(data.slice(r)),
            Token::Verbatim(format, r) => Frame::Verbatim {
                format,
                text: data.slice(r),
            },
            Token::Aggregate(kind, children) => {
                let partial = Partial {
                    kind,
                    remaining: children,
                    items: Vec::with_capacity(children.min(MAX_PREALLOC)),
                };
                if children > 0 {
                    if open.len() >= MAX_NESTING_DEPTH {
                        return Err(err("Protocol error: reply nesting too deep"));
                    }
                    open.push(partial);
                    continue;
                }
                partial.finish()
            }
        };
        loop {
            let Some(parent) = open.last_mut() else {
                return Ok(Some(value));
            };
            parent.items.push(value);
            parent.remaining -= 1;
            if parent.remaining > 0 {
                break;
            }
            match open.pop() {
                Some(done) => value = done.finish(),
                None => return Err(err("Protocol error: reply ended early")),
            }
        }
    }
}

/// Reads the `\r\n`-terminated line starting at `start`; returns the body range and the
/// position after the terminator. Lines longer than `max_inline_len` are rejected whether
/// or not their end has arrived, so the outcome never depends on how input was chunked.
fn read_line(
    data: &[u8],
    start: usize,
    limits: &Limits,
) -> Result<Option<(Range<usize>, usize)>, ProtocolError> {
    let rest = data.get(start..).unwrap_or(&[]);
    let window = &rest[..rest.len().min(limits.max_inline_len.saturating_add(1))];
    match find_byte(window, b'\r') {
        None if window.len() > limits.max_inline_len => {
            Err(err("Protocol error: too big reply line"))
        }
        None => Ok(None),
        Some(i) => match rest.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((start..start + i, start + i + 2))),
            Some(_) => Err(err("Protocol error: expected '\\n' after '\\r'")),
        },
    }
}

/// A length-prefixed payload's range (`None` for the RESP2 null bulk) and the position after it.
type Blob = (Option<Range<usize>>, usize);

/// Reads a length-prefixed payload (`$`, `!`, `=`) whose length line starts at `start`.
/// `Ok(Some((None, next)))` is the RESP2 null bulk `-1`.
fn read_blob(
    data: &[u8],
    start: usize,
    limits: &Limits,
    allow_null: bool,
) -> Result<Option<Blob>, ProtocolError> {
    let Some((len_range, after)) = read_line(data, start, limits)? else {
        return Ok(None);
    };
    let len = match parse_ll(&data[len_range]) {
        Some(-1) if allow_null => return Ok(Some((None, after))),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|&n| n <= limits.max_bulk_len)
            .ok_or_else(|| err("Protocol error: invalid bulk length"))?,
        None => return Err(err("Protocol error: invalid bulk length")),
    };
    let end = after.saturating_add(len);
    if data.len() < end.saturating_add(2) {
        return Ok(None);
    }
    if &data[end..end + 2] != b"\r\n" {
        return Err(err("Protocol error: expected CRLF after bulk payload"));
    }
    Ok(Some((Some(after..end), end + 2)))
}

/// Reads an aggregate count line for `kind`.
fn read_count(data: &[u8], range: Range<usize>, limits: &Limits) -> Result<usize, ProtocolError> {
    parse_ll(&data[range])
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limits.max_multibulk_len)
        .ok_or_else(|| err("Protocol error: invalid multibulk length"))
}

/// Reads one token starting at `pos`. `Ok(None)` means more bytes are needed.
fn read_token(
    data: &[u8],
    pos: usize,
    limits: &Limits,
) -> Result<Option<(Token, usize)>, ProtocolError> {
    let Some(&tag) = data.get(pos) else {
        return Ok(None);
    };
    let body = pos + 1;
    match tag {
        b'$' | b'!' | b'=' => {
            let Some((range, next)) = read_blob(data, body, limits, tag == b'$')? else {
                return Ok(None);
            };
            let token = match (tag, range) {
                (_, None) => Token::Null,
                (b'!', Some(r)) => Token::Error(r),
                (b'=', Some(r)) => {
                    let text = &data[r.clone()];
                    match text {
                        [a, b, c, b':', ..] => Token::Verbatim([*a, *b, *c], r.start + 4..r.end),
                        _ => return Err(err("Protocol error: invalid verbatim string")),
                    }
                }
                (_, Some(r)) => Token::Bulk(r),
            };
            Ok(Some((token, next)))
        }
        _ => {
            let Some((line, next)) = read_line(data, body, limits)? else {
                return Ok(None);
            };
            let text = &data[line.clone()];
            let token = match tag {
                b'+' => Token::Simple(line),
                b'-' => Token::Error(line),
                b':' => Token::Integer(
                    std::str::from_utf8(text)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| err("Protocol error: invalid integer"))?,
                ),
                b'_' if text.is_empty() => Token::Null,
                b'_' => return Err(err("Protocol error: invalid null")),
                b',' => Token::Double(
                    std::str::from_utf8(text)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| err("Protocol error: invalid double"))?,
                ),
                b'#' => match text {
                    b"t" => Token::Boolean(true),
                    b"f" => Token::Boolean(false),
                    _ => return Err(err("Protocol error: invalid boolean")),
                },
                b'(' if !text.is_empty() => Token::BigNumber(line),
                b'(' => return Err(err("Protocol error: invalid big number")),
                b'*' if text == b"-1" => Token::NullArray,
                b'*' => Token::Aggregate(Kind::Array, read_count(data, line, limits)?),
                b'~' => Token::Aggregate(Kind::Set, read_count(data, line, limits)?),
                b'>' => Token::Aggregate(Kind::Push, read_count(data, line, limits)?),
                b'%' => {
                    let pairs = read_count(data, line, limits)?;
                    Token::Aggregate(Kind::Map, pairs.saturating_mul(2))
                }
                b'|' => {
                    let pairs = read_count(data, line, limits)?;
                    Token::Aggregate(Kind::Attribute, pairs.saturating_mul(2).saturating_add(1))
                }
                other => {
                    let mut message = String::from("Protocol error: unexpected reply type byte ");
                    if other.is_ascii_graphic() {
                        message.push('\'');
                        message.push(char::from(other));
                        message.push('\'');
                    } else {
                        message.push_str(&format!("0x{other:02x}"));
                    }
                    return Err(ProtocolError::new(message));
                }
            };
            Ok(Some((token, next)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let result = decode_frame(&mut buf, &Limits::default());
        if let Ok(Some(_)) = result {
            assert!(buf.is_empty(), "leftover {:?}", buf);
        }
        result
    }

    fn ok(input: &[u8], expected: Frame) {
        assert_eq!(
            decode_all(input),
            Ok(Some(expected)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    fn fails(input: &[u8], message: &str) {
        assert_eq!(
            decode_all(input),
            Err(ProtocolError::new(message)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn scalars() {
        ok(b"+OK\r\n", Frame::ok());
        ok(b"-ERR x\r\n", Frame::error("ERR x"));
        ok(b"!5\r\nERR y\r\n", Frame::error("ERR y"));
        ok(b":-42\r\n", Frame::Integer(-42));
        ok(b"$3\r\nfoo\r\n", Frame::bulk("foo"));
        ok(b"$0\r\n\r\n", Frame::bulk(""));
        ok(b"$-1\r\n", Frame::Null);
        ok(b"*-1\r\n", Frame::NullArray);
        ok(b"_\r\n", Frame::Null);
        ok(b",1.5\r\n", Frame::Double(1.5));
        ok(b",inf\r\n", Frame::Double(f64::INFINITY));
        ok(b",-inf\r\n", Frame::Double(f64::NEG_INFINITY));
        ok(b"#t\r\n", Frame::Boolean(true));
        ok(b"#f\r\n", Frame::Boolean(false));
        ok(b"(123\r\n", Frame::BigNumber(Bytes::from_static(b"123")));
        ok(
            b"=8\r\nmkd:a\r\nb\r\n",
            Frame::Verbatim {
                format: *b"mkd",
                text: Bytes::from_static(b"a\r\nb"),
            },
        );
    }

    #[test]
    fn nan_decodes_to_nan() {
        match decode_all(b",nan\r\n") {
            Ok(Some(Frame::Double(d))) => assert!(d.is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aggregates_and_attributes() {
        ok(
            b"*2\r\n$1\r\na\r\n*0\r\n",
            Frame::Array(vec![Frame::bulk("a"), Frame::Array(vec![])]),
        );
        ok(
            b"%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
            Frame::Map(vec![(
                Frame::simple("k"),
                Frame::Set(vec![Frame::Integer(1), Frame::Integer(2)]),
            )]),
        );
        ok(b">1\r\n+m\r\n", Frame::Push(vec![Frame::simple("m")]));
        ok(b"|1\r\n+ttl\r\n:3\r\n:7\r\n", Frame::Integer(7));
        ok(b"|0\r\n:7\r\n", Frame::Integer(7));
        ok(
            b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
        );
    }

    #[test]
    fn incomplete_input_consumes_nothing() {
        let full = b"*3\r\n$3\r\nfoo\r\n%1\r\n+a\r\n:1\r\n|1\r\n+x\r\n+y\r\n,2.5\r\n";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode_frame(&mut buf, &Limits::default()),
                Ok(None),
                "cut {cut}"
            );
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&full[..]);
        buf.extend_from_slice(b"+next\r\n");
        assert!(matches!(
            decode_frame(&mut buf, &Limits::default()),
            Ok(Some(Frame::Array(_)))
        ));
        assert_eq!(
            decode_frame(&mut buf, &Limits::default()),
            Ok(Some(Frame::simple("next")))
        );
        assert_eq!(decode_frame(&mut buf, &Limits::default()), Ok(None));
    }

    #[test]
    fn errors() {
        fails(b"?\r\n", "Protocol error: unexpected reply type byte '?'");
        fails(
            b"\x00\r\n",
            "Protocol error: unexpected reply type byte 0x00",
        );
        fails(b"$-2\r\n", "Protocol error: invalid bulk length");
        fails(b"$x\r\n", "Protocol error: invalid bulk length");
        fails(b"!-1\r\n", "Protocol error: invalid bulk length");
        fails(
            b"$3\r\nfooXY",
            "Protocol error: expected CRLF after bulk payload",
        );
        fails(b"*-2\r\n", "Protocol error: invalid multibulk length");
        fails(b"%-1\r\n", "Protocol error: invalid multibulk length");
        fails(b"*2000000\r\n", "Protocol error: invalid multibulk length");
        fails(b":1x\r\n", "Protocol error: invalid integer");
        fails(b",x\r\n", "Protocol error: invalid double");
        fails(b"#x\r\n", "Protocol error: invalid boolean");
        fails(b"_x\r\n", "Protocol error: invalid null");
        fails(b"(\r\n", "Protocol error: invalid big number");
        fails(b"=3\r\ntxt\r\n", "Protocol error: invalid verbatim string");
        fails(b"=4\r\ntxt-\r\n", "Protocol error: invalid verbatim string");
        fails(b"+a\rb\r\n", "Protocol error: expected '\\n' after '\\r'");
        let mut long = vec![b'+'];
        long.resize(70_000, b'a');
        fails(&long, "Protocol error: too big reply line");
    }

    #[test]
    fn nesting_is_capped_without_recursion() {
        let ok_depth = b"*1\r\n".repeat(MAX_NESTING_DEPTH);
        let mut input = ok_depth.clone();
        input.extend_from_slice(b":1\r\n");
        let mut expected = Frame::Integer(1);
        for _ in 0..MAX_NESTING_DEPTH {
            expected = Frame::Array(vec![expected]);
        }
        ok(&input, expected);

        let deep = b"*1\r\n".repeat(1_000_000);
        fails(&deep, "Protocol error: reply nesting too deep");
        let attrs = b"|1\r\n".repeat(MAX_NESTING_DEPTH + 1);
        fails(&attrs, "Protocol error: reply nesting too deep");
    }

    #[test]
    fn strings_share_the_input_buffer() {
        let mut buf = BytesMut::from(&b"*1\r\n$5\r\nhello\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let frame = decode_frame(&mut buf, &Limits::default());
        match frame {
            Ok(Some(Frame::Array(items))) => match items.first() {
                Some(Frame::Bulk(b)) => assert_eq!(b.as_ptr() as usize, base + 8),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}
