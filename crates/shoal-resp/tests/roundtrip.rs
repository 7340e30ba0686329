//! Property tests: requests survive any chunking, and frames survive encode/decode in RESP3 and as their documented RESP2 downgrade.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use shoal_resp::{decode_frame, encode, Frame, Limits, Protocol, ProtocolError, RequestParser};

/// Writes `args` the way every client library sends a command.
fn multibulk(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Splits `wire` at the given cut points (taken modulo its length).
fn pieces(wire: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| wire[w[0]..w[1]].to_vec())
        .collect()
}

type Outcome = (Vec<Vec<Bytes>>, Option<ProtocolError>, Vec<u8>);

/// Feeds `chunks` in order, draining the parser after each like the server does.
fn feed(chunks: &[Vec<u8>], limits: &Limits) -> Outcome {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&mut buf, limits) {
                Ok(Some(args)) => commands.push(args),
                Ok(None) => break,
                Err(e) => return (commands, Some(e), Vec::new()),
            }
        }
    }
    (commands, None, buf.to_vec())
}

fn arg_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn multibulk_args_survive_any_chunking(
        commands in vec(vec(arg_bytes(), 1..6), 1..5),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for args in &commands {
            multibulk(args, &mut wire);
        }
        let (got, error, leftover) = feed(&pieces(&wire, &cuts), &Limits::default());
        prop_assert_eq!(error, None);
        prop_assert!(leftover.is_empty());
        let got: Vec<Vec<Vec<u8>>> = got
            .iter()
            .map(|args| args.iter().map(|a| a.to_vec()).collect())
            .collect();
        prop_assert_eq!(got, commands);
    }

    #[test]
    fn double_quoted_inline_args_survive_any_chunking(
        args in vec(arg_bytes(), 1..6),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
        hex in any::<bool>(),
    ) {
        // Every byte written either as `\xHH` or, where that is unambiguous, escaped by hand.
        let mut line = Vec::new();
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            line.push(b'"');
            for &b in arg {
                match b {
                    _ if hex => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                    b'\n' => line.extend_from_slice(b"\\n"),
                    b'\r' => line.extend_from_slice(b"\\r"),
                    b'"' | b'\\' => line.extend_from_slice(&[b'\\', b]),
                    _ => line.push(b),
                }
            }
            line.push(b'"');
        }
        line.extend_from_slice(b"\r\n");
        let (got, error, leftover) = feed(&pieces(&line, &cuts), &Limits::default());
        prop_assert_eq!(error, None);
        prop_assert!(leftover.is_empty());
        prop_assert_eq!(got.len(), 1);
        let got: Vec<Vec<u8>> = got[0].iter().map(|a| a.to_vec()).collect();
        prop_assert_eq!(got, args);
    }

    #[test]
    fn plain_inline_words_split_on_blanks(
        words in vec("[a-zA-Z0-9_:.$*+-]{1,10}", 1..6),
        seps in vec("[ \t]{1,3}", 6),
        lf_only in any::<bool>(),
    ) {
        // The line starts with blanks, so even a first word starting with `*` stays inline.
        let mut line = seps[5].clone().into_bytes();
        for (word, sep) in words.iter().zip(&seps) {
            line.extend_from_slice(word.as_bytes());
            line.extend_from_slice(sep.as_bytes());
        }
        line.extend_from_slice(if lf_only { b"\n" } else { b"\r\n" });
        let (got, error, _) = feed(&[line], &Limits::default());
        prop_assert_eq!(error, None);
        prop_assert_eq!(got.len(), 1);
        let got: Vec<String> = got[0].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        prop_assert_eq!(got, words);
    }

    /// Whatever bytes arrive, the commands and the error seen do not depend on how the
    /// bytes were split into reads (with default limits no "too big" error can fire here).
    #[test]
    fn parser_outcome_does_not_depend_on_chunking(
        soup in vec(prop_oneof![
            Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'1'),
            Just(b'2'), Just(b'3'), Just(b'-'), Just(b'"'), Just(b'\''), Just(b'\\'),
            Just(b' '), Just(b'x'), Just(b'a'),
        ], 0..160),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let limits = Limits::default();
        let whole = feed(std::slice::from_ref(&soup), &limits);
        let chunked = feed(&pieces(&soup, &cuts), &limits);
        let trickled = feed(&soup.iter().map(|&b| vec![b]).collect::<Vec<_>>(), &limits);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole, &trickled);
    }
}

