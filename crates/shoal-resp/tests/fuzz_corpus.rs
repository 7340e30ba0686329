//! Replays the committed fuzz corpora (`fuzz/corpus/`) through the parser and the decoder as an
//! ordinary test, so CI re-checks every input the fuzzer found interesting without needing
//! cargo-fuzz or a nightly compiler.

use std::path::Path;

use bytes::BytesMut;
use shoal_resp::{decode_frame, Limits, RequestParser};

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus directory exists") {
        let path = entry.expect("readable directory entry").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        out.push((path.display().to_string(), data));
    }
    assert!(!out.is_empty(), "empty corpus at {}", dir.display());
    out
}

/// Feeds `data` whole and one byte at a time; both must end the same way without panicking.
fn parse_all(data: &[u8], chunk: usize) -> (Vec<Vec<bytes::Bytes>>, Option<String>) {
    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&mut buf, &limits) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a command always has a name");
                    commands.push(args);
                }
                Ok(None) => break,
                Err(e) => return (commands, Some(e.message)),
            }
        }
    }
    (commands, None)
}

#[test]
fn request_parser_corpus_replays_cleanly() {
    for (name, data) in corpus("request_parser") {
        let whole = parse_all(&data, data.len());
        let bytewise = parse_all(&data, 1);
        assert_eq!(whole, bytewise, "chunking changed the outcome for {name}");
    }
}

#[test]
fn frame_decoder_corpus_replays_cleanly() {
    let limits = Limits::default();
    for (_, data) in corpus("frame_decoder") {
        let mut buf = BytesMut::from(&data[..]);
        // Decode until the input is exhausted, incomplete or invalid; none of them may panic.
        while let Ok(Some(_)) = decode_frame(&mut buf, &limits) {}
    }
}
