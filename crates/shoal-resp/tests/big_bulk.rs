//! Checks that a large bulk argument is received in place: reserved once in the input buffer and handed out without a copy.

use bytes::BytesMut;
use shoal_resp::{Limits, RequestParser};

const READ_SIZE: usize = 64 * 1024;

#[test]
fn ten_megabyte_bulk_fed_in_64k_reads_is_never_copied() {
    let len = 10 * 1024 * 1024;
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut wire = format!("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n${len}\r\n").into_bytes();
    wire.extend_from_slice(&payload);
    wire.extend_from_slice(b"\r\n");

    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    // Start of the reserved payload area once the parser has learned the bulk's length.
    let mut payload_area: Option<*const u8> = None;
    let mut args = None;
    let mut reads = 0;

    for chunk in wire.chunks(READ_SIZE) {
        let before = buf.as_ptr();
        // Stands in for a socket read into the buffer's spare capacity.
        buf.extend_from_slice(chunk);
        reads += 1;
        if payload_area.is_some() {
            assert_eq!(
                buf.as_ptr(),
                before,
                "read {reads} moved the buffer after the bulk was reserved"
            );
        }
        match parser.parse(&mut buf, &limits) {
            Ok(Some(done)) => args = Some(done),
            Ok(None) => {
                if payload_area.is_none() {
                    // The first read carried every header, so the parser now sits at the
                    // payload and must have made room for all of it plus the CRLF.
                    assert!(parser.in_progress());
                    assert!(buf.capacity() >= len + 2, "capacity {}", buf.capacity());
                    payload_area = Some(buf.as_ptr());
                }
            }
            Err(e) => panic!("unexpected protocol error: {e}"),
        }
    }

    let args = args.unwrap_or_else(|| panic!("the command never completed"));
    assert_eq!(args.len(), 3);
    assert_eq!(&args[0][..], b"SET");
    assert_eq!(&args[2][..], &payload[..]);
    assert_eq!(
        Some(args[2].as_ptr()),
        payload_area,
        "the payload must be the very bytes the reads filled in place"
    );
    assert!(buf.is_empty());
    assert!(!parser.in_progress());
    assert!(reads > 100);
}

#[test]
fn small_bulks_do_not_trigger_a_reservation() {
    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"*1\r\n$1000\r\n");
    assert_eq!(parser.parse(&mut buf, &limits), Ok(None));
    assert!(buf.capacity() < 1000);
}
