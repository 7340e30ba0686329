//! List commands (LPUSH, LRANGE, LMOVE, ..., and the blocking BLPOP family).

use crate::spec::CommandSpec;

/// The lists family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
