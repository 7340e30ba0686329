//! Transcript-style tests of `RequestParser`: bytes a client sends and the commands or the exact Redis error the server sees.

use bytes::BytesMut;
use shoal_resp::{Limits, RequestParser};

/// What the server sees after handing the parser some bytes.
#[derive(Debug, PartialEq)]
enum Seen {
    Cmd(Vec<String>),
    Err(String),
}

fn cmd(args: &[&str]) -> Seen {
    Seen::Cmd(args.iter().map(|a| a.to_string()).collect())
}

fn error(message: &str) -> Seen {
    Seen::Err(message.to_string())
}

/// Drains every complete request from `buf`, stopping at the first error like the server.
fn drain(
    parser: &mut RequestParser,
    buf: &mut BytesMut,
    limits: &Limits,
    seen: &mut Vec<Seen>,
) -> bool {
    loop {
        match parser.parse(buf, limits) {
            Ok(Some(args)) => {
                assert!(!args.is_empty());
                seen.push(Seen::Cmd(
                    args.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect(),
                ));
            }
            Ok(None) => return true,
            Err(e) => {
                seen.push(Seen::Err(e.message));
                return false;
            }
        }
    }
}

/// Feeds `input` in one piece.
fn whole(input: &[u8], limits: &Limits) -> Vec<Seen> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(input);
    let mut seen = Vec::new();
    drain(&mut parser, &mut buf, limits, &mut seen);
    seen
}

/// Feeds `input` one byte at a time.
fn trickle(input: &[u8], limits: &Limits) -> Vec<Seen> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    for &b in input {
        buf.extend_from_slice(&[b]);
        if !drain(&mut parser, &mut buf, limits, &mut seen) {
            break;
        }
    }
    seen
}

/// Asserts the transcript, both in one piece and byte by byte.
fn transcript(input: &[u8], expected: &[Seen]) {
    transcript_with(input, &Limits::default(), expected);
}

fn transcript_with(input: &[u8], limits: &Limits, expected: &[Seen]) {
    let label = String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned();
    assert_eq!(whole(input, limits), expected, "whole: {label:?}");
    assert_eq!(trickle(input, limits), expected, "trickle: {label:?}");
}

#[test]
fn client_sends_a_multibulk_ping() {
    transcript(b"*1\r\n$4\r\nPING\r\n", &[cmd(&["PING"])]);
}

#[test]
fn client_sends_binary_safe_bulks() {
    transcript(
        b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n",
        &[cmd(&["SET", "a\r\nb", ""])],
    );
}

#[test]
fn client_pipelines_mixed_requests_in_one_buffer() {
    transcript(
        b"*1\r\n$4\r\nPING\r\nECHO hello\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nget k\n",
        &[
            cmd(&["PING"]),
            cmd(&["ECHO", "hello"]),
            cmd(&["SET", "k", "v"]),
            cmd(&["get", "k"]),
        ],
    );
}

#[test]
fn empty_lines_and_empty_multibulks_are_skipped() {
    transcript(
        b"\r\n\n   \r\n\t\n*0\r\n*-1\r\n*-100\r\nPING\r\n",
        &[cmd(&["PING"])],
    );
}

#[test]
fn inline_quoting_follows_sdssplitargs() {
    transcript(b"set \"a b\" 'c d'\r\n", &[cmd(&["set", "a b", "c d"])]);
    transcript(
        b"echo \"tab\\there\\x41\\\"\" 'it\\'s'\n",
        &[cmd(&["echo", "tab\there\x41\"", "it's"])],
    );
    transcript(
        b"echo pre\"mid dle\" x\r\n",
        &[cmd(&["echo", "premid dle", "x"])],
    );
    transcript(b"echo \"\" ''\r\n", &[cmd(&["echo", "", ""])]);
    transcript(b"a\rb\r\n", &[cmd(&["a", "b"])]);
}

#[test]
fn inline_line_without_carriage_return_is_accepted() {
    transcript(b"PING\nPING\r\n", &[cmd(&["PING"]), cmd(&["PING"])]);
}

#[test]
fn unbalanced_quotes_are_a_protocol_error() {
    for input in [
        &b"set \"abc\r\n"[..],
        b"set 'abc\r\n",
        b"set \"abc\"def\r\n",
        b"set 'abc'def\r\n",
        b"set \"abc\\\"\r\n",
    ] {
        transcript(
            input,
            &[error("Protocol error: unbalanced quotes in request")],
        );
    }
}

#[test]
fn commands_before_an_error_are_still_delivered() {
    transcript(
        b"PING\r\n*1\r\n:1\r\n",
        &[
            cmd(&["PING"]),
            error("Protocol error: expected '$', got ':'"),
        ],
    );
}

#[test]
fn too_big_inline_request() {
    let mut input = vec![b'a'; 64 * 1024];
    // Exactly the limit is still waited on.
    assert_eq!(whole(&input, &Limits::default()), vec![]);
    input.push(b'a');
    transcript(&input, &[error("Protocol error: too big inline request")]);
}

#[test]
fn long_inline_line_that_arrives_whole_is_accepted_like_redis() {
    let mut input = b"echo ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 70_000));
    input.extend_from_slice(b"\r\n");
    let seen = whole(&input, &Limits::default());
    assert_eq!(seen.len(), 1);
    assert!(matches!(&seen[0], Seen::Cmd(args) if args.len() == 2 && args[1].len() == 70_000));
    // Trickled, the same line exceeds the buffer limit before its end arrives.
    assert_eq!(
        trickle(&input, &Limits::default()),
        vec![error("Protocol error: too big inline request")]
    );
}

