//! HeaderList: raw pushes and the `http` helpers' pseudo-headers and order.

use h2fw::hpack::{HeaderField, HeaderList, HpackError, split_fields};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

fn as_strings(list: &HeaderList) -> Vec<(String, String, bool)> {
    list.fields()
        .iter()
        .map(|f| {
            (String::from_utf8_lossy(f.name).into_owned(), String::from_utf8_lossy(f.value).into_owned(), f.sensitive)
        })
        .collect()
}

fn expected(fields: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    fields.iter().map(|&(n, v, s)| (n.to_owned(), v.to_owned(), s)).collect()
}

fn headers() -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("user-agent", HeaderValue::from_static("test/1"));
    let mut token = HeaderValue::from_static("Bearer x");
    token.set_sensitive(true);
    map.insert("authorization", token);
    map.append("accept", HeaderValue::from_static("text/html"));
    map.append("accept", HeaderValue::from_static("*/*"));
    map
}

const HEADER_FIELDS: [(&str, &str, bool); 4] = [
    ("user-agent", "test/1", false),
    ("authorization", "Bearer x", true),
    ("accept", "text/html", false),
    ("accept", "*/*", false),
];

#[test]
fn push_keeps_fields_in_order() {
    let mut list = HeaderList::new();
    assert!(list.is_empty());
    list.push(b"a", b"1", false);
    list.push(b"", b"", true);
    list.push(b"bb", b"22", false);
    assert_eq!(list.len(), 3);
    assert_eq!(
        list.fields(),
        [
            HeaderField { name: b"a", value: b"1", sensitive: false },
            HeaderField { name: b"", value: b"", sensitive: true },
            HeaderField { name: b"bb", value: b"22", sensitive: false },
        ]
    );
}

#[test]
fn request_emits_pseudo_headers_then_fields() {
    let uri: Uri = "https://example.com:8443/a/b?x=1".parse().unwrap();
    let list = HeaderList::request(&Method::POST, &uri, &headers());
    let mut want = vec![
        (":method", "POST", false),
        (":scheme", "https", false),
        (":authority", "example.com:8443", false),
        (":path", "/a/b?x=1", false),
    ];
    want.extend(HEADER_FIELDS);
    assert_eq!(as_strings(&list), expected(&want));
}

#[test]
fn request_path_defaults_to_slash() {
    let uri: Uri = "http://example.com".parse().unwrap();
    let list = HeaderList::request(&Method::GET, &uri, &HeaderMap::new());
    assert_eq!(
        as_strings(&list),
        expected(&[
            (":method", "GET", false),
            (":scheme", "http", false),
            (":authority", "example.com", false),
            (":path", "/", false)
        ])
    );
    // Origin-form URI: no scheme or authority to give.
    let uri: Uri = "/only/path".parse().unwrap();
    let list = HeaderList::request(&Method::GET, &uri, &HeaderMap::new());
    assert_eq!(as_strings(&list), expected(&[(":method", "GET", false), (":path", "/only/path", false)]));
}

#[test]
fn authority_drops_userinfo() {
    let uri: Uri = "https://user:secret@example.com:8080/".parse().unwrap();
    let list = HeaderList::request(&Method::GET, &uri, &HeaderMap::new());
    assert_eq!(list.fields()[2], HeaderField { name: b":authority", value: b"example.com:8080", sensitive: false });
}

#[test]
fn connect_request_has_method_and_authority_only() {
    let uri: Uri = "proxy.example:443".parse().unwrap();
    let list = HeaderList::request(&Method::CONNECT, &uri, &HeaderMap::new());
    assert_eq!(
        as_strings(&list),
        expected(&[(":method", "CONNECT", false), (":authority", "proxy.example:443", false)])
    );
}

#[test]
fn response_and_trailers() {
    let list = HeaderList::response(StatusCode::NOT_FOUND, &headers());
    let mut want = vec![(":status", "404", false)];
    want.extend(HEADER_FIELDS);
    assert_eq!(as_strings(&list), expected(&want));
    let list = HeaderList::trailers(&headers());
    assert_eq!(as_strings(&list), expected(&HEADER_FIELDS));
    assert!(HeaderList::trailers(&HeaderMap::new()).is_empty());
}

#[test]
fn split_fields_cuts_names_and_values_back_to_back() {
    let bytes = b":path/indexauthorizationBearer x";
    let mut fields = vec![HeaderField { name: b"kept", value: b"", sensitive: false }];
    split_fields(bytes, [(5, 6, false), (13, 8, true)].into_iter(), &mut fields).unwrap();
    assert_eq!(
        fields[1..],
        [
            HeaderField { name: b":path", value: b"/index", sensitive: false },
            HeaderField { name: b"authorization", value: b"Bearer x", sensitive: true },
        ]
    );
    split_fields(b"", [(0, 0, false)].into_iter(), &mut fields).unwrap();
    assert_eq!(fields.len(), 4, "an empty name and value is a field (validation refuses it later)");
}

#[test]
fn split_fields_refuses_lengths_that_do_not_add_up() {
    let mut fields = Vec::new();
    let bytes = b"abcdef";
    for (lengths, total) in
        [(vec![(3, 4, false)], 7), (vec![(3, 2, false)], 5), (vec![(usize::MAX, usize::MAX, false)], u64::MAX)]
    {
        let refused = split_fields(bytes, lengths.into_iter(), &mut fields);
        assert_eq!(refused, Err(HpackError::FieldLengths { lengths: total, bytes: 6 }));
        assert_eq!(
            refused.unwrap_err().to_string(),
            format!("header field lengths count {total} bytes, the list holds 6")
        );
    }
    assert!(fields.is_empty());
}
