//! Stream commands (XADD, XRANGE, XREADGROUP, XINFO, ...).

use crate::spec::CommandSpec;

/// The streams family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
