//! Set commands (SADD, SINTER, SPOP, SSCAN, ...).

use crate::spec::CommandSpec;

/// The sets family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
