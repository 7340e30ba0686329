//! Hash commands (HSET, HGET, HINCRBY, HSCAN, per-field expiry, ...).

use crate::spec::CommandSpec;

/// The hashes family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
