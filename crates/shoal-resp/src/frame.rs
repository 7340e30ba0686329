//! Owns the `Frame` reply model shared by the encoder (server side) and the decoder (client side).

use bytes::Bytes;

/// One RESP reply value.
///
/// Every variant documents its RESP3 form and the RESP2 form [`crate::encode`] downgrades it
/// to; decoding that RESP2 form gives back the downgraded value named there.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`. `\r` and `\n` are written as spaces so a reply can never inject protocol.
    Simple(Bytes),
    /// `-ERR syntax error`: the full text without the `-`, error code included.
    /// `\r` and `\n` are written as spaces, like Redis' `addReplyErrorFormat` does.
    /// RESP3 blob errors (`!`) decode to this variant too.
    Error(Bytes),
    /// `:42` in both protocols.
    Integer(i64),
    /// `$3\r\nfoo` in both protocols.
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`. Both decode to `Null`.
    Null,
    /// RESP2 `*-1`, RESP3 `_` (which decodes back as [`Frame::Null`]).
    NullArray,
    /// `*<n>` in both protocols.
    Array(Vec<Frame>),
    /// RESP3 `%<n>`; RESP2 flattens it to an `Array` of `2n` elements, key then value.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~<n>`; RESP2 sends an `Array`.
    Set(Vec<Frame>),
    /// RESP3 `,<repr>`; RESP2 sends a `Bulk` of the same repr. The repr is Redis 7.0's:
    /// `inf`, `-inf`, otherwise C `printf("%.17g")` (see [`crate::format_double`]).
    Double(f64),
    /// RESP3 `,<text>` with a repr the command formatted itself, for doubles Redis writes in a
    /// form other than `%.17g` (the 17-decimal coordinates of `addReplyHumanLongDouble`);
    /// RESP2 sends a `Bulk` of the text. Decoding the RESP3 form gives a [`Frame::Double`].
    DoubleText(Bytes),
    /// RESP3 `#t`/`#f`; RESP2 sends `Integer` 1/0.
    Boolean(bool),
    /// RESP3 `(<digits>`; RESP2 sends a `Bulk` of the digits. Being a line, its RESP3 form
    /// has `\r` and `\n` written as spaces, like `Simple`.
    BigNumber(Bytes),
    /// RESP3 `=<len>\r\ntxt:<text>`; RESP2 sends a `Bulk` of `text` alone.
    Verbatim {
        /// The three-byte format tag, `txt` or `mkd`.
        format: [u8; 3],
        /// The text after the `xxx:` prefix.
        text: Bytes,
    },
    /// RESP3 `><n>` out-of-band message; RESP2 sends an `Array`.
    Push(Vec<Frame>),
}

impl Frame {
    /// The ubiquitous `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// An error reply carrying `msg` verbatim as its full text, error code included:
    /// `Frame::error("ERR syntax error")` is written as `-ERR syntax error\r\n`.
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(msg.into()))
    }

    /// A bulk string reply.
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// A simple string reply from a static text, such as `PONG`.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }
}
