//! Sans-IO RESP2/RESP3 codec for Shoal: request parsing, reply frames, reply encoding and reply decoding.
//!
//! The crate never touches sockets. The server owns a `BytesMut` per connection, appends
//! whatever it reads to it, and calls [`RequestParser::parse`] until it returns `Ok(None)`.
//! Replies are built as [`Frame`] values and written with [`encode`] for the protocol the
//! client negotiated with `HELLO`. [`decode_frame`] is the client-side counterpart used by
//! tests and tools.

mod decode;
mod double;
mod encode;
mod frame;
mod inline;
mod limits;
mod request;
mod scan;

pub use decode::{decode_frame, MAX_NESTING_DEPTH};
pub use double::format_double;
pub use encode::encode;
pub use frame::Frame;
pub use limits::{Limits, ProtocolError};
pub use request::RequestParser;

/// The wire protocol a connection speaks; RESP2 until the client switches with `HELLO 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The classic protocol every Redis client understands.
    Resp2,
    /// The richer protocol with maps, sets, doubles, booleans and push messages.
    Resp3,
}
