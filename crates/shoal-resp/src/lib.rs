//! Sans-IO RESP2/RESP3 codec for Shoal: request parsing, reply frames, reply encoding and reply decoding.
//!
//! The crate never touches sockets. The server owns a `BytesMut` per connection, appends
//! whatever it reads to it, and calls [`RequestParser::parse`] until it returns `Ok(None)`.
//! Replies are built as [`Frame`] values and written with [`encode`] for the protocol the
//! client negotiated with `HELLO`. [`decode_frame`] is the client-side counterpart used by
//! tests and tools.
//!
//! ```
//! use bytes::BytesMut;
//! use shoal_resp::{decode_frame, encode, Frame, Limits, Protocol, RequestParser};
//!
//! let limits = Limits::default();
//! let mut parser = RequestParser::new();
//! let mut input = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n"[..]);
//! let echo = parser.parse(&mut input, &limits)?;
//! assert_eq!(echo, Some(vec!["ECHO".into(), "hi".into()]));
//! let ping = parser.parse(&mut input, &limits)?;
//! assert_eq!(ping, Some(vec!["PING".into()]));
//! assert_eq!(parser.parse(&mut input, &limits)?, None);
//!
//! let mut out = BytesMut::new();
//! encode(&Frame::Map(vec![(Frame::bulk("a"), Frame::Double(0.1))]), Protocol::Resp2, &mut out);
//! assert_eq!(&out[..], b"*2\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n");
//! assert_eq!(
//!     decode_frame(&mut out, &limits)?,
//!     Some(Frame::Array(vec![Frame::bulk("a"), Frame::bulk("0.10000000000000001")]))
//! );
//! # Ok::<(), shoal_resp::ProtocolError>(())
//! ```

mod decode;
mod double;
mod encode;
mod frame;
mod inline;
mod limits;
mod request;
mod scan;

pub use decode::{decode_frame, MAX_NESTING_DEPTH};
pub use double::{format_double, DoubleRepr};
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
