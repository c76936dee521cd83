//! A deterministic corpus of realistic HTTP/2 header blocks for the HPACK
//! benchmarks (`benches/hpack.rs`) and the component bench (`h2fw bench`).
//!
//! The corpus is a set of connections; each is the sequence of header blocks
//! one endpoint encodes on one connection, because that is what an HPACK
//! encoder sees: the same few names and values again and again (host, user
//! agent, cookies, tokens) mixed with values that change on every message
//! (request ids, trace ids, dates, lengths, etags).
//!
//! | connection      | encodes                                            |
//! | --------------- | -------------------------------------------------- |
//! | `grpc-client`   | unary/streaming calls to a few services, bearer token, deadlines, trace ids |
//! | `grpc-server`   | response headers and trailers (`grpc-status`, occasional errors) |
//! | `browser`       | page loads: document, CSS, JS, images, XHR; Chrome headers, a 500-byte cookie |
//! | `web-server`    | responses to those loads: dates, etags, lengths, caching headers |
//! | `api-client`    | REST calls with a JWT, JSON bodies, request ids, idempotency keys |
//! | `api-server`    | JSON responses with rate-limit and upstream-timing headers |
//!
//! Seeded: every run builds the same bytes.

/// One header field of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Lowercase name or pseudo-header.
    pub name: String,
    /// Value.
    pub value: String,
    /// Never index (RFC 7541 §6.2.3); set for `authorization`.
    pub sensitive: bool,
}

/// One header block: request headers, response headers or trailers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Fields in wire order, pseudo-headers first.
    pub fields: Vec<Field>,
}

impl Block {
    fn push(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push(Field { name: name.to_owned(), value: value.into(), sensitive: false });
    }

    fn push_sensitive(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push(Field { name: name.to_owned(), value: value.into(), sensitive: true });
    }

    /// Value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|field| field.name == name).map(|field| field.value.as_str())
    }

    /// The block as the fields h2fw's encoder borrows.
    pub fn header_fields(&self) -> Vec<h2fw::hpack::HeaderField<'_>> {
        self.fields
            .iter()
            .map(|f| h2fw::hpack::HeaderField {
                name: f.name.as_bytes(),
                value: f.value.as_bytes(),
                sensitive: f.sensitive,
            })
            .collect()
    }

    /// Bytes of names plus values: the input an encoder reads.
    pub fn input_bytes(&self) -> usize {
        self.fields.iter().map(|field| field.name.len() + field.value.len()).sum()
    }
}

/// The header blocks one endpoint encodes on one connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Short name (see the module table).
    pub name: &'static str,
    /// Blocks in the order they are encoded.
    pub blocks: Vec<Block>,
}

/// Every connection of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// Connections, each encoded with its own encoder.
    pub connections: Vec<Connection>,
}

impl Corpus {
    /// The benchmark corpus: `messages` blocks per connection (about), six connections.
    pub fn generate(messages: usize) -> Corpus {
        let mut rng = Rng(0x6832_6677_2d63_6f72);
        Corpus {
            connections: vec![
                grpc_client(&mut rng, messages),
                grpc_server(&mut rng, messages),
                browser(&mut rng, messages),
                web_server(&mut rng, messages),
                api_client(&mut rng, messages),
                api_server(&mut rng, messages),
            ],
        }
    }

    /// Number of header blocks.
    pub fn blocks(&self) -> usize {
        self.connections.iter().map(|connection| connection.blocks.len()).sum()
    }

    /// Bytes of names plus values over all blocks.
    pub fn input_bytes(&self) -> usize {
        self.connections.iter().flat_map(|connection| &connection.blocks).map(Block::input_bytes).sum()
    }
}

/// SplitMix64: small, seeded, good enough to pick realistic values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits).map(|_| char::from(b"0123456789abcdef"[self.below(16)])).collect()
    }

    fn base64url(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len).map(|_| char::from(ALPHABET[self.below(ALPHABET.len())])).collect()
    }

    fn uuid(&mut self) -> String {
        format!("{}-{}-4{}-{}-{}", self.hex(8), self.hex(4), self.hex(3), self.hex(4), self.hex(12))
    }

    /// W3C trace context: a new trace and span per request.
    fn traceparent(&mut self) -> String {
        format!("00-{}-{}-01", self.hex(32), self.hex(16))
    }

    /// A JWT-shaped bearer token: header.payload.signature.
    fn jwt(&mut self) -> String {
        format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}", self.base64url(280), self.base64url(342))
    }
}

