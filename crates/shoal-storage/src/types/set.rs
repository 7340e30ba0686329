//! Set values: an intset or a pack while small, a hash set past the limits.

use super::pack::Pack;

/// A set value. (Scaffold: the family's implementation replaces this.)
#[derive(Clone, Debug, Default)]
pub struct Set {
    pack: Pack,
}

impl Set {
    /// An empty value.
    pub fn new() -> Set {
        Set::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.pack.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.pack.is_empty()
    }

    /// Heap bytes held, in O(1).
    pub fn mem_usage(&self) -> usize {
        self.pack.mem_usage()
    }

    /// Redis's `OBJECT ENCODING` name for the current encoding.
    pub fn encoding_name(&self) -> &'static str {
        "listpack"
    }
}
