//! Owns the incremental client request parser (RESP multibulk and inline commands) with Redis 7 semantics.
//!
//! The behaviour mirrors Redis' `processInlineBuffer` and `processMultibulkBuffer`:
//! * a request starting with `*` is a multibulk, anything else is an inline line;
//! * length lines are terminated by the first `\r`, and the byte after it is skipped
//!   without being checked, exactly like Redis (it assumes `\n`);
//! * the two bytes after a bulk payload are skipped without being checked, like Redis;
//! * "too big" errors fire only while no terminator has arrived and more than
//!   `max_inline_len` bytes are buffered, so a long line that arrives complete is judged
//!   by its content, as in Redis;
//! * empty inline lines and multibulks with a count `<= 0` are skipped silently.

use bytes::{Buf, Bytes, BytesMut};

use crate::inline::split_args;
use crate::limits::{Limits, ProtocolError};
use crate::scan::{find_byte, parse_ll};

/// Bulk payloads at least this large get their whole size reserved in the input buffer as
/// soon as their length is known (Redis' `PROTO_MBULK_BIG_ARG`), so that later reads land in
/// place and the final `split_to(..).freeze()` hands out the payload without copying it.
const BIG_ARG: usize = 32 * 1024;

/// Argument vectors are never preallocated beyond this many slots from a peer's claim, so a
/// bare `*1000000` header costs nothing until the arguments actually arrive.
const MAX_PREALLOC_ARGS: usize = 1024;

/// Requests with at most this many arguments, all small, are parsed by the one-pass fast path
/// when they arrive whole.
const FAST_MAX_ARGS: usize = 16;

/// Where the parser stands between calls.
#[derive(Debug)]
enum State {
    /// Between requests; nothing of the next request has been consumed yet.
    Idle,
    /// Inside a multibulk whose header has been consumed.
    Multibulk {
        /// Elements still to read.
        remaining: usize,
        /// Elements read so far.
        args: Vec<Bytes>,
        /// Length of the bulk whose `$<len>` line was consumed but whose payload was not.
        bulk_len: Option<usize>,
        /// Bytes of this request already removed from the buffer.
        consumed: usize,
    },
}

/// Incremental request parser: a client request is either a RESP multibulk
/// (`*<n>\r\n$<len>\r\n...`) or an inline command line.
///
/// The same buffer must be passed to every call, and the caller may only append to it: the
/// parser remembers how far it already searched for a line terminator so that a hostile
/// client trickling a 64 KiB line one byte at a time costs linear, not quadratic, time.
#[derive(Debug)]
pub struct RequestParser {
    state: State,
    /// Leading bytes of the buffer already known to hold no terminator for the line that is
    /// currently being looked for. Reset whenever bytes are consumed.
    scanned: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

fn err(message: &str) -> ProtocolError {
    ProtocolError::new(message)
}

/// Renders the offending byte of "expected '$', got 'X'" the way Redis' reply does: its
/// `%c` output has `\r` and `\n` mapped to spaces, and a NUL cuts the C string short.
/// Bytes outside ASCII cannot be carried verbatim in a `String`, so they appear as the
/// Unicode code point of the same value.
fn expected_dollar(got: u8) -> ProtocolError {
    let mut message = String::from("Protocol error: expected '$', got '");
    match got {
        0 => {}
        b'\r' | b'\n' => message.push_str(" '"),
        other => {
            message.push(char::from(other));
            message.push('\'');
        }
    }
    ProtocolError::new(message)
}

/// Outcome of looking for a `\r`-terminated length line at the front of the buffer.
enum Line {
    /// The line body ends at this index; the terminator and the byte after it follow.
    Complete(usize),
    /// More bytes are needed.
    Partial,
}

impl RequestParser {
    /// Creates an idle parser.
    pub fn new() -> Self {
        RequestParser {
            state: State::Idle,
            scanned: 0,
        }
    }

    /// Bytes of the request currently being assembled that were already consumed from buf
    /// (for the query-buffer limit accounting); 0 when idle.
    pub fn pending_bytes(&self) -> usize {
        match &self.state {
            State::Idle => 0,
            State::Multibulk { consumed, .. } => *consumed,
        }
    }

    /// True when the parser is in the middle of a request.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Multibulk { .. })
    }