/// An HTTP date `seconds` after a fixed morning.
fn http_date(seconds: usize) -> String {
    let (hour, minute, second) = (9 + seconds / 3600 % 12, seconds / 60 % 60, seconds % 60);
    format!("Tue, 11 Mar 2025 {hour:02}:{minute:02}:{second:02} GMT")
}

fn grpc_client(rng: &mut Rng, messages: usize) -> Connection {
    const METHODS: &[&str] = &[
        "/orders.v1.OrderService/GetOrder",
        "/orders.v1.OrderService/ListOrders",
        "/orders.v1.OrderService/CreateOrder",
        "/inventory.v2.Inventory/Reserve",
        "/inventory.v2.Inventory/Release",
        "/payments.v1.Payments/Authorize",
        "/grpc.health.v1.Health/Check",
        "/users.v1.Users/GetProfile",
    ];
    let token = format!("Bearer {}", rng.jwt());
    let blocks = (0..messages)
        .map(|_| {
            let mut block = Block::default();
            block.push(":method", "POST");
            block.push(":scheme", "http");
            block.push(":authority", "orders.prod.svc.cluster.local:50051");
            block.push(":path", rng.pick(METHODS));
            block.push("content-type", "application/grpc");
            block.push("te", "trailers");
            block.push("user-agent", "grpc-go/1.64.0");
            block.push("grpc-accept-encoding", "identity,deflate,gzip");
            block.push("grpc-timeout", format!("{}m", 50 + rng.below(9950)));
            block.push_sensitive("authorization", token.as_str());
            block.push("x-request-id", rng.uuid());
            block.push("traceparent", rng.traceparent());
            if rng.chance(30) {
                block.push("x-tenant-id", format!("tenant-{}", rng.below(8)));
            }
            block
        })
        .collect();
    Connection { name: "grpc-client", blocks }
}

fn grpc_server(rng: &mut Rng, messages: usize) -> Connection {
    let mut blocks = Vec::with_capacity(messages);
    while blocks.len() < messages {
        let mut headers = Block::default();
        headers.push(":status", "200");
        headers.push("content-type", "application/grpc");
        headers.push("grpc-accept-encoding", "identity,deflate,gzip");
        if rng.chance(50) {
            headers.push("grpc-encoding", "gzip");
        }
        blocks.push(headers);

        let mut trailers = Block::default();
        if rng.chance(92) {
            trailers.push("grpc-status", "0");
        } else {
            const ERRORS: [(&str, &str); 3] =
                [("5", "order%20not%20found"), ("4", "deadline%20exceeded"), ("14", "upstream%20unavailable")];
            let (status, message) = ERRORS[rng.below(ERRORS.len())];
            trailers.push("grpc-status", status);
            trailers.push("grpc-message", message);
        }
        if rng.chance(20) {
            trailers.push("x-envoy-upstream-service-time", format!("{}", 1 + rng.below(400)));
        }
        blocks.push(trailers);
    }
    Connection { name: "grpc-server", blocks }
}

/// What a page load fetches after the document.
#[derive(Clone, Copy)]
enum Resource {
    Document,
    Style,
    Script,
    Image,
    Fetch,
}

