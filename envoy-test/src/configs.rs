//! Envoy configurations of the topology (YAML; every port 0, bound on
//! 127.0.0.1, found through the admin interface).

use std::fmt::Write as _;
use std::net::SocketAddr;

/// Authority that Envoy B routes to the echo server.
pub const ECHO_AUTHORITY: &str = "echo.test:443";
/// Authority that Envoy B answers with 403.
pub const REFUSED_AUTHORITY: &str = "refused.test:443";

fn admin() -> &'static str {
    "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}\n"
}

/// Appends a listener `name` on 127.0.0.1 (port 0) with `options` (YAML
/// lines at the listener's level) and one filter chain of `filters` (YAML
/// list items).
fn listener(yaml: &mut String, name: &str, options: &str, filters: &str) {
    write!(
        yaml,
        "  - name: {name}\n    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}\n{options}    filter_chains:\n    - filters:\n{filters}"
    )
    .expect("writing to a String");
}

/// The `tcp_proxy` filter toward cluster `name`, with `extra` (YAML lines
/// of its config).
fn tcp_proxy_filter(name: &str, extra: &str) -> String {
    format!(
        r#"      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: {name}
          cluster: {name}
{extra}"#
    )
}

fn cluster(name: &str, addr: SocketAddr, http2: bool) -> String {
    let h2 = if http2 {
        "\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http2_protocol_options: {}}"
    } else {
        ""
    };
    format!(
        "  - name: {name}\n    type: STATIC\n    connect_timeout: 5s{h2}\n    load_assignment: {{cluster_name: {name}, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}}}]}}]}}\n",
        addr.ip(),
        addr.port()
    )
}

/// Envoy B: stock HTTP/2 listeners terminating CONNECT toward `echo`.
/// `connect` routes `echo.test:443` to the echo server and answers
/// `refused.test:443` with 403; `goaway` does the same but ends every
/// connection after one second (GOAWAY, `max_connection_duration`). With
/// `small_windows`, both grant 64 KiB stream and connection windows, so
/// that any transfer beyond them needs WINDOW_UPDATEs.
pub fn terminator(echo: SocketAddr, small_windows: bool) -> String {
    let windows =
        if small_windows { ", initial_stream_window_size: 65536, initial_connection_window_size: 65536" } else { "" };
    let mut yaml = String::from(admin());
    yaml.push_str("static_resources:\n  listeners:\n");
    for (name, extra) in [
        ("connect", ""),
        (
            "goaway",
            "\n          common_http_protocol_options: {max_connection_duration: 1s}\n          drain_timeout: 1s",
        ),
    ] {
        let filters = format!(
            r#"      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          codec_type: HTTP2
          http2_protocol_options: {{allow_connect: true{windows}}}
          upgrade_configs: [{{upgrade_type: CONNECT}}]{extra}
          route_config:
            virtual_hosts:
            - name: refused
              domains: ["{REFUSED_AUTHORITY}"]
              routes: [{{match: {{connect_matcher: {{}}}}, direct_response: {{status: 403}}}}]
            - name: echo
              domains: ["*"]
              routes:
              - match: {{connect_matcher: {{}}}}
                route: {{cluster: echo, upgrade_configs: [{{upgrade_type: CONNECT, connect_config: {{}}}}]}}
          http_filters: [{{name: envoy.filters.http.router, typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}}}]
"#
        );
        listener(&mut yaml, name, "", &filters);
    }
    yaml.push_str("  clusters:\n");
    yaml.push_str(&cluster("echo", echo, false));
    yaml
}

/// One listener of Envoy A: the h2fw filter (plugin configuration
/// `plugin`), then tcp_proxy toward `upstream`.
pub struct FilterListener<'a> {
    /// Listener (and cluster) name.
    pub name: &'a str,
    /// Plugin configuration words (`authority=...` and so on).
    pub plugin: String,
    /// Where tcp_proxy connects.
    pub upstream: SocketAddr,
}

/// Envoy A with the h2fw filter: one VM (`vm_id: h2fw`, VM configuration
/// `vm`) for all `listeners`, whose downstream buffers are limited to
/// 32 KiB (what a window update of the upstream lets out, see the filter).
pub fn filter_proxy(filter: &str, vm: &str, listeners: &[FilterListener<'_>]) -> String {
    let mut yaml = String::from(admin());
    yaml.push_str("static_resources:\n  listeners:\n");
    for l in listeners {
        let wasm = format!(
            r#"      - name: envoy.filters.network.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: h2fw
            root_id: h2fw
            configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: "{plugin}"}}
            vm_config:
              vm_id: h2fw
              runtime: envoy.wasm.runtime.v8
              configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: "{vm}"}}
              code: {{local: {{filename: "{filter}"}}}}
"#,
            plugin = l.plugin,
        );
        let filters = wasm + &tcp_proxy_filter(l.name, "");
        listener(&mut yaml, l.name, "    per_connection_buffer_limit_bytes: 32768\n", &filters);
    }
    yaml.push_str("  clusters:\n");
    for l in listeners {
        yaml.push_str(&cluster(l.name, l.upstream, false));
    }
    yaml
}

/// Envoy A without wasm: Envoy's own TCP tunnelling over HTTP/2 CONNECT
/// (`tcp_proxy` with `tunneling_config`) toward `terminator`.
pub fn native_proxy(terminator: SocketAddr) -> String {
    tcp_proxy("native", terminator, true)
}

/// Envoy A as a plain `tcp_proxy` straight to `echo`, no tunnel: what
/// Envoy itself spends on a downstream connection and its upstream TCP
/// connection, the floor under the filter's setup.
pub fn plain_proxy(echo: SocketAddr) -> String {
    tcp_proxy("plain", echo, false)
}

/// One listener `name` with `tcp_proxy` toward `upstream`, tunnelling over
/// HTTP/2 CONNECT (`tunneling_config`) or not.
fn tcp_proxy(name: &str, upstream: SocketAddr, tunneling: bool) -> String {
    let tunneling_config = if tunneling {
        format!("          tunneling_config: {{hostname: \"{ECHO_AUTHORITY}\"}}\n")
    } else {
        String::new()
    };
    let mut yaml = String::from(admin());
    yaml.push_str("static_resources:\n  listeners:\n");
    listener(&mut yaml, name, "", &tcp_proxy_filter(name, &tunneling_config));
    yaml.push_str("  clusters:\n");
    yaml.push_str(&cluster(name, upstream, tunneling));
    yaml
}