    /// Tries to take one complete request from the front of `buf`.
    ///
    /// * `Ok(Some(args))`: one command, `args` is never empty; its bytes were removed from `buf`.
    /// * `Ok(None)`: more bytes are needed. Parts of a multibulk that are already complete
    ///   may have been moved out of `buf` into the parser (see [`Self::pending_bytes`]).
    /// * `Err(e)`: a protocol violation; the server replies `-ERR {e}` and closes the
    ///   connection. The parser is reset to idle and `buf` is left at the offending bytes.
    ///
    /// Empty inline lines and `*0`/`*-1` multibulks are skipped silently, like Redis.
    /// Bulk payloads are handed out with `split_to(..).freeze()`, never copied.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.parse_inner(buf, limits);
        if result.is_err() {
            self.state = State::Idle;
            self.scanned = 0;
        }
        result
    }

    fn parse_inner(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if matches!(self.state, State::Idle) {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first == b'*' {
                    if let Some(args) = whole_multibulk(buf, limits) {
                        self.scanned = 0;
                        return Ok(Some(args));
                    }
                }
                let request = if first == b'*' {
                    self.parse_multibulk_header(buf, limits)?
                } else {
                    self.parse_inline(buf, limits)?
                };
                match request {
                    Step::NeedMore => return Ok(None),
                    Step::Skip => continue,
                    Step::Done(args) => return Ok(Some(args)),
                    Step::Started => {}
                }
            }
            return self.parse_multibulk_body(buf, limits);
        }
    }

    /// Finds the `\r` ending a length line, resuming the search where the last call stopped.
    /// Like Redis it also insists that one more byte (assumed `\n`) is buffered.
    fn find_length_line(
        &mut self,
        buf: &BytesMut,
        limits: &Limits,
        too_big: &str,
    ) -> Result<Line, ProtocolError> {
        let from = self.scanned.min(buf.len());
        match find_byte(&buf[from..], b'\r') {
            Some(i) => {
                let cr = from + i;
                if cr + 2 > buf.len() {
                    self.scanned = cr;
                    Ok(Line::Partial)
                } else {
                    Ok(Line::Complete(cr))
                }
            }
            None => {
                self.scanned = buf.len();
                if buf.len() > limits.max_inline_len {
                    Err(err(too_big))
                } else {
                    Ok(Line::Partial)
                }
            }
        }
    }

    /// Removes `n` bytes that belong to the current request's framing from the buffer.
    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.scanned = 0;
    }

    fn parse_inline(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Step, ProtocolError> {
        let from = self.scanned.min(buf.len());
        let Some(i) = find_byte(&buf[from..], b'\n') else {
            self.scanned = buf.len();
            if buf.len() > limits.max_inline_len {
                return Err(err("Protocol error: too big inline request"));
            }
            return Ok(Step::NeedMore);
        };
        let newline = from + i;
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let args = split_args(&buf[..line_end])
            .ok_or_else(|| err("Protocol error: unbalanced quotes in request"))?;
        let line = buf.split_to(newline + 1).freeze();
        self.scanned = 0;
        if args.is_empty() {
            return Ok(Step::Skip);
        }
        Ok(Step::Done(
            args.into_iter().map(|a| a.into_bytes(&line)).collect(),
        ))
    }

    fn parse_multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Step, ProtocolError> {
        let cr = match self.find_length_line(
            buf,
            limits,
            "Protocol error: too big mbulk count string",
        )? {
            Line::Partial => return Ok(Step::NeedMore),
            Line::Complete(cr) => cr,
        };
        let count = parse_ll(&buf[1..cr])
            .filter(|&n| n <= 0 || usize::try_from(n).is_ok_and(|n| n <= limits.max_multibulk_len))
            .ok_or_else(|| err("Protocol error: invalid multibulk length"))?;
        self.consume(buf, cr + 2);
        let Ok(count) = usize::try_from(count) else {
            return Ok(Step::Skip);
        };
        if count == 0 {
            return Ok(Step::Skip);
        }
        self.state = State::Multibulk {
            remaining: count,
            args: Vec::with_capacity(count.min(MAX_PREALLOC_ARGS)),
            bulk_len: None,
            consumed: cr + 2,
        };
        Ok(Step::Started)
    }

    fn parse_multibulk_body(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let State::Multibulk { bulk_len, .. } = &self.state else {
                return Ok(None);
            };
            let len = match *bulk_len {
                Some(len) => len,
                None => {
                    let cr = match self.find_length_line(
                        buf,
                        limits,
                        "Protocol error: too big bulk count string",
                    )? {
                        Line::Partial => return Ok(None),
                        Line::Complete(cr) => cr,
                    };
                    // `cr + 2 <= buf.len()` here, so the buffer holds at least two bytes.
                    let first = buf.first().copied().unwrap_or(0);
                    if first != b'$' {
                        return Err(expected_dollar(first));
                    }
                    let len = parse_ll(&buf[1..cr])
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n <= limits.max_bulk_len)
                        .ok_or_else(|| err("Protocol error: invalid bulk length"))?;
                    self.consume(buf, cr + 2);
                    if let State::Multibulk {
                        bulk_len, consumed, ..
                    } = &mut self.state
                    {
                        *bulk_len = Some(len);
                        *consumed += cr + 2;
                    }
                    let needed = len.saturating_add(2);
                    if len >= BIG_ARG && buf.len() < needed {
                        // Make room for the whole payload once, now, so that the reads that
                        // follow fill it in place instead of growing the buffer repeatedly.
                        buf.reserve(needed - buf.len());
                    }
                    len
                }
            };
            if buf.len() < len.saturating_add(2) {
                return Ok(None);
            }
            let payload = buf.split_to(len).freeze();
            // Redis skips the two bytes after the payload without checking them.
            self.consume(buf, 2);
            let State::Multibulk {
                remaining,
                args,
                bulk_len,
                consumed,
            } = &mut self.state
            else {
                return Ok(None);
            };
            args.push(payload);
            *bulk_len = None;
            *consumed += len + 2;
            *remaining -= 1;
            if *remaining == 0 {
                let args = std::mem::take(args);
                self.state = State::Idle;
                return Ok(Some(args));
            }
        }
    }
}