const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn browser(rng: &mut Rng, messages: usize) -> Connection {
    const PAGES: &[&str] =
        &["/", "/products", "/products/espresso-grinder-m2", "/cart", "/account/orders", "/search?q=burr+grinder"];
    let cookies = format!(
        "_ga=GA1.2.{}.{}; _gid=GA1.2.{}.{}; session_id={}; csrftoken={}; prefs=lang%3Den%26currency%3DEUR%26theme%3Ddark; ab_bucket=checkout-v3-b; _fbp=fb.1.{}.{}",
        rng.below(1 << 30),
        1_700_000_000 + rng.below(10_000_000),
        rng.below(1 << 30),
        1_700_000_000 + rng.below(10_000_000),
        rng.base64url(43),
        rng.base64url(64),
        1_700_000_000_000u64 + rng.below(1 << 30) as u64,
        rng.below(1 << 30),
    );
    let build = rng.hex(8);
    let mut last_seen = 1_741_680_000;
    let mut blocks = Vec::with_capacity(messages);
    let mut page = 0;
    while blocks.len() < messages {
        let document = PAGES[page % PAGES.len()];
        page += 1;
        let referer = format!("https://shop.example.com{document}");
        let cookie = format!("{cookies}; last_seen={last_seen}");
        blocks.push(browser_request(document, Resource::Document, &cookie, None));
        for index in 0..(12 + rng.below(24)) {
            let (path, resource) = match rng.below(10) {
                0..=1 => {
                    (format!("/static/css/{}.{build}.css", rng.pick(&["app", "vendor", "print"])), Resource::Style)
                }
                2..=4 => (format!("/static/js/chunk-{}.{build}.js", index + rng.below(40)), Resource::Script),
                5..=8 => (
                    format!(
                        "/img/{}/{}-{}w.webp",
                        rng.pick(&["products", "banners", "icons"]),
                        rng.hex(10),
                        rng.pick(&["320", "640", "1280"])
                    ),
                    Resource::Image,
                ),
                _ => (format!("/api/cart/summary?ts={}", 1_741_680_000 + blocks.len()), Resource::Fetch),
            };
            blocks.push(browser_request(&path, resource, &cookie, Some(&referer)));
        }
        if rng.chance(25) {
            // The server set a cookie: later requests carry a changed header.
            last_seen += 60 + rng.below(600);
        }
    }
    blocks.truncate(messages);
    Connection { name: "browser", blocks }
}

