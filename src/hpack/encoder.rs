//! The encoder: representation choice, indexing policy, table size updates.

use bytes::BufMut;

use super::primitive::{MAX_INT_LEN, max_string_len, put_int, put_string};
use super::static_table::{self, NameClass, SHORT_COOKIE};
use super::table::{DynamicTable, FieldHash, Match, entry_size};
use super::validate::validate;
use super::{DEFAULT_TABLE_SIZE, HeaderField, HpackError};

/// Which literals go into the dynamic table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Indexing {
    /// Insert a field unless its entry would take more than 3/4 of the
    /// table or its name usually carries a per-message value (`:path`,
    /// `age`, `content-length`, `etag`, `if-modified-since`,
    /// `if-none-match`, `location`, `set-cookie`).
    #[default]
    Selective,
    /// Insert every field that is not sensitive, as RFC 7541 Appendix C does.
    All,
}

/// When string literals are Huffman-coded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Huffman {
    /// When the code is strictly shorter than the raw bytes.
    #[default]
    WhenShorter,
    /// Never (raw octets only).
    Never,
    /// Always, even when not shorter, as RFC 7541 Appendix C.4 and C.6 do
    /// (C.6.2 codes "307" in 3 bytes).
    Always,
}

/// Encoder settings; the default is what [`Encoder::new`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Largest dynamic table this encoder keeps, whatever the peer allows:
    /// the table's maximum size is min(peer's SETTINGS_HEADER_TABLE_SIZE, cap).
    pub table_size_cap: usize,
    /// Table size the peer's decoder starts with, before any setting: 4096
    /// in HTTP/2 (RFC 9113 §6.5.2). When the encoder's first maximum size
    /// differs, its first header block announces it.
    pub initial_peer_table_size: usize,
    /// Which literals are inserted into the table.
    pub indexing: Indexing,
    /// When strings are Huffman-coded.
    pub huffman: Huffman,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            table_size_cap: DEFAULT_TABLE_SIZE,
            initial_peer_table_size: DEFAULT_TABLE_SIZE,
            indexing: Indexing::Selective,
            huffman: Huffman::WhenShorter,
        }
    }
}

/// HPACK encoder: owns the dynamic table and the pending table-size updates.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    config: EncoderConfig,
    /// Maximum table size the peer's decoder last heard of.
    announced_size: usize,
    /// Smallest maximum size since the last header block, if it changed.
    smallest_since_block: Option<usize>,
}

impl Encoder {
    /// Encoder with the default table size (4096) and encoder-side cap.
    pub fn new() -> Self {
        Self::with_config(EncoderConfig::default())
    }

    /// Encoder that keeps at most `cap` bytes of dynamic table (default
    /// 4096). A cap below the peer's table size is announced by the first
    /// header block.
    pub fn with_max_table_size(cap: usize) -> Self {
        Self::with_config(EncoderConfig { table_size_cap: cap, ..EncoderConfig::default() })
    }

    /// Encoder with explicit settings.
    pub fn with_config(config: EncoderConfig) -> Self {
        Self::try_with_config(config).expect("memory for the HPACK table's index")
    }

    /// [`Encoder::with_config`], failing instead with the bytes needed when
    /// the allocator refuses the table's index (a few KiB).
    pub fn try_with_config(config: EncoderConfig) -> Result<Self, usize> {
        let max_size = config.initial_peer_table_size.min(config.table_size_cap);
        Ok(Self {
            table: DynamicTable::try_new(max_size, config.table_size_cap)?,
            config,
            announced_size: config.initial_peer_table_size,
            smallest_since_block: None,
        })
    }

    /// Records the peer's SETTINGS_HEADER_TABLE_SIZE; the size update goes out
    /// at the start of the next header block (smallest seen, then final).
    pub fn set_peer_table_size(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(usize::MAX).min(self.config.table_size_cap);
        self.smallest_since_block = Some(self.smallest_since_block.map_or(size, |s| s.min(size)));
        // Evicting now rather than at the next block frees the memory
        // early and changes nothing on the wire.
        self.table.set_max_size(size);
    }

    /// Current maximum size of the dynamic table: min(peer's size, cap).
    pub fn max_table_size(&self) -> usize {
        self.table.max_size()
    }

