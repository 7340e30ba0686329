//! Sorted set commands (ZADD, ZRANGE, ZUNIONSTORE, the blocking BZPOPMIN family, ...).

use crate::spec::CommandSpec;

/// The zsets family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
