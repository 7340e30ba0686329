//! Fuzz target for `decode_frame`: no panics, progress on success, chunking independence, and encode/decode round trips.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shoal_resp::{decode_frame, encode, Frame, Limits, Protocol};

/// What re-encoding a decoded frame as RESP3 and decoding it again must give: line breaks
/// in status, error and big number text become spaces, and RESP3 has a single null.
fn resp3_normal(frame: &Frame) -> Frame {
    let spaced = |b: &Bytes| -> Bytes {
        b.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect::<Vec<u8>>()
            .into()
    };
    match frame {
        Frame::Simple(s) => Frame::Simple(spaced(s)),
        Frame::Error(s) => Frame::Error(spaced(s)),
        Frame::BigNumber(s) => Frame::BigNumber(spaced(s)),
        Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(v.iter().map(resp3_normal).collect()),
        Frame::Set(v) => Frame::Set(v.iter().map(resp3_normal).collect()),
        Frame::Push(v) => Frame::Push(v.iter().map(resp3_normal).collect()),
        Frame::Map(v) => Frame::Map(
            v.iter()
                .map(|(k, v)| (resp3_normal(k), resp3_normal(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Frame equality that treats every NaN as equal to every other NaN.
fn same(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Double(x), Frame::Double(y)) => (x.is_nan() && y.is_nan()) || x == y,
        (Frame::Array(x), Frame::Array(y))
        | (Frame::Set(x), Frame::Set(y))
        | (Frame::Push(x), Frame::Push(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Frame::Map(x), Frame::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ak, av), (bk, bv))| same(ak, bk) && same(av, bv))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bulk_len: 1 << 20,
        max_multibulk_len: 1 << 16,
        max_inline_len: 1 << 12,
    };
    let mut buf = BytesMut::from(data);
    let mut frames = Vec::new();
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, &limits) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a frame must consume input");
                frames.push(frame);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete frame consumes nothing");
                break;
            }
            Err(_) => break,
        }
    }

    // Cutting the input short never turns a complete first frame into an error.
    if !frames.is_empty() {
        let mut whole = BytesMut::from(data);
        let _ = decode_frame(&mut whole, &limits);
        let len = data.len() - whole.len();
        for cut in [len / 3, len / 2, len.saturating_sub(1)] {
            let mut part = BytesMut::from(&data[..cut]);
            assert_eq!(
                decode_frame(&mut part, &limits),
                Ok(None),
                "cut {cut} of {len}"
            );
        }
    }

    // A RESP2 map is an array twice as long, so the round trip allows for that.
    let lax = Limits {
        max_multibulk_len: 1 << 17,
        ..limits
    };
    for frame in &frames {
        let mut wire = BytesMut::new();
        encode(frame, Protocol::Resp3, &mut wire);
        match decode_frame(&mut wire, &lax) {
            Ok(Some(back)) => {
                let expected = resp3_normal(frame);
                assert!(same(&back, &expected), "{back:?} != {expected:?}");
                assert!(wire.is_empty());
            }
            other => panic!("re-encoded {frame:?} did not decode: {other:?}"),
        }
        let mut wire2 = BytesMut::new();
        encode(frame, Protocol::Resp2, &mut wire2);
        assert!(matches!(decode_frame(&mut wire2, &lax), Ok(Some(_))));
    }
});
