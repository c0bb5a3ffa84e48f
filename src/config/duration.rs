//! Human-readable durations in config files: `"500ms"`, `"5s"`, `"2m"`, `"1h"`.

use serde::de::{Deserialize, Deserializer, Error as _};
use std::fmt;
use std::time::Duration;

/// A duration written as a string with a unit suffix (`ms`, `s`, `m`, `h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// Parses `"<integer><unit>"`; returns a message that names the accepted forms on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let value: u64 = digits
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected a number with a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\""))?;
        let duration = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value * 60),
            "h" => Duration::from_secs(value * 3600),
            _ => {
                return Err(format!(
                    "invalid duration unit in {text:?}: use ms, s, m or h (for example \"5s\")"
                ));
            }
        };
        Ok(ConfigDuration(duration))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigDuration::parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            ConfigDuration::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            ConfigDuration::parse("5s").unwrap().0,
            Duration::from_secs(5)
        );
        assert_eq!(
            ConfigDuration::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            ConfigDuration::parse("1h").unwrap().0,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(ConfigDuration::parse("5").is_err());
        assert!(ConfigDuration::parse("s").is_err());
        assert!(ConfigDuration::parse("5 years").is_err());
        assert!(ConfigDuration::parse("-1s").is_err());
    }
}
