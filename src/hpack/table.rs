//! The encoder's copy of the HPACK dynamic table (RFC 7541 §2.3.2, §4).
//!
//! Entries live in insertion order in a deque, their names and values in one
//! byte buffer. Each entry gets an id (a count of insertions); two chained
//! hash indexes (by name, by name and value) link every entry to the next
//! older one in the same bucket. Eviction takes the oldest entries, so a
//! chain ends at the first evicted id and needs no unlinking.

use std::collections::VecDeque;

/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Size of an entry for `name` and `value` (RFC 7541 §4.1).
pub(super) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len().saturating_add(value.len()).saturating_add(ENTRY_OVERHEAD)
}

/// Hashes of a field's name and of the whole field, computed once per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldHash {
    name: u64,
    field: u64,
}

impl FieldHash {
    /// Hashes `name`, then `value` on top of it. A long value is sampled:
    /// its length and its first and last [`SAMPLE`] bytes. Lookups compare
    /// the bytes anyway, so a collision costs one comparison, while hashing
    /// stays O(1) for the long values (user-agent, cookie) that dominate.
    pub(super) fn of(name: &[u8], value: &[u8]) -> Self {
        let name = hash(0, name);
        let field = match value.split_at_checked(SAMPLE) {
            Some((head, rest)) if rest.len() > SAMPLE => {
                let tail = &rest[rest.len() - SAMPLE..];
                hash(hash(name ^ value.len() as u64, head), tail)
            }
            _ => hash(name, value),
        };
        Self { name, field }
    }
}

/// Bytes hashed at each end of a long value.
const SAMPLE: usize = 16;

/// FxHash-style word-at-a-time hash: fast, and good enough for buckets
/// whose chains are bounded by the number of entries anyway.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let (words, tail) = bytes.as_chunks::<8>();
    let mut h = words.iter().fold(seed, |h, w| mix(h, u64::from_le_bytes(*w)));
    // The last 0..=7 bytes as a little-endian word, zero-padded (built
    // byte by byte: a copy of variable length is a library call).
    let last = tail.iter().rev().fold(0, |word, &b| (word << 8) | u64::from(b));
    h = mix(h, last);
    mix(h, bytes.len() as u64)
}

/// Result of a dynamic table lookup; indexes are 1-based, 1 = newest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Match {
    /// An entry with this name and value.
    Field(usize),
    /// The newest entry with this name.
    Name(usize),
    /// Nothing useful.
    None,
}

#[derive(Debug)]
struct Entry {
    /// Offset of the name in `DynamicTable::bytes`; the value follows it.
    start: usize,
    name_len: usize,
    value_len: usize,
    hash: FieldHash,
    /// Link (id + 1, 0 = none) to the next older entry in the same name bucket.
    older_in_name_bucket: u64,
    /// Same for the field bucket.
    older_in_field_bucket: u64,
}

/// Largest number of hash buckets per index (chains stay bounded by the
/// entry count regardless).
const MAX_BUCKETS: usize = 4096;

/// The dynamic table, mirroring what the peer's decoder holds.
#[derive(Debug)]
pub(super) struct DynamicTable {
    /// Oldest first.
    entries: VecDeque<Entry>,
    /// Names and values of `entries`, oldest first, possibly preceded by
    /// bytes of evicted entries (dropped when the buffer fills up).
    bytes: Vec<u8>,
    /// Id of `entries[0]`.
    oldest_id: u64,
    /// Sum of entry sizes.
    size: usize,
    max_size: usize,
    /// Per bucket, a link (id + 1) to the newest entry whose name hash falls in it.
    name_heads: Box<[u64]>,
    /// Same, by name-and-value hash.
    field_heads: Box<[u64]>,
    /// Right shift that turns a hash into a bucket number.
    bucket_shift: u32,
}

impl DynamicTable {
    /// Empty table with maximum size `max_size`, whose hash index is sized
    /// for tables of up to `largest_max_size`; when the allocator refuses
    /// the index, fails with the bytes it needs, keeping nothing.
    pub(super) fn try_new(max_size: usize, largest_max_size: usize) -> Result<Self, usize> {
        let buckets = (largest_max_size / ENTRY_OVERHEAD + 1).next_power_of_two().clamp(16, MAX_BUCKETS);
        let heads = || -> Result<Box<[u64]>, usize> {
            let mut heads = Vec::new();
            heads.try_reserve_exact(buckets).map_err(|_| 2 * buckets * size_of::<u64>())?;
            heads.resize(buckets, 0);
            Ok(heads.into_boxed_slice())
        };
        Ok(Self {
            entries: VecDeque::new(),
            bytes: Vec::new(),
            oldest_id: 0,
            size: 0,
            max_size,
            name_heads: heads()?,
            field_heads: heads()?,
            bucket_shift: u64::BITS - buckets.trailing_zeros(),
        })
    }

