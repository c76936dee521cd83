//! RFC 7541 Appendix C, byte for byte: C.2 single representations, C.3/C.4
//! three requests on one encoder, C.5/C.6 three responses with a 256-byte
//! table. Expected bytes and table states are transcribed from the RFC.

use h2fw::hpack::{Encoder, EncoderConfig, HeaderField, Huffman, Indexing};

/// Bytes from RFC-style hex dump text (whitespace ignored).
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

fn fields<'a>(list: &[(&'a str, &'a str)]) -> Vec<HeaderField<'a>> {
    list.iter().map(|&(n, v)| HeaderField { name: n.as_bytes(), value: v.as_bytes(), sensitive: false }).collect()
}

fn encode(encoder: &mut Encoder, list: &[HeaderField<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let written = encoder.encode(list, &mut out).expect("valid list");
    assert_eq!(written, out.len());
    out
}

/// Asserts the dynamic table holds `entries` (newest first) and `size` bytes.
fn assert_table(encoder: &Encoder, entries: &[(&str, &str)], size: usize) {
    let actual: Vec<(String, String)> = encoder
        .table_entries()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    let expected: Vec<(String, String)> = entries.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())).collect();
    assert_eq!(actual, expected);
    assert_eq!(encoder.table_size(), size);
}

/// The Appendix C encoder: indexes every literal, Huffman as given (C.4 and
/// C.6 code every string, even "307" in C.6.2 whose code is no shorter).
fn appendix_c(table_size: usize, huffman: Huffman) -> Encoder {
    Encoder::with_config(EncoderConfig {
        table_size_cap: table_size,
        initial_peer_table_size: table_size,
        indexing: Indexing::All,
        huffman,
    })
}

#[test]
fn c2_1_literal_with_indexing() {
    let mut e = appendix_c(4096, Huffman::Never);
    let out = encode(&mut e, &fields(&[("custom-key", "custom-header")]));
    assert_eq!(out, hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    assert_table(&e, &[("custom-key", "custom-header")], 55);
}

/// `:path` is never indexed by the default (selective) policy, which gives
/// exactly C.2.2's literal without indexing.
#[test]
fn c2_2_literal_without_indexing() {
    let mut e = Encoder::with_config(EncoderConfig { huffman: Huffman::Never, ..EncoderConfig::default() });
    let out = encode(&mut e, &fields(&[(":path", "/sample/path")]));
    assert_eq!(out, hex("040c 2f73 616d 706c 652f 7061 7468"));
    assert_table(&e, &[], 0);
}

#[test]
fn c2_3_literal_never_indexed() {
    let mut e = appendix_c(4096, Huffman::Never);
    let list = [HeaderField { name: b"password", value: b"secret", sensitive: true }];
    let out = encode(&mut e, &list);
    assert_eq!(out, hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    assert_table(&e, &[], 0);
}

#[test]
fn c2_4_indexed_field() {
    let mut e = appendix_c(4096, Huffman::Never);
    assert_eq!(encode(&mut e, &fields(&[(":method", "GET")])), hex("82"));
    assert_table(&e, &[], 0);
}

const REQUEST_1: &[(&str, &str)] =
    &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];

/// C.3 and C.4 share the table states after each request.
fn check_requests(mut e: Encoder, expected: [&str; 3]) {
    assert_eq!(encode(&mut e, &fields(REQUEST_1)), hex(expected[0]), "first request");
    assert_table(&e, &[(":authority", "www.example.com")], 57);
    assert_eq!(encode(&mut e, &fields(REQUEST_2)), hex(expected[1]), "second request");
    assert_table(&e, &[("cache-control", "no-cache"), (":authority", "www.example.com")], 110);
    assert_eq!(encode(&mut e, &fields(REQUEST_3)), hex(expected[2]), "third request");
    assert_table(
        &e,
        &[("custom-key", "custom-value"), ("cache-control", "no-cache"), (":authority", "www.example.com")],
        164,
    );
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];

const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

#[test]
fn c3_requests_without_huffman() {
    check_requests(appendix_c(4096, Huffman::Never), C3);
}

#[test]
fn c4_requests_with_huffman() {
    check_requests(appendix_c(4096, Huffman::Always), C4);
}

/// The default policy makes the same choices for these requests (nothing
/// in them is unique per request or too large), and every Huffman code in
/// C.4 is shorter than its string.
#[test]
fn c3_c4_requests_with_the_default_policy() {
    check_requests(Encoder::with_config(EncoderConfig { huffman: Huffman::Never, ..EncoderConfig::default() }), C3);
    check_requests(Encoder::new(), C4);
}

const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
];

/// C.5 and C.6 share the table states (256-byte table, with evictions).
fn check_responses(huffman: Huffman, expected: [&str; 3]) {
    let mut e = appendix_c(256, huffman);
    assert_eq!(encode(&mut e, &fields(RESPONSE_1)), hex(expected[0]), "first response");
    assert_table(
        &e,
        &[
            ("location", "https://www.example.com"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("cache-control", "private"),
            (":status", "302"),
        ],
        222,
    );
    assert_eq!(encode(&mut e, &fields(RESPONSE_2)), hex(expected[1]), "second response");
    assert_table(
        &e,
        &[
            (":status", "307"),
            ("location", "https://www.example.com"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("cache-control", "private"),
        ],
        222,
    );
    assert_eq!(encode(&mut e, &fields(RESPONSE_3)), hex(expected[2]), "third response");
    assert_table(
        &e,
        &[
            ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
            ("content-encoding", "gzip"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ],
        215,
    );
}

#[test]
fn c5_responses_without_huffman() {
    check_responses(
        Huffman::Never,
        [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ],
    );
}

#[test]
fn c6_responses_with_huffman() {
    check_responses(
        Huffman::Always,
        [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ],
    );
}
