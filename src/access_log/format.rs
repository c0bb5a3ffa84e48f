//! Access log lines: gorouter's text layout or one JSON object, with every value escaped so a
//! client cannot forge a line (text: quotes, backslashes, control and non-ASCII bytes as
//! `\xNN`; JSON: as JSON strings).

use super::endpoint_text::{EndpointText, EndpointTexts};
use super::record::{Record, Text};
use super::time::{Stamps, digits};
use crate::config::AccessLogFormat as LogFormat;
use crate::http1::lines::append;
use crate::routing::Endpoint;
use http::HeaderValue;
use std::net::SocketAddr;
use std::time::Duration;

/// Writes records as lines, keeping what lines share: the current second's timestamp text and
/// each endpoint's fields, formatted once.
#[derive(Debug)]
pub struct Formatter {
    format: LogFormat,
    stamps: Stamps,
    endpoints: EndpointTexts,
}

impl Formatter {
    /// A formatter writing `format`.
    pub fn new(format: LogFormat) -> Formatter {
        Formatter {
            format,
            stamps: Stamps::default(),
            endpoints: EndpointTexts::default(),
        }
    }

    /// Reads the clocks again (once per batch of lines: see [`Stamps::tick`]).
    pub fn tick(&mut self) {
        self.stamps.tick();
    }

    /// Appends the line for `record`, with its newline.
    pub fn write_line(&mut self, out: &mut Vec<u8>, record: &Record) {
        let (stamps, endpoints) = (&mut self.stamps, &mut self.endpoints);
        let endpoint = record.endpoint.as_ref();
        match self.format {
            LogFormat::Text => {
                let endpoint = endpoint.map(|e| endpoints.get(e, endpoint_fields::<TextLayout>));
                write_text(out, record, stamps, endpoint)
            }
            LogFormat::Json => {
                let endpoint = endpoint.map(|e| endpoints.get(e, endpoint_fields::<JsonLayout>));
                write_json(out, record, stamps, endpoint)
            }
        }
        out.push(b'\n');
    }
}

/// A named field's prefix in each layout: ` name:` (text) and `,"name":` (JSON).
struct Name {
    text: &'static str,
    json: &'static str,
}

macro_rules! name {
    ($name:literal) => {
        Name {
            text: concat!(" ", $name, ":"),
            json: concat!(",\"", $name, "\":"),
        }
    };
}

/// How a layout writes its named fields.
trait Layout {
    /// Appends the prefix of the field `name`.
    fn name(out: &mut Vec<u8>, name: Name);
    /// Appends a text value; a missing or empty one as `"-"` (text) or `null` (JSON).
    fn text(out: &mut Vec<u8>, value: Option<&[u8]>);
    /// Appends the named text field `name`.
    fn field(out: &mut Vec<u8>, name: Name, value: Option<&[u8]>) {
        Self::name(out, name);
        Self::text(out, value);
    }
}

struct TextLayout;
struct JsonLayout;

impl Layout for TextLayout {
    fn name(out: &mut Vec<u8>, name: Name) {
        append(out, name.text.as_bytes());
    }
    fn text(out: &mut Vec<u8>, value: Option<&[u8]>) {
        quoted(out, value);
    }
}

impl Layout for JsonLayout {
    fn name(out: &mut Vec<u8>, name: Name) {
        append(out, name.json.as_bytes());
    }
    fn text(out: &mut Vec<u8>, value: Option<&[u8]>) {
        json_string(out, value.filter(|v| !v.is_empty()));
    }
}

/// The endpoint's part of a line: its address and its three application fields (formatted
/// once per endpoint by [`EndpointTexts`]).
fn endpoint_fields<L: Layout>(endpoint: &Endpoint) -> EndpointText {
    let spec = &endpoint.spec;
    let mut text = EndpointText::default();
    address(&mut text.address, spec.address);
    L::field(&mut text.app, name!("app_id"), Some(spec.app_id.as_bytes()));
    let index = Some(spec.instance_index.as_bytes());
    L::field(&mut text.app, name!("app_index"), index);
    let instance = Some(spec.instance_id.as_bytes());
    L::field(&mut text.app, name!("instance_id"), instance);
    text
}