    /// Sum of the entry sizes.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Whether the table has no entries.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes the maximum size, evicting the oldest entries to fit (§4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Entries newest first, as indexes 1, 2, … address them.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries.iter().rev().map(|e| (self.name_of(e), self.value_of(e)))
    }

    /// Finds an entry equal to (`name`, `value`) when `want_field`, else or
    /// failing that the newest entry named `name`.
    pub(super) fn find(&self, name: &[u8], value: &[u8], hash: FieldHash, want_field: bool) -> Match {
        if want_field {
            let mut link = self.field_heads[self.bucket(hash.field)];
            while let Some(e) = self.live(link) {
                if e.hash == hash && self.name_of(e) == name && self.value_of(e) == value {
                    return Match::Field(self.index_of(link));
                }
                link = e.older_in_field_bucket;
            }
        }
        let mut link = self.name_heads[self.bucket(hash.name)];
        while let Some(e) = self.live(link) {
            if e.hash.name == hash.name && self.name_of(e) == name {
                return Match::Name(self.index_of(link));
            }
            link = e.older_in_name_bucket;
        }
        Match::None
    }

    /// Adds (`name`, `value`) as the newest entry, evicting as needed; an
    /// entry larger than the table empties it and is not kept (§4.4). Call
    /// [`DynamicTable::try_reserve_entry`] first, or it may allocate.
    pub(super) fn insert(&mut self, name: &[u8], value: &[u8], hash: FieldHash) {
        let size = entry_size(name, value);
        if size > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        let start = self.append_bytes(name, value);
        let id = self.oldest_id + self.entries.len() as u64;
        let name_bucket = self.bucket(hash.name);
        let field_bucket = self.bucket(hash.field);
        self.entries.push_back(Entry {
            start,
            name_len: name.len(),
            value_len: value.len(),
            hash,
            older_in_name_bucket: self.name_heads[name_bucket],
            older_in_field_bucket: self.field_heads[field_bucket],
        });
        self.name_heads[name_bucket] = id + 1;
        self.field_heads[field_bucket] = id + 1;
        self.size += size;
    }

    /// Evicts the oldest entries until the size is at most `limit`.
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.size -= entry_size(self.name_of(&e), self.value_of(&e));
            self.oldest_id += 1;
        }
        if self.entries.is_empty() {
            self.bytes.clear();
        }
    }

    /// Makes room for [`DynamicTable::insert`] of `name: value`, so that the
    /// insert itself does not allocate; `false` when the allocator refuses
    /// (the encoder then sends the field without indexing). When the byte
    /// buffer is full, the bytes of evicted entries are dropped first and the
    /// capacity kept at twice the live bytes, so moves cost O(1) per byte on
    /// average and a steady table never reallocates.
    pub(super) fn try_reserve_entry(&mut self, name: &[u8], value: &[u8]) -> bool {
        if entry_size(name, value) > self.max_size {
            return true; // the insert only evicts
        }
        if self.entries.try_reserve(1).is_err() {
            return false;
        }
        let len = name.len() + value.len();
        if self.bytes.len() + len <= self.bytes.capacity() {
            return true;
        }
        let dead = self.entries.front().map_or(self.bytes.len(), |e| e.start);
        if dead > 0 {
            self.bytes.drain(..dead);
            self.entries.iter_mut().for_each(|e| e.start -= dead);
        }
        let live = self.bytes.len();
        self.bytes.try_reserve_exact(2 * (live + len) - live).is_ok() || self.bytes.try_reserve_exact(len).is_ok()
    }

    /// Appends `name` and `value` to `bytes`, returning where they start
    /// (room made by [`DynamicTable::try_reserve_entry`]).
    fn append_bytes(&mut self, name: &[u8], value: &[u8]) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        start
    }

    /// The live entry a link points to, if any.
    fn live(&self, link: u64) -> Option<&Entry> {
        let id = link.checked_sub(1)?;
        let pos = usize::try_from(id.checked_sub(self.oldest_id)?).ok()?;
        self.entries.get(pos)
    }

    /// 1-based dynamic index of the entry a (live) link points to.
    fn index_of(&self, link: u64) -> usize {
        // ids of live entries are oldest_id .. oldest_id + len; newest is 1.
        (self.oldest_id + self.entries.len() as u64 - (link - 1)) as usize
    }

    fn bucket(&self, hash: u64) -> usize {
        (hash >> self.bucket_shift) as usize
    }

    fn name_of(&self, e: &Entry) -> &[u8] {
        &self.bytes[e.start..e.start + e.name_len]
    }

    fn value_of(&self, e: &Entry) -> &[u8] {
        let start = e.start + e.name_len;
        &self.bytes[start..start + e.value_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(t: &mut DynamicTable, name: &str, value: &str) {
        assert!(t.try_reserve_entry(name.as_bytes(), value.as_bytes()));
        t.insert(name.as_bytes(), value.as_bytes(), FieldHash::of(name.as_bytes(), value.as_bytes()));
    }

    fn find(t: &DynamicTable, name: &str, value: &str) -> Match {
        t.find(name.as_bytes(), value.as_bytes(), FieldHash::of(name.as_bytes(), value.as_bytes()), true)
    }

    #[test]
    fn evicts_oldest_and_indexes_newest_first() {
        // Entries of 32 + 2 bytes; room for three in 110.
        let mut t = DynamicTable::try_new(110, 4096).unwrap();
        for (n, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
            insert(&mut t, n, v);
        }
        let names: Vec<_> = t.entries().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(
            names,
            [(b"d".to_vec(), b"4".to_vec()), (b"c".to_vec(), b"3".to_vec()), (b"b".to_vec(), b"2".to_vec())]
        );
        assert_eq!(t.size(), 3 * 34);
        assert_eq!(find(&t, "d", "4"), Match::Field(1));
        assert_eq!(find(&t, "b", "2"), Match::Field(3));
        assert_eq!(find(&t, "b", "9"), Match::Name(3));
        assert_eq!(find(&t, "a", "1"), Match::None);
    }

    #[test]
    fn name_match_prefers_the_newest_entry() {
        let mut t = DynamicTable::try_new(4096, 4096).unwrap();
        insert(&mut t, "x", "old");
        insert(&mut t, "y", "other");
        insert(&mut t, "x", "new");
        assert_eq!(find(&t, "x", "none"), Match::Name(1));
        assert_eq!(find(&t, "x", "old"), Match::Field(3));
    }

    #[test]
    fn oversized_entry_empties_the_table() {
        let mut t = DynamicTable::try_new(64, 4096).unwrap();
        insert(&mut t, "a", "1");
        insert(&mut t, "big", &"v".repeat(40));
        assert!(t.is_empty());
        assert_eq!(t.size(), 0);
    }

    #[test]
    fn shrinking_evicts_and_zero_holds_nothing() {
        let mut t = DynamicTable::try_new(4096, 4096).unwrap();
        insert(&mut t, "a", "1");
        insert(&mut t, "b", "2");
        t.set_max_size(34);
        assert_eq!(t.entries().count(), 1);
        assert_eq!(find(&t, "b", "2"), Match::Field(1));
        t.set_max_size(0);
        assert!(t.is_empty());
        insert(&mut t, "c", "3");
        assert!(t.is_empty());
    }

    /// Long values are hashed by sample; values that differ only in the
    /// middle share a hash and are told apart by their bytes.
    #[test]
    fn sampled_hash_collisions_are_resolved_by_bytes() {
        let mut t = DynamicTable::try_new(4096, 4096).unwrap();
        let value = |middle: char| format!("{}{}{}", "h".repeat(20), middle.to_string().repeat(30), "t".repeat(20));
        let (a, b, c) = (value('a'), value('b'), value('c'));
        assert_eq!(FieldHash::of(b"k", a.as_bytes()), FieldHash::of(b"k", b.as_bytes()));
        insert(&mut t, "k", &a);
        insert(&mut t, "k", &b);
        assert_eq!(find(&t, "k", &a), Match::Field(2));
        assert_eq!(find(&t, "k", &b), Match::Field(1));
        assert_eq!(find(&t, "k", &c), Match::Name(1));
    }

    /// Many insertions through a small table: the byte buffer is compacted
    /// and stays bounded, and every lookup still sees the right bytes.
    #[test]
    fn byte_buffer_stays_bounded_under_churn() {
        let mut t = DynamicTable::try_new(256, 256).unwrap();
        for i in 0..10_000 {
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            insert(&mut t, "k", &value);
            assert_eq!(find(&t, "k", &value), Match::Field(1));
            assert!(t.size() <= 256);
        }
        assert!(t.bytes.capacity() <= 4 * 256, "capacity {}", t.bytes.capacity());
        let live: usize = t.entries().map(|(n, v)| n.len() + v.len()).sum();
        assert_eq!(live + 32 * t.entries().count(), t.size());
    }
}