/// The fast path for the common case, a small multibulk already whole in the buffer: one pass
/// over the bytes with nothing stored between arguments, then one cut that hands the request's
/// bytes over, each argument a slice of them (still never a copy). Anything else (incomplete,
/// malformed, a count of zero or less, more than [`FAST_MAX_ARGS`] arguments, a bulk of
/// [`BIG_ARG`] bytes or more, a limit exceeded) returns `None` without touching the buffer, and
/// the general path then produces exactly the outcome or error Redis would.
fn whole_multibulk(buf: &mut BytesMut, limits: &Limits) -> Option<Vec<Bytes>> {
    let bytes = &buf[..];
    let (count, mut at) = length_line(bytes, 1)?;
    let count = usize::try_from(count).ok()?;
    if count == 0 || count > FAST_MAX_ARGS || count > limits.max_multibulk_len {
        return None;
    }
    let mut spans = [(0usize, 0usize); FAST_MAX_ARGS];
    for span in spans.iter_mut().take(count) {
        if *bytes.get(at)? != b'$' {
            return None;
        }
        let (len, start) = length_line(bytes, at + 1)?;
        let len = usize::try_from(len).ok()?;
        if len > limits.max_bulk_len || len >= BIG_ARG {
            return None;
        }
        // Redis skips the two bytes after a payload without checking them.
        let next = start + len + 2;
        if next > bytes.len() {
            return None;
        }
        *span = (start, len);
        at = next;
    }
    let request = buf.split_to(at).freeze();
    Some(
        spans[..count]
            .iter()
            .map(|&(start, len)| request.slice(start..start + len))
            .collect(),
    )
}

/// A length line starting at `from` (after its `*` or `$`): its value and where the next line
/// starts, skipping the byte after `\r` unchecked as Redis does; `None` if it is not whole or
/// not a valid number.
fn length_line(bytes: &[u8], from: usize) -> Option<(i64, usize)> {
    let cr = from + find_byte(bytes.get(from..)?, b'\r')?;
    if cr + 2 > bytes.len() {
        return None;
    }
    Some((parse_ll(&bytes[from..cr])?, cr + 2))
}

/// What one step on an idle parser produced.
enum Step {
    /// More bytes are needed before anything can be decided.
    NeedMore,
    /// A request that Redis ignores (empty line, `*0`, `*-1`) was consumed.
    Skip,
    /// A complete inline command.
    Done(Vec<Bytes>),
    /// A multibulk header was consumed; its elements follow.
    Started,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_count_does_not_preallocate_beyond_the_bound() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1000000\r\n"[..]);
        assert_eq!(parser.parse(&mut buf, &Limits::default()), Ok(None));
        match &parser.state {
            State::Multibulk {
                args, remaining, ..
            } => {
                assert!(args.capacity() <= MAX_PREALLOC_ARGS);
                assert_eq!(*remaining, 1_000_000);
            }
            State::Idle => panic!("expected a multibulk in progress"),
        }
    }

    #[test]
    fn search_resumes_where_it_stopped() {
        let limits = Limits::default();
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$1000"[..]);
        assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
        assert_eq!(parser.scanned, 5);
        buf.extend_from_slice(b"0\r");
        assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
        assert_eq!(parser.scanned, 6);
        buf.extend_from_slice(b"\n");
        assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
        assert_eq!(parser.scanned, 0);
        assert_eq!(parser.pending_bytes(), 4 + 8);
    }
}