#[test]
fn too_big_mbulk_count_string() {
    let mut input = b"*".to_vec();
    input.extend(std::iter::repeat_n(b'1', 64 * 1024));
    transcript(
        &input,
        &[error("Protocol error: too big mbulk count string")],
    );
}

#[test]
fn too_big_bulk_count_string() {
    let mut input = b"*1\r\n$".to_vec();
    input.extend(std::iter::repeat_n(b'1', 64 * 1024));
    transcript(
        &input,
        &[error("Protocol error: too big bulk count string")],
    );
}

#[test]
fn invalid_multibulk_length() {
    for input in [
        &b"*abc\r\n"[..],
        b"*\r\n",
        b"*-\r\n",
        b"*-0\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"* 1\r\n",
        b"*1 \r\n",
        b"*1048577\r\n",
        b"*99999999999999999999\r\n",
        b"*3\n$3\r\n",
    ] {
        transcript(input, &[error("Protocol error: invalid multibulk length")]);
    }
    // The cap itself is accepted; the parser then waits for the elements.
    assert_eq!(whole(b"*1048576\r\n", &Limits::default()), vec![]);
}

#[test]
fn multibulk_length_limit_is_configurable() {
    let limits = Limits {
        max_multibulk_len: 2,
        ..Limits::default()
    };
    transcript_with(
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n",
        &limits,
        &[
            cmd(&["a", "b"]),
            error("Protocol error: invalid multibulk length"),
        ],
    );
}

#[test]
fn expected_dollar() {
    transcript(
        b"*1\r\nfoo\r\n",
        &[error("Protocol error: expected '$', got 'f'")],
    );
    transcript(
        b"*2\r\n$1\r\na\r\n*1\r\n",
        &[error("Protocol error: expected '$', got '*'")],
    );
    // Redis' error reply maps line breaks to spaces.
    transcript(
        b"*1\r\n\r\n",
        &[error("Protocol error: expected '$', got ' '")],
    );
    // Redis only judges the element once its whole line is buffered.
    assert_eq!(whole(b"*1\r\nfoo", &Limits::default()), vec![]);
}

#[test]
fn invalid_bulk_length() {
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$536870913\r\n",
        b"*1\r\n$9223372036854775808\r\n",
    ] {
        transcript(input, &[error("Protocol error: invalid bulk length")]);
    }
    let limits = Limits {
        max_bulk_len: 3,
        ..Limits::default()
    };
    transcript_with(
        b"*2\r\n$3\r\nabc\r\n$4\r\nabcd\r\n",
        &limits,
        &[error("Protocol error: invalid bulk length")],
    );
}

#[test]
fn bytes_after_terminators_are_skipped_unchecked_like_redis() {
    // Redis finds the `\r` of a length line and skips the next byte without looking at it,
    // and skips the two bytes after a bulk payload the same way.
    transcript(b"*1\rX$3\r\nfooXY", &[cmd(&["foo"])]);
    transcript(b"*2\r\n$1\r!a\r\n$1\r\nb??", &[cmd(&["a", "b"])]);
}

#[test]
fn pending_bytes_and_in_progress_track_the_partial_request() {
    let limits = Limits::default();
    let mut parser = RequestParser::default();
    let mut buf = BytesMut::new();
    assert!(!parser.in_progress());
    assert_eq!(parser.pending_bytes(), 0);

    // A partial header is not consumed.
    buf.extend_from_slice(b"*2\r");
    assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
    assert!(!parser.in_progress());
    assert_eq!(buf.len(), 3);

    buf.extend_from_slice(b"\n$3\r\nfoo\r\n$5\r\nhel");
    assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
    assert!(parser.in_progress());
    // `*2\r\n` + `$3\r\n` + `foo\r\n` + `$5\r\n`.
    assert_eq!(parser.pending_bytes(), 4 + 4 + 5 + 4);
    assert_eq!(&buf[..], b"hel");

    buf.extend_from_slice(b"lo\r\n");
    let args = parser.parse(&mut buf, &limits);
    assert_eq!(args, Ok(Some(vec!["foo".into(), "hello".into()])));
    assert!(!parser.in_progress());
    assert_eq!(parser.pending_bytes(), 0);
    assert!(buf.is_empty());
}

#[test]
fn parser_is_idle_after_an_error() {
    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(&b"*2\r\n$1\r\na\r\n$x\r\n"[..]);
    assert!(parser.parse(&mut buf, &limits).is_err());
    assert!(!parser.in_progress());
    assert_eq!(parser.pending_bytes(), 0);
    // The offending bytes are left in place.
    assert_eq!(&buf[..], b"$x\r\n");
}

#[test]
fn huge_claimed_count_reserves_nothing_up_front() {
    // A header claiming a million arguments, and nothing else, must be cheap; this mostly
    // documents the behaviour, the capacity bound itself is checked by a unit test.
    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(&b"*1000000\r\n"[..]);
    assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
    assert!(parser.in_progress());
    assert_eq!(parser.pending_bytes(), 10);
}

#[test]
fn nul_bytes_are_ordinary_inline_bytes() {
    // Redis' C-string handling would stall on a NUL; Shoal treats it as data.
    transcript(b"echo a\0b\r\n", &[cmd(&["echo", "a\0b"])]);
}
