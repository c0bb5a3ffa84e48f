//! Human-readable durations in config files: `"500ms"`, `"5s"`, `"2m"`, `"1h"`.

use serde::de::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A duration written as a string with a unit suffix (`ms`, `s`, `m`, `h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// Parses `"<number><unit>"` (the number may have a fraction: `"1.5s"`); returns a message
    /// that names the accepted forms on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let form = "like \"500ms\", \"1.5s\", \"2m\" or \"1h\"";
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("invalid duration {text:?}: add a unit, {form}")),
            _ => {
                return Err(format!(
                    "invalid duration unit in {text:?}: use ms, s, m or h ({form})"
                ));
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(fraction) || fraction.len() > 9 {
            return Err(format!(
                "invalid duration {text:?}: expected a number with a unit, {form}"
            ));
        }
        let too_long = || format!("invalid duration {text:?}: too long");
        let whole: u128 = whole.parse().map_err(|_| too_long())?;
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let scale = 10u128.pow(fraction.len() as u32);
            fraction.parse::<u128>().map_err(|_| too_long())? * unit_nanos / scale
        };
        let nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(too_long)?;
        Ok(ConfigDuration(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ConfigDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ConfigDuration, E> {
                ConfigDuration::parse(text).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<ConfigDuration, E> {
                Err(E::custom(format!(
                    "durations are strings with a unit: write \"{number}s\" (or \"{number}ms\")"
                )))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<ConfigDuration, E> {
                self.visit_i64(number as i64)
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<ConfigDuration, E> {
                Err(E::custom(format!(
                    "durations are strings with a unit: write \"{number}s\""
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
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
    fn fractions_are_exact() {
        let table = [
            ("1.5s", Duration::from_millis(1500)),
            ("0.25s", Duration::from_millis(250)),
            ("2.5ms", Duration::from_micros(2500)),
            ("1.000000001s", Duration::new(1, 1)),
            ("0.5h", Duration::from_secs(1800)),
        ];
        for (text, expected) in table {
            assert_eq!(ConfigDuration::parse(text).unwrap().0, expected, "{text}");
        }
    }

    #[test]
    fn integers_get_the_fix_spelled_out() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            t: ConfigDuration,
        }
        let error = toml::from_str::<T>("t = 90").unwrap_err().to_string();
        assert!(error.contains("write \"90s\""), "{error}");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            ".5s",
            "1.s5",
            "1..5s",
            "1.5",
            "1.0000000001s",
            "99999999999999999999h",
        ] {
            assert!(ConfigDuration::parse(bad).is_err(), "{bad}");
        }
        assert!(ConfigDuration::parse("5").is_err());
        assert!(ConfigDuration::parse("s").is_err());
        assert!(ConfigDuration::parse("5 years").is_err());
        assert!(ConfigDuration::parse("-1s").is_err());
    }
}
