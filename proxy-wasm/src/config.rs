//! The filter's configuration: `key=value` words separated by whitespace.
//!
//! The plugin configuration sets up the tunnels of one listener
//! ([`TunnelConfig`]); the VM configuration sets up the VM's one pool
//! ([`VmSettings`]), shared by every listener whose filter runs in that VM.
//! Sizes are byte counts.

use h2fw::pool::PoolConfig;

use crate::tunnel::TunnelConfig;

/// A configuration word that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A word without `=`.
    #[error("configuration word {word:?} is not key=value")]
    NotKeyValue { word: String },
    /// A key this configuration does not have.
    #[error("unknown configuration key {key:?} (known: {known})")]
    UnknownKey { key: String, known: &'static str },
    /// A value that is not a number, or out of range.
    #[error("configuration {key}={value:?}: {reason}")]
    BadValue { key: String, value: String, reason: &'static str },
    /// The configuration is not UTF-8.
    #[error("configuration is not UTF-8")]
    NotUtf8,
}

/// VM-wide settings: the pool every tunnel of the VM leases from, and how
/// often the gauges are refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    /// The pool's limits.
    pub pool: PoolConfig,
    /// Period of the statistics tick, milliseconds.
    pub tick_ms: u32,
}

impl Default for VmSettings {
    /// The pool's defaults and a 100 ms tick.
    fn default() -> Self {
        Self { pool: PoolConfig::default(), tick_ms: 100 }
    }
}

/// Parses the VM configuration (`pool_budget`, `pool_idle_bytes`,
/// `pool_idle_per_class`, `pool_min_class`, `pool_max_class`, `tick_ms`).
pub fn parse_vm(text: &[u8]) -> Result<VmSettings, ConfigError> {
    const KNOWN: &str = "pool_budget, pool_idle_bytes, pool_idle_per_class, pool_min_class, pool_max_class, tick_ms";
    let mut settings = VmSettings::default();
    for (key, value) in words(text)? {
        // The key first: an unknown one is named as such, whatever its value.
        let size = match key {
            "pool_budget" => &mut settings.pool.budget_bytes,
            "pool_idle_bytes" => &mut settings.pool.idle_total_bytes,
            "pool_idle_per_class" => &mut settings.pool.idle_per_class,
            "pool_min_class" => &mut settings.pool.min_class,
            "pool_max_class" => &mut settings.pool.max_class,
            "tick_ms" => {
                settings.tick_ms = u32_value(key, value, number(key, value)?)?;
                continue;
            }
            _ => return Err(ConfigError::UnknownKey { key: key.into(), known: KNOWN }),
        };
        *size = number(key, value)?;
    }
    Ok(settings)
}

/// Parses the plugin configuration (`authority`, `recv_window`,
/// `stream_buffer`, `hold_bytes`, `pool_share`).
pub fn parse_plugin(text: &[u8]) -> Result<TunnelConfig, ConfigError> {
    const KNOWN: &str = "authority, recv_window, stream_buffer, hold_bytes, pool_share";
    let mut config = TunnelConfig::default();
    for (key, value) in words(text)? {
        if key == "authority" {
            if value.is_empty() || value.bytes().any(|b| b.is_ascii_control()) {
                return Err(bad(key, value, "must be a non-empty host:port"));
            }
            config.authority = value.into();
            continue;
        }
        if !KNOWN.split(", ").any(|known| known == key) {
            return Err(ConfigError::UnknownKey { key: key.into(), known: KNOWN });
        }
        let number = number(key, value)?;
        match key {
            "recv_window" => {
                let window = u32_value(key, value, number)?;
                if !(65_535..=h2fw::conn::MAX_WINDOW as u32).contains(&window) {
                    return Err(bad(key, value, "must be from 65535 to 2^31-1"));
                }
                config.recv_window = window;
            }
            "stream_buffer" => config.stream_buffer = number,
            "hold_bytes" => config.hold_bytes = number,
            // `pool_share`, the one known key left.
            _ => config.pool_share = Some(number),
        }
    }
    Ok(config)
}

fn words(text: &[u8]) -> Result<impl Iterator<Item = (&str, &str)>, ConfigError> {
    let text = std::str::from_utf8(text).map_err(|_| ConfigError::NotUtf8)?;
    let pairs: Result<Vec<_>, _> = text
        .split_whitespace()
        .map(|word| word.split_once('=').ok_or_else(|| ConfigError::NotKeyValue { word: word.into() }))
        .collect();
    Ok(pairs?.into_iter())
}

fn number(key: &str, value: &str) -> Result<usize, ConfigError> {
    value.parse().map_err(|_| bad(key, value, "not a byte count"))
}

fn u32_value(key: &str, value: &str, number: usize) -> Result<u32, ConfigError> {
    u32::try_from(number).map_err(|_| bad(key, value, "must fit in 32 bits"))
}

fn bad(key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::BadValue { key: key.into(), value: value.into(), reason }
}

#[cfg(test)]
mod tests {
    use super::{ConfigError, parse_plugin, parse_vm};

    #[test]
    fn plugin_words_set_the_tunnel_and_bad_ones_are_named() {
        let config = parse_plugin(b"authority=echo.test:443 recv_window=65535 hold_bytes=4096\n pool_share=1024")
            .expect("valid");
        assert_eq!(
            (config.authority.as_str(), config.recv_window, config.hold_bytes, config.pool_share),
            ("echo.test:443", 65_535, 4096, Some(1024))
        );
        let bad =
            |value: &str, reason| ConfigError::BadValue { key: "recv_window".into(), value: value.into(), reason };
        assert_eq!(parse_plugin(b"recv_window=65534"), Err(bad("65534", "must be from 65535 to 2^31-1")));
        assert_eq!(parse_plugin(b"recv_window=4294967296"), Err(bad("4294967296", "must fit in 32 bits")));
        assert_eq!(parse_plugin(b"recv_window=lots"), Err(bad("lots", "not a byte count")));
        assert_eq!(parse_plugin(b"authority"), Err(ConfigError::NotKeyValue { word: "authority".into() }));
        assert!(matches!(parse_plugin(b"color=blue"), Err(ConfigError::UnknownKey { key, .. }) if key == "color"));
        assert_eq!(
            parse_plugin(b"authority=a\x01b").unwrap_err().to_string(),
            "configuration authority=\"a\\u{1}b\": must be a non-empty host:port"
        );
        assert_eq!(parse_plugin(&[0xff]), Err(ConfigError::NotUtf8));
    }

    #[test]
    fn vm_words_set_the_pool() {
        let settings = parse_vm(b"pool_budget=524288 pool_idle_bytes=65536 tick_ms=250").expect("valid");
        assert_eq!(
            (settings.pool.budget_bytes, settings.pool.idle_total_bytes, settings.tick_ms),
            (524_288, 65_536, 250)
        );
        assert!(matches!(parse_vm(b"authority=x"), Err(ConfigError::UnknownKey { key, .. }) if key == "authority"));
    }
}