/// The named fields after the client and backend addresses, in gorouter's order, with the
/// endpoint's application fields (`app`, formatted) in their place.
fn write_named<L: Layout>(out: &mut Vec<u8>, record: &Record, app: Option<&[u8]>) {
    let texts = &record.text;
    L::field(
        out,
        name!("x_forwarded_for"),
        texts.get(Text::XForwardedFor),
    );
    L::field(
        out,
        name!("x_forwarded_proto"),
        texts.get(Text::XForwardedProto),
    );
    L::field(
        out,
        name!("vcap_request_id"),
        Some(record.request_id.as_bytes()),
    );
    L::name(out, name!("response_time"));
    seconds(out, record.response_time);
    match app {
        Some(app) => append(out, app),
        None => {
            for name in [name!("app_id"), name!("app_index"), name!("instance_id")] {
                L::field(out, name, None);
            }
        }
    }
    L::field(
        out,
        name!("x_cf_routererror"),
        record.router_error.as_ref().map(HeaderValue::as_bytes),
    );
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    L::field(
        out,
        name!("route_service"),
        route_service.as_deref().map(str::as_bytes),
    );
}

/// The bytes written as they are in the text layout: printable ASCII but `"` and `\`.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0x20;
    while byte <= 0x7e {
        table[byte] = byte != b'"' as usize && byte != b'\\' as usize;
        byte += 1;
    }
    table
};

/// Appends `bytes` escaped for the text layout: `"` and `\` with a backslash, anything outside
/// printable ASCII as `\xNN`. Most texts need nothing escaped and are copied at once.
#[inline]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let plain = plain_prefix(bytes);
    append(out, &bytes[..plain]);
    if plain < bytes.len() {
        escaped_from(out, &bytes[plain..]);
    }
}

/// Appends `bytes`, whose first byte needs escaping, escaped.
#[inline(never)]
fn escaped_from(out: &mut Vec<u8>, mut bytes: &[u8]) {
    while let Some((&byte, rest)) = bytes.split_first() {
        match byte {
            b'"' | b'\\' => append(out, &[b'\\', byte]),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let (high, low) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]);
                append(out, &[b'\\', b'x', high, low]);
            }
        }
        let plain = plain_prefix(rest);
        append(out, &rest[..plain]);
        bytes = &rest[plain..];
    }
}

