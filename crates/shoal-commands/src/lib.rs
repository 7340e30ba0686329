//! Command families and the dispatcher: every command's spec and handler, with no I/O.
//!
//! **Architecture invariant:** handlers never touch a socket, a file or a clock. They receive a
//! [`Cx`] (a locked view of the keyspace, the client state, the time, and [`ServerOps`] for what
//! only the server can do) and return a reply. Side effects of writes (dirty counting, and later
//! replication, the AOF and notifications) flow from the storage journal, not from handlers.

mod args;
mod bitmaps;
mod connection;
mod cx;
mod dispatch;
mod error;
mod geo;
mod hashes;
mod help;
mod hyperloglog;
mod keys;
mod lists;
mod longdouble;
mod pubsub;
mod scripting;
mod server;
mod sets;
mod spec;
mod streams;
mod strings;
mod table;
mod transactions;
mod zsets;

pub use connection::REDIS_COMPAT_VERSION;
pub use cx::{
    Action, BlockSpec, ClientFilter, ClientState, CommandLimits, Cx, InertServer, LatencyHistogram,
    PubsubKind, ReplyMode, ServerOps, ShutdownOptions, Subscriptions, TrackingMode,
};
pub use dispatch::{resolve, resolve_with, Engine, Executed, NameCache, Nested, Resolved};
pub use error::{CmdResult, CommandError};
pub use pubsub::{allowed_when_subscribed, subscribed_mode_error};
pub use spec::{CommandSpec, Flags, Group, KeyAccess, Keys};
pub use table::CommandTable;
pub use transactions::{unwatch_all, Multi, Watching};
