//! The collection types a key can hold besides strings, each in its own module with its compact
//! and full encodings, plus the thresholds that decide between them.
//!
//! Every type offers the same core: `len`, `is_empty`, `mem_usage` (heap bytes, in O(1): it is
//! read before and after every write to keep memory accounting exact) and `encoding_name`
//! (Redis's `OBJECT ENCODING` name). Types know nothing of keys, expiry or commands.

pub mod hash;
pub mod list;
pub mod pack;
pub mod set;
pub mod stream;
pub mod zset;

/// The thresholds between compact and full encodings, Redis's `*-max-listpack-*` family.
/// Commands pass them in; the types never read configuration themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// Positive: at most this many elements per list node; negative -1..-5: at most 4, 8, 16,
    /// 32 or 64 KiB per node (Redis's `list-max-listpack-size`).
    pub list_max_listpack_size: i64,
    pub list_compress_depth: usize,
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
    /// Largest sparse HyperLogLog, header included, before it turns dense (Redis's
    /// `hll-sparse-max-bytes`).
    pub hll_sparse_max_bytes: usize,
}

impl Default for TypeLimits {
    /// Redis 7.0's compiled-in defaults (which are what `CONFIG GET` shows without a config
    /// file; redis.conf's own comments give 128 for hashes).
    fn default() -> TypeLimits {
        TypeLimits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
            hll_sparse_max_bytes: 3000,
        }
    }
}