/// How many bytes at the start of `bytes` need no escaping (`PLAIN`), found eight at a time;
/// the last eight bytes of a longer text are read as one word overlapping the ones before.
#[inline]
fn plain_prefix(bytes: &[u8]) -> usize {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let len = bytes.len();
    if len < 8 {
        return bytes
            .iter()
            .position(|&b| !PLAIN[usize::from(b)])
            .unwrap_or(len);
    }
    let mut at = 0;
    while at + 8 <= len {
        let flagged = needs_escape(word(at));
        if flagged != 0 {
            return at + (flagged.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    if at == len {
        return len;
    }
    // The bytes before `at` are plain: only the word's last `len - at` bytes can be flagged.
    let flagged = needs_escape(word(len - 8)) >> (8 * (8 - (len - at)));
    match flagged {
        0 => len,
        _ => at + (flagged.trailing_zeros() / 8) as usize,
    }
}

/// The high bit of each of the eight bytes of `word` that needs escaping (not `PLAIN`: its
/// high bit set, under 0x20, 0x7f, `"` or `\`). Exact for the lowest flagged byte (a borrow
/// only carries upwards from a flagged byte), which is all [`plain_prefix`] reads.
fn needs_escape(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let special = zero_byte(word ^ (ONES * 0x7f))
        | zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')));
    (word & HIGH) | below_space | special
}

/// Appends `"value"` (or `"-"` when there is none).
fn quoted(out: &mut Vec<u8>, value: Option<&[u8]>) {
    out.push(b'"');
    match value {
        Some(value) if !value.is_empty() => escaped(out, value),
        _ => out.push(b'-'),
    }
    out.push(b'"');
}

/// Appends a decimal number.
fn number(out: &mut Vec<u8>, n: u64) {
    append(out, itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `duration` in seconds with six decimals.
fn seconds(out: &mut Vec<u8>, duration: Duration) {
    number(out, duration.as_secs());
    out.push(b'.');
    digits(out, duration.subsec_micros(), 6);
}

/// The decimal digits of every byte value: length, then up to three digits.
const OCTETS: [[u8; 4]; 256] = {
    let mut table = [[0; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = match n {
            100.. => [3, b'0' + hundreds, b'0' + tens, b'0' + ones],
            10.. => [2, b'0' + tens, b'0' + ones, 0],
            _ => [1, b'0' + ones, 0, 0],
        };
        n += 1;
    }
    table
};

/// Appends `ip:port` (`[ip]:port` for IPv6).
fn address(out: &mut Vec<u8>, address: SocketAddr) {
    match address {
        SocketAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                let [digits, a, b, c] = OCTETS[usize::from(octet)];
                text[len..len + 3].copy_from_slice(&[a, b, c]);
                len += usize::from(digits);
            }
            append(out, &text[..len]);
        }
        SocketAddr::V6(v6) => append(out, format!("[{}]", v6.ip()).as_bytes()),
    }
    out.push(b':');
    number(out, u64::from(address.port()));
}

fn version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn write_text(
    out: &mut Vec<u8>,
    record: &Record,
    stamps: &mut Stamps,
    endpoint: Option<&EndpointText>,
) {
    match record.text.get(Text::Host) {
        Some(host) if !host.is_empty() => escaped(out, host),
        _ => out.push(b'-'),
    }
    append(out, b" - [");
    stamps.write_instant(out, record.started);
    append(out, b"] \"");
    // A method is a token (the parsers refuse anything else): nothing to escape.
    append(out, record.method.as_str().as_bytes());
    out.push(b' ');
    escaped(out, record.text.get(Text::Target).unwrap_or_default());
    out.push(b' ');
    append(out, version(record.version).as_bytes());
    append(out, b"\" ");
    for n in [
        u64::from(record.status.as_u16()),
        record.bytes_in,
        record.bytes_out,
    ] {
        number(out, n);
        out.push(b' ');
    }
    quoted(out, record.text.get(Text::Referer));
    out.push(b' ');
    quoted(out, record.text.get(Text::UserAgent));
    append(out, b" \"");
    address(out, record.client);
    append(out, b"\" \"");
    append(out, endpoint.map_or(b"-", |e| &e.address));
    out.push(b'"');
    write_named::<TextLayout>(out, record, endpoint.map(|e| &e.app[..]));
}

/// Appends `value` as a JSON string (invalid UTF-8 replaced), or `null`. The plain start of
/// the text (printable ASCII but `"` and `\`, most often all of it) is copied as it is;
/// `serde_json` escapes the rest.
fn json_string(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(value) = value else {
        append(out, b"null");
        return;
    };
    out.push(b'"');
    let plain = plain_prefix(value);
    append(out, &value[..plain]);
    if plain < value.len() {
        json_escaped_from(out, &value[plain..]);
    }
    out.push(b'"');
}

/// Appends `bytes` escaped as the inside of a JSON string.
#[inline(never)]
fn json_escaped_from(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut quoted = Vec::with_capacity(bytes.len() + 8);
    let _ = serde_json::to_writer(&mut quoted, &String::from_utf8_lossy(bytes));
    append(out, &quoted[1..quoted.len() - 1]);
}

fn write_json(
    out: &mut Vec<u8>,
    record: &Record,
    stamps: &mut Stamps,
    endpoint: Option<&EndpointText>,
) {
    append(out, b"{\"time\":\"");
    stamps.write_instant(out, record.started);
    out.push(b'"');
    let leading: [(&str, Option<&[u8]>); 6] = [
        ("host", record.text.get(Text::Host)),
        ("method", Some(record.method.as_str().as_bytes())),
        ("uri", record.text.get(Text::Target)),
        ("protocol", Some(version(record.version).as_bytes())),
        ("referer", record.text.get(Text::Referer)),
        ("user_agent", record.text.get(Text::UserAgent)),
    ];
    for (name, value) in leading {
        append(out, b",\"");
        append(out, name.as_bytes());
        append(out, b"\":");
        json_string(out, value);
    }
    append(out, b",\"status\":");
    number(out, u64::from(record.status.as_u16()));
    append(out, b",\"client\":\"");
    address(out, record.client);
    append(out, b"\",\"backend\":");
    match endpoint {
        Some(endpoint) => {
            out.push(b'"');
            append(out, &endpoint.address);
            out.push(b'"');
        }
        None => append(out, b"null"),
    }
    write_named::<JsonLayout>(out, record, endpoint.map(|e| &e.app[..]));
    JsonLayout::name(out, name!("bytes_received"));
    number(out, record.bytes_in);
    JsonLayout::name(out, name!("bytes_sent"));
    number(out, record.bytes_out);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_a_line() {
        let cases: [(&[u8], &str); 4] = [
            (b"plain text/1.0", "plain text/1.0"),
            (b"a\"b\\c", "a\\\"b\\\\c"),
            (b"line\nbreak\x01", "line\\x0abreak\\x01"),
            (b"caf\xc3\xa9", "caf\\xc3\\xa9"),
        ];
        for (input, expected) in cases {
            let mut out = Vec::new();
            escaped(&mut out, input);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    /// 20,000 random texts of up to 40 bytes, three bytes in four drawn from `edges`.
    fn random_texts(seed: u64, edges: &[u8]) -> impl Iterator<Item = Vec<u8>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..20_000).map(move |_| {
            let len = rng.usize(0..40);
            (0..len)
                .map(|_| match rng.u8(0..4) {
                    0 => rng.u8(..),
                    _ => edges[rng.usize(0..edges.len())],
                })
                .collect()
        })
    }

    /// The eight-at-a-time scan against a byte at a time, over random strings drawn mostly
    /// from the bytes at the edges of what is plain, at every length and offset.
    #[test]
    fn escaping_matches_a_byte_at_a_time() {
        fn reference(bytes: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for &byte in bytes {
                match byte {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
                    0x20..=0x7e => out.push(byte),
                    _ => out.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
                }
            }
            out
        }
        let edges = [
            0x00, 0x1f, 0x20, 0x21, b'"', 0x23, 0x5b, b'\\', 0x5d, 0x7e, 0x7f, 0x80, 0xff, b'a',
        ];
        for bytes in random_texts(7, &edges) {
            let len = bytes.len();
            let first = bytes.iter().position(|&b| !PLAIN[usize::from(b)]);
            assert_eq!(plain_prefix(&bytes), first.unwrap_or(len), "{bytes:?}");
            let mut out = Vec::new();
            escaped(&mut out, &bytes);
            assert_eq!(out, reference(&bytes), "{bytes:?}");
        }
        for byte in 0..=255u8 {
            let word = u64::from_le_bytes([b'a', b'a', b'a', byte, b'a', b'a', b'a', b'a']);
            let plain = (0x20..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\';
            assert_eq!(needs_escape(word) == 0, plain, "{byte:#x}");
        }
    }

    /// JSON strings against `serde_json` (after replacing invalid UTF-8), over random texts.
    #[test]
    fn json_strings_match_serde() {
        let edges = [
            0x00, 0x1f, 0x20, b'"', b'\\', 0x7e, 0x7f, 0x80, 0xc3, 0xa9, 0xff, b'a',
        ];
        for bytes in random_texts(11, &edges) {
            let mut out = Vec::new();
            json_string(&mut out, Some(&bytes));
            let expected = serde_json::to_vec(&String::from_utf8_lossy(&bytes)).unwrap();
            assert_eq!(out, expected, "{bytes:?}");
        }
        let mut out = Vec::new();
        json_string(&mut out, None);
        assert_eq!(out, b"null");
    }

    #[test]
    fn ipv4_addresses_from_the_digit_table() {
        for (socket, text) in [
            ("0.0.0.0:0", "0.0.0.0:0"),
            ("10.200.9.255:65535", "10.200.9.255:65535"),
            ("255.255.255.255:80", "255.255.255.255:80"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            let mut out = Vec::new();
            address(&mut out, socket.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn seconds_have_six_decimals() {
        let mut out = Vec::new();
        seconds(&mut out, Duration::from_micros(2_000_042));
        assert_eq!(out, b"2.000042");
    }
}
