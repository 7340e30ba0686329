//! Fuzz target for `RequestParser`: no panics, steady progress, and identical results however the input is chunked.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shoal_resp::{Limits, RequestParser};

/// Everything observable about one run: the commands, the error if any, and the state left.
#[derive(Debug, PartialEq)]
struct Run {
    commands: Vec<Vec<Bytes>>,
    error: Option<String>,
    leftover: Vec<u8>,
    pending: usize,
}

/// Feeds `input` in chunks of `chunk` bytes, draining the parser after each chunk like the
/// server does, and checks the per-call invariants on the way.
fn run(input: &[u8], chunk: usize, limits: &Limits) -> Run {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Run {
        commands: Vec::new(),
        error: None,
        leftover: Vec::new(),
        pending: 0,
    };
    'feed: for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match parser.parse(&mut buf, limits) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a command always has a name");
                    // Every command ends with at least one byte taken in this very call.
                    assert!(buf.len() < before, "a command must consume input");
                    out.commands.push(args);
                }
                Ok(None) => {
                    assert!(buf.len() <= before);
                    // Asking again without new bytes changes nothing.
                    let (len, pending) = (buf.len(), parser.pending_bytes());
                    assert_eq!(parser.parse(&mut buf, limits), Ok(None));
                    assert_eq!((buf.len(), parser.pending_bytes()), (len, pending));
                    break;
                }
                Err(e) => {
                    assert!(e.message.starts_with("Protocol error: "), "{}", e.message);
                    assert!(!parser.in_progress());
                    out.error = Some(e.message);
                    break 'feed;
                }
            }
        }
        assert_eq!(parser.in_progress(), parser.pending_bytes() > 0);
    }
    // After an error the connection is closed, so what was left unread depends only on
    // when the error fired and is not compared.
    if out.error.is_none() {
        out.leftover = buf.to_vec();
        out.pending = parser.pending_bytes();
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;

    // With the default limits no "too big" error can fire on a fuzz-sized input, so the
    // outcome must not depend on how the input was split.
    let limits = Limits::default();
    if input.len() <= limits.max_inline_len {
        let whole = run(input, input.len(), &limits);
        let chunked = run(input, chunk, &limits);
        assert_eq!(whole, chunked, "chunk size {chunk}");
        let trickled = run(input, 1, &limits);
        assert_eq!(whole, trickled, "byte at a time");
    }

    // Tiny limits reach the "too big" and length-limit paths; only invariants are checked.
    let tiny = Limits {
        max_bulk_len: 16,
        max_multibulk_len: 4,
        max_inline_len: 8 + usize::from(first % 8),
    };
    run(input, chunk, &tiny);
});
