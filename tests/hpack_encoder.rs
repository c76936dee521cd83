//! Encoder behaviour beyond the RFC examples: field validation (nothing
//! written, table untouched), dynamic table size updates, indexing policy.
//! Expected bytes are worked out by hand from RFC 7541 §5–6 in comments.

use h2fw::hpack::{Encoder, EncoderConfig, HeaderField, HpackError, Huffman};

fn field<'a>(name: &'a str, value: &'a str) -> HeaderField<'a> {
    HeaderField { name: name.as_bytes(), value: value.as_bytes(), sensitive: false }
}

fn sensitive<'a>(name: &'a str, value: &'a str) -> HeaderField<'a> {
    HeaderField { sensitive: true, ..field(name, value) }
}

/// Encoder without Huffman, so expected bytes can be read off.
fn plain() -> Encoder {
    Encoder::with_config(EncoderConfig { huffman: Huffman::Never, ..EncoderConfig::default() })
}

fn encode(e: &mut Encoder, fields: &[HeaderField<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(fields, &mut out).expect("valid list");
    out
}

fn entries(e: &Encoder) -> Vec<(Vec<u8>, Vec<u8>)> {
    e.table_entries().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

/// `[prefix byte(s)] ++ len ++ bytes` for a short raw string literal.
fn raw(s: &str) -> Vec<u8> {
    assert!(s.len() < 127);
    let mut out = vec![s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------- validation

/// An encoder with some history: entries in its table and a table size
/// change not yet announced.
fn with_history() -> Encoder {
    let mut e = plain();
    encode(&mut e, &[field(":method", "GET"), field(":authority", "example.com"), field("x-a", "1")]);
    e.set_peer_table_size(1000);
    e
}

/// `bad` is refused with `expected`; nothing is written, the table and the
/// pending size update are as before: encoding a valid list afterwards gives
/// the same bytes as on an encoder with the same history that never saw `bad`.
fn assert_rejected(bad: &[HeaderField<'_>], expected: HpackError) {
    let mut e = with_history();
    let before = entries(&e);
    let mut out = b"earlier".to_vec();
    assert_eq!(e.encode(bad, &mut out), Err(expected));
    assert_eq!(out, b"earlier");
    assert_eq!(entries(&e), before);

    let good = [field(":method", "GET"), field(":authority", "example.com"), field("x-a", "1"), field("x-b", "2")];
    let mut twin = with_history();
    assert_eq!(encode(&mut e, &good), encode(&mut twin, &good));
    assert_eq!(entries(&e), entries(&twin));
}

fn name_error(name: &str, reason: &'static str) -> HpackError {
    HpackError::InvalidName { name: name.into(), reason }
}

fn value_error(name: &str, reason: &'static str) -> HpackError {
    HpackError::InvalidValue { name: name.into(), reason }
}

fn pseudo_error(name: &str, reason: &'static str) -> HpackError {
    HpackError::PseudoHeader { name: name.into(), reason }
}

#[test]
fn rejects_bad_names() {
    assert_rejected(&[field("x-ok", "1"), field("", "v")], name_error("", "is empty"));
    assert_rejected(&[field("Content-Type", "text/plain")], name_error("Content-Type", "contains an uppercase letter"));
    let not_token = "contains a character that is not a token character";
    assert_rejected(&[field("bad name", "v")], name_error("bad name", not_token));
    assert_rejected(&[field("x:y", "v")], name_error("x:y", not_token));
    assert_rejected(&[field("x\u{e9}", "v")], name_error("x\u{e9}", not_token));
    assert_rejected(&[field("a\"b", "v")], name_error("a\"b", not_token));
}

#[test]
fn rejects_bad_values() {
    assert_rejected(&[field("x-a", "a\0b")], value_error("x-a", "contains NUL"));
    assert_rejected(&[field("x-a", "a\rb")], value_error("x-a", "contains CR"));
    assert_rejected(&[field("x-a", "a\nb")], value_error("x-a", "contains LF"));
    assert_rejected(&[field("x-a", " a")], value_error("x-a", "starts with whitespace"));
    assert_rejected(&[field("x-a", "\ta")], value_error("x-a", "starts with whitespace"));
    assert_rejected(&[field("x-a", "a\t")], value_error("x-a", "ends with whitespace"));
    assert_rejected(&[field("x-a", " ")], value_error("x-a", "starts with whitespace"));
    assert_rejected(&[field(":path", "/a\nb")], value_error(":path", "contains LF"));
    // Every other control byte but HTAB, and DEL, too (RFC 9110 §5.5), in
    // regular and pseudo-header values alike.
    let control = "contains a control byte (RFC 9110 §5.5)";
    for byte in (0x01..0x20u8).filter(|b| !matches!(b, b'\t' | b'\r' | b'\n')).chain([0x7f]) {
        let value = format!("a{}b", byte as char);
        assert_rejected(&[field("x-a", &value)], value_error("x-a", control));
        assert_rejected(&[field(":path", &format!("/{value}"))], value_error(":path", control));
    }
    // Inner whitespace and obs-text are allowed (RFC 9113 §8.2.1).
    let mut e = plain();
    assert!(e.encode(&[field("x-a", "a \t b\u{e9}\u{80}"), field("x-b", "")], &mut Vec::new()).is_ok());
}

#[test]
fn rejects_connection_specific_fields() {
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        assert_rejected(&[field(name, "x")], HpackError::ConnectionSpecific { name: name.into() });
    }
    assert_rejected(&[field("te", "gzip")], HpackError::ConnectionSpecific { name: "te".into() });
    assert_rejected(&[field("te", "trailers, gzip")], HpackError::ConnectionSpecific { name: "te".into() });
    let mut e = plain();
    assert!(e.encode(&[field("te", "trailers")], &mut Vec::new()).is_ok());
}

#[test]
fn rejects_bad_pseudo_headers() {
    assert_rejected(&[field(":foo", "x")], pseudo_error(":foo", "is not a defined pseudo-header"));
    assert_rejected(&[field(":", "x")], pseudo_error(":", "is not a defined pseudo-header"));
    assert_rejected(
        &[field(":method", "GET"), field("x-a", "1"), field(":path", "/")],
        pseudo_error(":path", "follows a regular field"),
    );
    assert_rejected(
        &[field(":method", "GET"), field(":method", "GET")],
        pseudo_error(":method", "appears more than once"),
    );
    assert_rejected(
        &[field(":status", "200"), field(":path", "/")],
        pseudo_error(":path", "mixes request and response pseudo-headers"),
    );
    assert_rejected(
        &[field(":method", "GET"), field(":status", "200")],
        pseudo_error(":status", "mixes request and response pseudo-headers"),
    );
    assert_rejected(&[field(":status", "20")], pseudo_error(":status", "value is not a status code from 100 to 999"));
    assert_rejected(&[field(":status", "2x0")], pseudo_error(":status", "value is not a status code from 100 to 999"));
    assert_rejected(&[field(":status", "099")], pseudo_error(":status", "value is not a status code from 100 to 999"));
    assert_rejected(&[field(":status", "2000")], pseudo_error(":status", "value is not a status code from 100 to 999"));
    assert_rejected(&[field(":method", "")], pseudo_error(":method", "value is not a method token"));
    assert_rejected(&[field(":method", "GE T")], pseudo_error(":method", "value is not a method token"));
    // Every request pseudo-header together, :protocol included, is fine.
    let request = [
        field(":method", "CONNECT"),
        field(":protocol", "websocket"),
        field(":scheme", "https"),
        field(":authority", "a.example"),
        field(":path", "/chat"),
        field("x-a", "1"),
    ];
    assert!(plain().encode(&request, &mut Vec::new()).is_ok());
}

#[test]
fn errors_name_the_field_and_reason() {
    let text = name_error("Bad", "contains an uppercase letter").to_string();
    assert!(text.contains("\"Bad\"") && text.contains("uppercase"), "{text}");
    let text = HpackError::ConnectionSpecific { name: "upgrade".into() }.to_string();
    assert!(text.contains("\"upgrade\"") && text.contains("connection-specific"), "{text}");
}

/// A fixed-size destination too small for the worst case is refused
/// before anything is written, and the encoder stays usable.
#[test]
fn refuses_a_destination_without_room() {
    let mut e = with_history();
    let before = entries(&e);
    let mut buf = [0u8; 8];
    let list = [field("x-long", "0123456789")];
    let err = e.encode(&list, &mut &mut buf[..]).unwrap_err();
    assert!(matches!(err, HpackError::BufferTooSmall { available: 8, .. }), "{err:?}");
    // The documented worst case: 22 bytes, plus the name and value lengths
    // and 33 bytes per field (64-bit targets).
    #[cfg(target_pointer_width = "64")]
    assert_eq!(e.max_block_len(&list), 22 + 6 + 10 + 33);
    assert_eq!(err, HpackError::BufferTooSmall { needed: e.max_block_len(&list), available: 8 });
    assert_eq!(buf, [0; 8]);
    assert_eq!(entries(&e), before);
    let mut big = [0u8; 256];
    let mut dst = &mut big[..];
    let written = e.encode(&list, &mut dst).unwrap();
    assert_eq!(written, 256 - dst.len());
    let mut twin = with_history();
    assert_eq!(&big[..written], encode(&mut twin, &list));
}

// ------------------------------------------------------- table size updates

// Size update encodings (§6.3, 5-bit prefix, 001xxxxx):
//   0    -> 20
//   100  -> 3f 45         (100 - 31 = 69)
//   256  -> 3f e1 01      (225 = 1*128 + 97)
//   1000 -> 3f c9 07      (969 = 7*128 + 73)
//   2048 -> 3f e1 0f      (2017 = 15*128 + 97)
//   4096 -> 3f e1 1f      (4065 = 31*128 + 97)
//   8192 -> 3f e1 3f      (8161 = 63*128 + 97)
const GET: &[u8] = &[0x82];

#[test]
fn smallest_then_final_size_at_next_block() {
    let mut e = plain();
    e.set_peer_table_size(100);
    e.set_peer_table_size(0);
    e.set_peer_table_size(2048);
    assert_eq!(e.max_table_size(), 2048);
    let get = [field(":method", "GET")];
    assert_eq!(encode(&mut e, &get), cat(&[&[0x20], &[0x3f, 0xe1, 0x0f], GET]));
    // Announced once only.
    assert_eq!(encode(&mut e, &get), GET);
}

#[test]
fn shrink_then_restore_sends_both() {
    let mut e = plain();
    e.set_peer_table_size(2048);
    e.set_peer_table_size(4096);
    let get = [field(":method", "GET")];
    assert_eq!(encode(&mut e, &get), cat(&[&[0x3f, 0xe1, 0x0f], &[0x3f, 0xe1, 0x1f], GET]));
}

#[test]
fn unchanged_or_capped_size_sends_nothing() {
    let mut e = plain();
    e.set_peer_table_size(4096);
    let get = [field(":method", "GET")];
    assert_eq!(encode(&mut e, &get), GET);
    // Above the default cap of 4096: the table stays at 4096.
    e.set_peer_table_size(65536);
    assert_eq!(e.max_table_size(), 4096);
    assert_eq!(encode(&mut e, &get), GET);
}

#[test]
fn growth_within_cap_is_announced() {
    let mut e =
        Encoder::with_config(EncoderConfig { table_size_cap: 8192, huffman: Huffman::Never, ..Default::default() });
    let get = [field(":method", "GET")];
    assert_eq!(encode(&mut e, &get), GET);
    e.set_peer_table_size(8192);
    assert_eq!(encode(&mut e, &get), cat(&[&[0x3f, 0xe1, 0x3f], GET]));
}

#[test]
fn cap_below_peer_size_is_announced_first() {
    let mut e = Encoder::with_max_table_size(256);
    assert_eq!(e.max_table_size(), 256);
    let get = [field(":method", "GET")];
    assert_eq!(encode(&mut e, &get), cat(&[&[0x3f, 0xe1, 0x01], GET]));
    assert_eq!(encode(&mut e, &get), GET);
    e.set_peer_table_size(100);
    assert_eq!(encode(&mut e, &get), cat(&[&[0x3f, 0x45], GET]));
    // The peer allowing more than the cap brings the table back to the cap.
    e.set_peer_table_size(4096);
    assert_eq!(encode(&mut e, &get), cat(&[&[0x3f, 0xe1, 0x01], GET]));
}

#[test]
fn shrinking_evicts_oldest_entries() {
    let mut e = plain();
    // x-a: 1 and x-b: 2 are 3 + 1 + 32 = 36 bytes each.
    encode(&mut e, &[field("x-a", "1"), field("x-b", "2")]);
    assert_eq!(e.table_size(), 72);
    e.set_peer_table_size(50);
    assert_eq!(entries(&e), [(b"x-b".to_vec(), b"2".to_vec())]);
    assert_eq!(e.table_size(), 36);
    // 50 -> 3f 13; x-b is now index 62 (be); x-a is a new literal:
    // 3/4 of 50 is 37.5 >= 36, so it is inserted (40 = 01 000000).
    let out = encode(&mut e, &[field("x-b", "2"), field("x-a", "1")]);
    assert_eq!(out, cat(&[&[0x3f, 0x13, 0xbe, 0x40], &raw("x-a"), &raw("1")]));
    assert_eq!(entries(&e), [(b"x-a".to_vec(), b"1".to_vec())]);
}

#[test]
fn table_size_zero_keeps_nothing() {
    let mut e = plain();
    encode(&mut e, &[field("x-a", "1")]);
    e.set_peer_table_size(0);
    assert_eq!(e.table_size(), 0);
    let list = [field(":method", "GET"), field("x-a", "1"), field("x-a", "1")];
    // 20 (size 0), 82, then literal without indexing, new name (00) twice.
    let literal = cat(&[&[0x00], &raw("x-a"), &raw("1")]);
    assert_eq!(encode(&mut e, &list), cat(&[&[0x20], GET, &literal, &literal]));
    assert_eq!(encode(&mut e, &list), cat(&[GET, &literal, &literal]));
    assert_eq!(e.table_size(), 0);
    assert_eq!(e.table_entries().count(), 0);
}

#[test]
fn cap_zero_encoder() {
    let mut e =
        Encoder::with_config(EncoderConfig { table_size_cap: 0, huffman: Huffman::Never, ..Default::default() });
    e.set_peer_table_size(4096);
    let list = [field("x-a", "1")];
    assert_eq!(encode(&mut e, &list), cat(&[&[0x20, 0x00], &raw("x-a"), &raw("1")]));
    assert_eq!(e.table_size(), 0);
}

#[test]
fn failed_block_keeps_pending_update() {
    let mut e = plain();
    e.set_peer_table_size(100);
    assert!(e.encode(&[field("Bad", "x")], &mut Vec::new()).is_err());
    assert_eq!(encode(&mut e, &[field(":method", "GET")]), cat(&[&[0x3f, 0x45], GET]));
}

// ------------------------------------------------------------ indexing policy

#[test]
fn ordinary_fields_are_indexed_then_referenced() {
    let mut e = plain();
    // New name: 40, name, value; then 62 = be.
    let list = [field("x-custom", "v")];
    assert_eq!(encode(&mut e, &list), cat(&[&[0x40], &raw("x-custom"), &raw("v")]));
    assert_eq!(encode(&mut e, &list), [0xbe]);
    // Same name, other value: indexed name 62 with incremental indexing = 7e.
    assert_eq!(encode(&mut e, &[field("x-custom", "w")]), cat(&[&[0x7e], &raw("w")]));
    // date is kept (it repeats within a second): static name 33 = 61.
    let date = [field("date", "Mon, 21 Oct 2013 20:13:21 GMT")];
    assert_eq!(encode(&mut e, &date), cat(&[&[0x61], &raw("Mon, 21 Oct 2013 20:13:21 GMT")]));
    assert_eq!(encode(&mut e, &date), [0xbe]);
}

#[test]
fn per_message_values_are_never_inserted() {
    // Static name indexes: :path 4, age 21, content-length 28, etag 34,
    // if-modified-since 40, if-none-match 41, location 46, set-cookie 55.
    // Literal without indexing, 4-bit prefix: below 15 one byte, else 0f + (i - 15).
    let cases: [(&str, &[u8]); 8] = [
        (":path", &[0x04]),
        ("age", &[0x0f, 6]),
        ("content-length", &[0x0f, 13]),
        ("etag", &[0x0f, 19]),
        ("if-modified-since", &[0x0f, 25]),
        ("if-none-match", &[0x0f, 26]),
        ("location", &[0x0f, 31]),
        ("set-cookie", &[0x0f, 40]),
    ];
    let mut e = plain();
    for (name, prefix) in cases {
        let list = [field(name, "v1")];
        let expected = cat(&[prefix, &raw("v1")]);
        assert_eq!(encode(&mut e, &list), expected, "{name}");
        assert_eq!(encode(&mut e, &list), expected, "{name} again");
    }
    assert_eq!(e.table_size(), 0);
}

#[test]
fn fields_over_three_quarters_of_the_table_are_not_inserted() {
    // Default table 4096: 3/4 is 3072. "x-big" (5) + value + 32.
    let mut e = plain();
    let fits = "v".repeat(3072 - 32 - 5);
    let too_big = "v".repeat(3072 - 32 - 5 + 1);
    let out = encode(&mut e, &[field("x-big", &too_big)]);
    assert_eq!(out[0], 0x00, "literal without indexing");
    assert_eq!(e.table_size(), 0);
    let out = encode(&mut e, &[field("x-big", &fits)]);
    assert_eq!(out[0], 0x40, "literal with incremental indexing");
    assert_eq!(e.table_size(), 3072);
}

#[test]
fn credentials_are_never_indexed() {
    let mut e = plain();
    // authorization is static 23: 1f 08 (23 - 15); proxy-authorization 49: 1f 22.
    let auth = [field("authorization", "Bearer abc")];
    let expected = cat(&[&[0x1f, 0x08], &raw("Bearer abc")]);
    assert_eq!(encode(&mut e, &auth), expected);
    assert_eq!(encode(&mut e, &auth), expected);
    let proxy = [field("proxy-authorization", "Basic xyz")];
    assert_eq!(encode(&mut e, &proxy), cat(&[&[0x1f, 0x22], &raw("Basic xyz")]));
    // Even a long value.
    let long = "t".repeat(100);
    assert_eq!(encode(&mut e, &[field("authorization", &long)])[..2], [0x1f, 0x08]);
    assert_eq!(e.table_size(), 0);
}

#[test]
fn short_cookies_are_never_indexed_long_ones_are() {
    let mut e = plain();
    // cookie is static 32: never indexed 1f 11 (32 - 15); with indexing 60 (01 100000).
    let short = "a".repeat(19);
    let list = [field("cookie", &short)];
    assert_eq!(encode(&mut e, &list), cat(&[&[0x1f, 0x11], &raw(&short)]));
    assert_eq!(encode(&mut e, &list), cat(&[&[0x1f, 0x11], &raw(&short)]));
    assert_eq!(e.table_size(), 0);
    let long = "a".repeat(20);
    let list = [field("cookie", &long)];
    assert_eq!(encode(&mut e, &list), cat(&[&[0x60], &raw(&long)]));
    assert_eq!(encode(&mut e, &list), [0xbe]);
}

#[test]
fn sensitive_fields_are_never_referenced_by_value() {
    let mut e = plain();
    // Caller-marked, new name: 10, name, value; not inserted.
    let secret = [sensitive("x-secret", "s3")];
    let expected = cat(&[&[0x10], &raw("x-secret"), &raw("s3")]);
    assert_eq!(encode(&mut e, &secret), expected);
    assert_eq!(encode(&mut e, &secret), expected);
    assert_eq!(e.table_size(), 0);
    // A static full match (:method GET = 2) is not used: 12 = never indexed, name 2.
    assert_eq!(encode(&mut e, &[sensitive(":method", "GET")]), cat(&[&[0x12], &raw("GET")]));
    // A dynamic full match is not used either, only its name: 1f 2f (62 - 15).
    encode(&mut e, &[field("x-token", "abc")]);
    assert_eq!(encode(&mut e, &[field("x-token", "abc")]), [0xbe]);
    assert_eq!(encode(&mut e, &[sensitive("x-token", "abc")]), cat(&[&[0x1f, 0x2f], &raw("abc")]));
    assert_eq!(e.table_size(), 7 + 3 + 32);
}
