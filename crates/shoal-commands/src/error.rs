//! Command errors: a closed set of kinds, each rendering to Redis's exact error text.
//!
//! A command error becomes a `-CODE message` reply and never closes the connection (protocol
//! errors, which do, live in `shoal-resp`). Clients parse these strings, so the text must match
//! Redis byte for byte.

use shoal_resp::Frame;
use shoal_storage::NotLocked;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// `ERR syntax error`
    Syntax,
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`
    WrongType,
    /// `ERR wrong number of arguments for '<name>' command`
    WrongArity(String),
    /// `ERR value is not an integer or out of range`
    NotInteger,
    /// `ERR value is not a valid float`
    NotFloat,
    /// `ERR increment or decrement would overflow`
    Overflow,
    /// `ERR invalid expire time in '<name>' command`
    InvalidExpire(&'static str),
    /// `ERR no such key`
    NoSuchKey,
    /// `OOM command not allowed when used memory > 'maxmemory'.`
    Oom,
    /// `NOAUTH Authentication required.`
    NoAuth,
    /// `WRONGPASS invalid username-password pair or user is disabled.`
    WrongPass,
    /// `EXECABORT Transaction discarded because of previous errors.`
    ExecAbort,
    /// Any other error, as the full text after the `-` (code included), e.g.
    /// `ERR DB index is out of range`.
    Other(String),
    /// A bug: a handler touched a key its spec did not declare.
    Internal(NotLocked),
}

impl CommandError {
    /// An `ERR <message>` error.
    pub fn err(message: impl std::fmt::Display) -> CommandError {
        CommandError::Other(format!("ERR {message}"))
    }

    /// The full error text, code first, without the leading `-`.
    pub fn message(&self) -> String {
        match self {
            CommandError::Syntax => "ERR syntax error".into(),
            CommandError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            }
            CommandError::WrongArity(name) => {
                format!("ERR wrong number of arguments for '{name}' command")
            }
            CommandError::NotInteger => "ERR value is not an integer or out of range".into(),
            CommandError::NotFloat => "ERR value is not a valid float".into(),
            CommandError::Overflow => "ERR increment or decrement would overflow".into(),
            CommandError::InvalidExpire(name) => {
                format!("ERR invalid expire time in '{name}' command")
            }
            CommandError::NoSuchKey => "ERR no such key".into(),
            CommandError::Oom => "OOM command not allowed when used memory > 'maxmemory'.".into(),
            CommandError::NoAuth => "NOAUTH Authentication required.".into(),
            CommandError::WrongPass => {
                "WRONGPASS invalid username-password pair or user is disabled.".into()
            }
            CommandError::ExecAbort => {
                "EXECABORT Transaction discarded because of previous errors.".into()
            }
            CommandError::Other(s) => s.clone(),
            CommandError::Internal(e) => format!("ERR internal error: {e}"),
        }
    }

    /// The error code (first word), as `INFO errorstats` groups errors.
    pub fn code(&self) -> String {
        let m = self.message();
        m.split(' ').next().unwrap_or("ERR").to_string()
    }

    /// The reply frame.
    pub fn to_frame(&self) -> Frame {
        Frame::Error(self.message().into())
    }
}

impl From<NotLocked> for CommandError {
    fn from(e: NotLocked) -> Self {
        CommandError::Internal(e)
    }
}

/// A handler's result.
pub type CmdResult = Result<Frame, CommandError>;