/// Text for status and error lines: the encoder maps `\r`/`\n` to spaces, so these
/// generators leave them out (a unit test covers the mapping).
fn line_text() -> impl Strategy<Value = Bytes> {
    "[^\r\n]{0,20}".prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line_text().prop_map(Frame::Simple),
        line_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        Just(Frame::NullArray),
        any::<f64>()
            .prop_filter("NaN never equals itself", |d| !d.is_nan())
            .prop_map(Frame::Double),
        Just(Frame::Double(f64::INFINITY)),
        Just(Frame::Double(f64::NEG_INFINITY)),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[1-9][0-9]{0,40}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
        ("[a-z]{3}", blob()).prop_map(|(f, text)| {
            let mut format = [0u8; 3];
            format.copy_from_slice(&f.as_bytes()[..3]);
            Frame::Verbatim { format, text }
        }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Frame::Array),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
            vec(inner.clone(), 0..6).prop_map(Frame::Set),
            vec(inner, 0..6).prop_map(Frame::Push),
        ]
    })
}

/// RESP3 has a single null, so `NullArray` comes back as `Null`.
fn resp3_shape(frame: &Frame) -> Frame {
    let all = |v: &[Frame]| v.iter().map(resp3_shape).collect::<Vec<_>>();
    match frame {
        Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(all(v)),
        Frame::Set(v) => Frame::Set(all(v)),
        Frame::Push(v) => Frame::Push(all(v)),
        Frame::Map(v) => Frame::Map(
            v.iter()
                .map(|(k, v)| (resp3_shape(k), resp3_shape(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The RESP2 downgrade documented on each `Frame` variant.
fn resp2_shape(frame: &Frame) -> Frame {
    let all = |v: &[Frame]| v.iter().map(resp2_shape).collect::<Vec<_>>();
    match frame {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => Frame::Array(all(v)),
        Frame::Map(v) => Frame::Array(
            v.iter()
                .flat_map(|(k, v)| [resp2_shape(k), resp2_shape(v)])
                .collect(),
        ),
        Frame::Double(d) => Frame::Bulk(Bytes::copy_from_slice(
            shoal_resp::format_double(*d).as_bytes(),
        )),
        Frame::Boolean(b) => Frame::Integer(i64::from(*b)),
        Frame::BigNumber(n) => Frame::Bulk(n.clone()),
        Frame::Verbatim { text, .. } => Frame::Bulk(text.clone()),
        other => other.clone(),
    }
}

fn decode_whole(wire: &BytesMut) -> Result<Option<Frame>, ProtocolError> {
    let mut buf = wire.clone();
    let frame = decode_frame(&mut buf, &Limits::default());
    if buf.is_empty() {
        frame
    } else {
        Err(ProtocolError::new(format!("{} bytes left over", buf.len())))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resp3_encode_then_decode_gives_the_frame_back(frame in arb_frame()) {
        let mut wire = BytesMut::new();
        encode(&frame, Protocol::Resp3, &mut wire);
        prop_assert_eq!(decode_whole(&wire), Ok(Some(resp3_shape(&frame))));
    }

    #[test]
    fn resp2_encode_then_decode_gives_the_documented_downgrade(frame in arb_frame()) {
        let mut wire = BytesMut::new();
        encode(&frame, Protocol::Resp2, &mut wire);
        prop_assert_eq!(decode_whole(&wire), Ok(Some(resp2_shape(&frame))));
    }

    #[test]
    fn decoder_waits_for_every_prefix(frame in arb_frame(), cut in any::<prop::sample::Index>()) {
        let mut wire = BytesMut::new();
        encode(&frame, Protocol::Resp3, &mut wire);
        let cut = cut.index(wire.len());
        let mut part = BytesMut::from(&wire[..cut]);
        prop_assert_eq!(decode_frame(&mut part, &Limits::default()), Ok(None));
        prop_assert_eq!(part.len(), cut);
        // The rest arriving later completes the same frame.
        part.extend_from_slice(&wire[cut..]);
        prop_assert_eq!(decode_frame(&mut part, &Limits::default()), Ok(Some(resp3_shape(&frame))));
    }

    #[test]
    fn doubles_survive_their_repr(d in any::<f64>()) {
        let repr = shoal_resp::format_double(d);
        let back: f64 = repr.as_str().parse().unwrap_or(f64::NAN);
        if d.is_nan() {
            prop_assert!(back.is_nan());
        } else {
            prop_assert_eq!(back.to_bits(), d.to_bits());
        }
    }
}