fn browser_request(path: &str, resource: Resource, cookie: &str, referer: Option<&str>) -> Block {
    let mut block = Block::default();
    block.push(":method", "GET");
    block.push(":scheme", "https");
    block.push(":authority", "shop.example.com");
    block.push(":path", path);
    block.push("sec-ch-ua", "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"");
    block.push("sec-ch-ua-mobile", "?0");
    block.push("sec-ch-ua-platform", "\"Windows\"");
    if let Resource::Document = resource {
        block.push("upgrade-insecure-requests", "1");
    }
    block.push("user-agent", CHROME_UA);
    let (accept, site, mode, dest, priority) = match resource {
        Resource::Document => (
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            "none",
            "navigate",
            "document",
            "u=0, i",
        ),
        Resource::Style => ("text/css,*/*;q=0.1", "same-origin", "no-cors", "style", "u=0"),
        Resource::Script => ("*/*", "same-origin", "no-cors", "script", "u=1"),
        Resource::Image => (
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            "same-origin",
            "no-cors",
            "image",
            "u=5, i",
        ),
        Resource::Fetch => ("application/json", "same-origin", "cors", "empty", "u=1, i"),
    };
    block.push("accept", accept);
    block.push("sec-fetch-site", site);
    block.push("sec-fetch-mode", mode);
    if let Resource::Document = resource {
        block.push("sec-fetch-user", "?1");
    }
    block.push("sec-fetch-dest", dest);
    if let Some(referer) = referer {
        block.push("referer", referer);
    }
    block.push("accept-encoding", "gzip, deflate, br, zstd");
    block.push("accept-language", "en-US,en;q=0.9,de;q=0.8");
    block.push("cookie", cookie);
    block.push("priority", priority);
    block
}

fn web_server(rng: &mut Rng, messages: usize) -> Connection {
    let mut seconds = rng.below(3600);
    let blocks = (0..messages)
        .map(|index| {
            if rng.chance(30) {
                seconds += 1;
            }
            let mut block = Block::default();
            let document = index % 20 == 0;
            let not_modified = !document && rng.chance(15);
            block.push(":status", if not_modified { "304" } else { "200" });
            block.push("date", http_date(seconds));
            block.push("server", "nginx");
            let content_type = if document {
                "text/html; charset=utf-8"
            } else {
                rng.pick(&["text/css", "application/javascript", "image/webp", "image/webp", "application/json"])
            };
            if !not_modified {
                block.push("content-type", content_type);
                block.push("content-length", format!("{}", 200 + rng.below(180_000)));
            }
            if document {
                block.push("cache-control", "no-cache, private");
                block.push("strict-transport-security", "max-age=63072000; includeSubDomains; preload");
                block.push("x-content-type-options", "nosniff");
                block.push("content-security-policy", "default-src 'self'; img-src 'self' data: https://cdn.example.com; script-src 'self' 'nonce-r4nd0m'");
                if rng.chance(40) {
                    block.push("set-cookie", format!("session_id={}; Path=/; Secure; HttpOnly; SameSite=Lax", rng.base64url(43)));
                }
                block.push("alt-svc", "h3=\":443\"; ma=86400");
            } else {
                block.push("cache-control", "public, max-age=31536000, immutable");
                block.push("etag", format!("\"{}\"", rng.hex(16)));
                block.push("last-modified", "Mon, 10 Mar 2025 17:42:06 GMT");
                if content_type != "image/webp" {
                    block.push("content-encoding", "br");
                    block.push("vary", "Accept-Encoding");
                }
                block.push("accept-ranges", "bytes");
            }
            block
        })
        .collect();
    Connection { name: "web-server", blocks }
}

fn api_client(rng: &mut Rng, messages: usize) -> Connection {
    let token = format!("Bearer {}", rng.jwt());
    let blocks = (0..messages)
        .map(|_| {
            let mut block = Block::default();
            let (method, path, body) = match rng.below(10) {
                0..=3 => ("GET", format!("/v1/users/{}", 10_000 + rng.below(5_000)), false),
                4..=5 => ("GET", format!("/v1/orders?limit=50&cursor={}", rng.base64url(24)), false),
                6..=7 => ("POST", "/v1/orders".to_owned(), true),
                8 => ("PUT", format!("/v1/orders/{}/items/{}", rng.hex(12), rng.below(20)), true),
                _ => ("DELETE", format!("/v1/sessions/{}", rng.hex(24)), false),
            };
            block.push(":method", method);
            block.push(":scheme", "https");
            block.push(":authority", "api.example.com");
            block.push(":path", path);
            block.push("accept", "application/json");
            block.push_sensitive("authorization", token.as_str());
            block.push("user-agent", "example-sdk-python/3.2.1 python/3.11.8 linux/x86_64");
            block.push("accept-encoding", "gzip, deflate");
            block.push("x-request-id", rng.uuid());
            if body {
                block.push("content-type", "application/json");
                block.push("content-length", format!("{}", 40 + rng.below(2_000)));
                if method == "POST" {
                    block.push("idempotency-key", rng.uuid());
                }
            }
            block
        })
        .collect();
    Connection { name: "api-client", blocks }
}

fn api_server(rng: &mut Rng, messages: usize) -> Connection {
    let mut seconds = rng.below(3600);
    let mut remaining = 1000;
    let blocks = (0..messages)
        .map(|_| {
            if rng.chance(40) {
                seconds += 1;
            }
            remaining = if remaining == 0 { 1000 } else { remaining - 1 };
            let mut block = Block::default();
            let status = rng.pick(&["200", "200", "200", "200", "200", "200", "201", "204", "400", "404"]);
            block.push(":status", status);
            block.push("date", http_date(seconds));
            if status != "204" {
                block.push("content-type", "application/json");
                block.push("content-length", format!("{}", 2 + rng.below(40_000)));
            }
            block.push("cache-control", "no-store");
            block.push("x-request-id", rng.uuid());
            block.push("x-ratelimit-limit", "1000");
            block.push("x-ratelimit-remaining", format!("{remaining}"));
            block.push("x-ratelimit-reset", format!("{}", 1_741_683_600 + seconds / 3600 * 3600));
            block.push("server", "envoy");
            block.push("x-envoy-upstream-service-time", format!("{}", 1 + rng.below(250)));
            block
        })
        .collect();
    Connection { name: "api-server", blocks }
}
