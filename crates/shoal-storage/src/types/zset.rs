//! Sorted set values: member/score pairs in a pack while small, a skiplist-ordered index plus a member map past the limits.

use super::pack::Pack;

/// A zset value. (Scaffold: the family's implementation replaces this.)
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    pack: Pack,
}

impl ZSet {
    /// An empty value.
    pub fn new() -> ZSet {
        ZSet::default()
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
