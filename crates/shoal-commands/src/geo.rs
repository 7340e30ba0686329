//! Geo commands (GEOADD, GEOSEARCH, ...), stored as sorted sets.

use crate::spec::CommandSpec;

/// The geo family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
