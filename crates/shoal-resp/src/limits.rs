//! Owns the configurable input limits and the protocol error type shared by the parser and decoder.

use std::fmt;

/// Limits that protect the server from hostile input. All configurable.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted bulk string payload (Redis `proto-max-bulk-len`), 512 MiB by default.
    pub max_bulk_len: usize,
    /// Largest accepted element count of a multibulk request or aggregate reply, 1048576 by default.
    pub max_multibulk_len: usize,
    /// Longest unterminated inline request or length line that is buffered before giving up
    /// (Redis `PROTO_INLINE_MAX_SIZE`), 64 KiB by default.
    pub max_inline_len: usize,
}

impl Limits {
    /// Redis' default `proto-max-bulk-len`.
    pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
    /// The element cap the brief asks for, which matches Redis before 7.0 relaxed it to `INT_MAX`.
    pub const DEFAULT_MAX_MULTIBULK_LEN: usize = 1024 * 1024;
    /// Redis' `PROTO_INLINE_MAX_SIZE`.
    pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_multibulk_len: Self::DEFAULT_MAX_MULTIBULK_LEN,
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
        }
    }
}

/// A protocol violation. The server writes `-ERR {message}\r\n` and closes the connection.
///
/// `message` carries the exact Redis text without the `ERR ` prefix, for example
/// `Protocol error: invalid bulk length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The human readable text, without the `ERR ` error code.
    pub message: String,
}

impl ProtocolError {
    /// Builds an error from its message text.
    pub fn new(message: impl Into<String>) -> Self {
        ProtocolError {
            message: message.into(),
        }
    }

    /// The reply the server sends before closing the connection, i.e. `ERR {message}`.
    pub fn to_frame(&self) -> crate::Frame {
        crate::Frame::Error(bytes::Bytes::from(format!("ERR {}", self.message)))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}
