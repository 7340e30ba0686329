//! Bitmap commands (SETBIT, BITCOUNT, BITOP, BITFIELD, ...), on string values.

use crate::spec::CommandSpec;

/// The bitmaps family.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
