//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE), in Redis's byte format.

use crate::spec::CommandSpec;

/// The hyperloglog family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