    /// Current size of the dynamic table (entries' name + value + 32 each).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Dynamic table entries as (name, value), newest first: the entry at
    /// position `i` (0-based) has HPACK index 62 + `i`.
    pub fn table_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.table.entries()
    }

    /// Validates `fields`, then appends their header block to `dst`. On error
    /// nothing is written and the table is unchanged.
    ///
    /// `dst` must have room for the block's worst case,
    /// [`Encoder::max_block_len`], else [`HpackError::BufferTooSmall`]; a
    /// growable buffer always has. Returns the number of bytes written.
    pub fn encode(&mut self, fields: &[HeaderField<'_>], dst: &mut impl BufMut) -> Result<usize, HpackError> {
        validate(fields)?;
        let bound = self.max_block_len(fields);
        let available = dst.remaining_mut();
        if available < bound {
            return Err(HpackError::BufferTooSmall { needed: bound, available });
        }
        self.put_size_updates(dst);
        for field in fields {
            self.put_field(field, dst);
        }
        // `remaining_mut` shrinks by exactly the bytes written.
        Ok(available.saturating_sub(dst.remaining_mut()))
    }

    /// The most bytes the header block of `fields` can take, from their
    /// lengths alone: the room [`Encoder::encode`] requires of `dst`. On
    /// 64-bit targets 22 bytes, plus per field its name and value lengths
    /// and 33 bytes; four times the lengths with [`Huffman::Always`].
    /// Checks nothing: `encode` may still refuse `fields`.
    pub fn max_block_len(&self, fields: &[HeaderField<'_>]) -> usize {
        let huffman = self.config.huffman;
        fields.iter().fold(2 * MAX_INT_LEN, |sum, f| {
            let strings = max_string_len(f.name.len(), huffman).saturating_add(max_string_len(f.value.len(), huffman));
            sum.saturating_add(MAX_INT_LEN).saturating_add(strings)
        })
    }

    /// Dynamic table size updates owed to the decoder (RFC 7541 §4.2): the
    /// smallest size since the last block if below what it knows, then the
    /// current one if different.
    fn put_size_updates(&mut self, dst: &mut impl BufMut) {
        if let Some(smallest) = self.smallest_since_block.take()
            && smallest < self.announced_size
        {
            put_int(dst, 0x20, 5, smallest);
            self.announced_size = smallest;
        }
        let current = self.table.max_size();
        if current != self.announced_size {
            put_int(dst, 0x20, 5, current);
            self.announced_size = current;
        }
    }

    fn put_field(&mut self, field: &HeaderField<'_>, dst: &mut impl BufMut) {
        let HeaderField { name, value, .. } = *field;
        let info = static_table::name_info(name);
        let never_indexed = field.sensitive
            || match info.class {
                NameClass::Credential => true,
                NameClass::Cookie => value.len() < SHORT_COOKIE,
                NameClass::Ordinary | NameClass::Unique => false,
            };
        if !never_indexed && let Some(index) = static_table::find_field(&info, value) {
            put_int(dst, 0x80, 7, index);
            return;
        }
        let insert = !never_indexed
            && match self.config.indexing {
                Indexing::All => true,
                Indexing::Selective => {
                    info.class != NameClass::Unique
                        && entry_size(name, value).saturating_mul(4) <= self.table.max_size().saturating_mul(3)
                }
            }
            // Without memory for the entry, the field goes out without indexing.
            && self.table.try_reserve_entry(name, value);
        // A full match is of no use to a never-indexed field, and the
        // selective policy never inserts `Unique` names.
        let may_be_in_table =
            !never_indexed && (self.config.indexing == Indexing::All || info.class != NameClass::Unique);
        let needs_table = !self.table.is_empty() && (may_be_in_table || info.index == 0);
        let hash = (insert || needs_table).then(|| FieldHash::of(name, value));
        let found = match hash {
            Some(hash) if needs_table => self.table.find(name, value, hash, may_be_in_table),
            _ => Match::None,
        };
        let name_index = match found {
            Match::Field(index) => {
                put_int(dst, 0x80, 7, static_table::LEN + index);
                return;
            }
            Match::Name(_) | Match::None if info.index != 0 => info.index,
            Match::Name(index) => static_table::LEN + index,
            Match::None => 0,
        };
        let (flags, prefix_bits) = match (insert, never_indexed) {
            (true, _) => (0x40, 6),      // §6.2.1 with incremental indexing
            (false, true) => (0x10, 4),  // §6.2.3 never indexed
            (false, false) => (0x00, 4), // §6.2.2 without indexing
        };
        put_int(dst, flags, prefix_bits, name_index);
        if name_index == 0 {
            put_string(dst, name, self.config.huffman);
        }
        put_string(dst, value, self.config.huffman);
        if insert && let Some(hash) = hash {
            self.table.insert(name, value, hash);
        }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}
