//! Route URIs: `host[/path]`, `*.domain[/path]` or `/path` (any host).

use std::fmt;

/// Which hosts a route serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Any host (a uri that starts with `/`).
    Any,
    /// One host, lower-cased.
    Exact(String),
    /// `*.<suffix>`: every host below `suffix`, at any depth. Holds the suffix.
    Wildcard(String),
}

/// A parsed, normalised route URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteUri {
    /// Host part.
    pub host: HostPattern,
    /// Path prefix without a trailing `/`; empty for the root.
    pub path: String,
}

fn valid_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

impl RouteUri {
    /// Parses and normalises a route uri; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<RouteUri, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("route uri is empty".into());
        }
        if text.contains("://") {
            return Err(format!(
                "route uri {text:?} must not have a scheme: write host[/path]"
            ));
        }
        let (host_text, path) = match text.find('/') {
            Some(i) => text.split_at(i),
            None => (text, ""),
        };
        if let Some(bad) = path
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace())
        {
            return Err(format!("route uri {text:?} has {bad:?} in its path"));
        }
        let path = path.trim_end_matches('/').to_ascii_lowercase();
        let host_text = host_text.to_ascii_lowercase();
        let host = if host_text.is_empty() {
            HostPattern::Any
        } else if let Some(suffix) = host_text.strip_prefix("*.") {
            check_host(suffix, text)?;
            HostPattern::Wildcard(suffix.to_string())
        } else {
            check_host(&host_text, text)?;
            HostPattern::Exact(host_text)
        };
        Ok(RouteUri { host, path })
    }
}

fn check_host(host: &str, uri: &str) -> Result<(), String> {
    if host.is_empty() || host.starts_with('.') || host.ends_with('.') || host.contains("..") {
        return Err(format!("route uri {uri:?} has an invalid host"));
    }
    if let Some(bad) = host.chars().find(|&c| !valid_host_char(c)) {
        let hint = if bad == ':' {
            " (ports are not part of a route)"
        } else {
            ""
        };
        return Err(format!("route uri {uri:?} has {bad:?} in its host{hint}"));
    }
    Ok(())
}

impl fmt::Display for RouteUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => {}
            HostPattern::Exact(host) => f.write_str(host)?,
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}")?,
        }
        if self.path.is_empty() && self.host == HostPattern::Any {
            return f.write_str("/");
        }
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let uri = RouteUri::parse("App.Example.com/api/").unwrap();
        assert_eq!(uri.host, HostPattern::Exact("app.example.com".into()));
        assert_eq!(uri.path, "/api");
        let uri = RouteUri::parse("*.example.com").unwrap();
        assert_eq!(uri.host, HostPattern::Wildcard("example.com".into()));
        assert_eq!(uri.to_string(), "*.example.com");
        let uri = RouteUri::parse("/serviceone/v1").unwrap();
        assert_eq!(uri.host, HostPattern::Any);
        assert_eq!(uri.to_string(), "/serviceone/v1");
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "http://a.com",
            "a b.com",
            "a.com:8080",
            "a.com/x?y",
            "*.",
            "a..b",
        ] {
            assert!(RouteUri::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
