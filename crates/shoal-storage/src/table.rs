//! The per-slot hash table: every key of one hash slot in one database.

use hashbrown::HashTable;

use crate::entry::Entry;

/// All keys of one hash slot of one database, in a SwissTable of 32-byte entries.
///
/// Tables are small (a few hundred keys for millions of keys in total), so they resize in small
/// steps, and slot-wide work (migration, `CLUSTER COUNTKEYSINSLOT`, snapshots, `SCAN`) touches one
/// table at a time.
#[derive(Default, Debug)]
pub struct SlotTable {
    pub(crate) map: HashTable<Entry>,
    /// How many entries carry an expiry; lets the expiry cycle and volatile eviction skip tables.
    pub(crate) volatile: u32,
    /// Where the active expiry cycle stopped walking this table's buckets.
    pub(crate) expire_cursor: u32,
}

impl SlotTable {
    /// Number of keys in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let found = self.map.find_entry(hash, |e| e.key() == key).ok()?;
        let (entry, _) = found.remove();
        if entry.is_volatile() {
            self.volatile -= 1;
        }
        Some(entry)
    }

    /// Iterates every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.map.iter()
    }
}
