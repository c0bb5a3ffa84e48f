//! Access log lines: gorouter's text layout or one JSON object, with every value escaped so a
//! client cannot forge a line (text: quotes, backslashes, control and non-ASCII bytes as
//! `\xNN`; JSON: as JSON strings).

use super::record::{Record, Text};
use super::time::{Stamps, digits};
use crate::config::AccessLogFormat as LogFormat;
use crate::http1::lines::append;
use http::HeaderValue;
use std::net::SocketAddr;
use std::time::Duration;

/// One value of a line.
enum Field<'a> {
    Bytes(Option<&'a [u8]>),
    Seconds(Duration),
    Number(u64),
}

/// How many of `fields` the text layout writes by name: all but the byte counts, which it
/// writes unnamed after the status.
const NAMED_IN_TEXT: usize = 9;

/// The named fields after the request line, in gorouter's order (the byte counts are JSON
/// only: the text layout has them unnamed after the status).
fn fields<'a>(
    record: &'a Record,
    route_service: &'a Option<String>,
) -> [(&'static str, Field<'a>); 11] {
    let endpoint = record.endpoint.as_deref().map(|e| &e.spec);
    let header = |value: Option<&'a HeaderValue>| Field::Bytes(value.map(HeaderValue::as_bytes));
    let text = |value: Option<&'a str>| Field::Bytes(value.map(str::as_bytes));
    [
        (
            "x_forwarded_for",
            Field::Bytes(record.text.get(Text::XForwardedFor)),
        ),
        (
            "x_forwarded_proto",
            Field::Bytes(record.text.get(Text::XForwardedProto)),
        ),
        ("vcap_request_id", header(Some(&record.request_id))),
        ("response_time", Field::Seconds(record.response_time)),
        ("app_id", text(endpoint.map(|e| e.app_id.as_str()))),
        (
            "app_index",
            text(endpoint.map(|e| e.instance_index.as_str())),
        ),
        (
            "instance_id",
            text(endpoint.map(|e| e.instance_id.as_str())),
        ),
        ("x_cf_routererror", header(record.router_error.as_ref())),
        ("route_service", text(route_service.as_deref())),
        ("bytes_received", Field::Number(record.bytes_in)),
        ("bytes_sent", Field::Number(record.bytes_out)),
    ]
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
/// printable ASCII as `\xNN`. Runs of plain bytes are copied at once, found eight at a time.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let (mut run, mut at) = (0, 0);
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8)
            && all_plain(u64::from_le_bytes(word.try_into().unwrap_or_default()))
        {
            at += 8;
            continue;
        }
        let byte = bytes[at];
        at += 1;
        if PLAIN[usize::from(byte)] {
            continue;
        }
        append(out, &bytes[run..at - 1]);
        run = at;
        match byte {
            b'"' | b'\\' => append(out, &[b'\\', byte]),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let (high, low) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]);
                append(out, &[b'\\', b'x', high, low]);
            }
        }
    }
    append(out, &bytes[run..]);
}

/// True when none of the eight bytes of `word` needs escaping (`PLAIN` for each): no byte
/// with its high bit set, under 0x20, 0x7f, `"` or `\`.
fn all_plain(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Some byte of `v` is zero (exact for "some", whatever the other bytes hold).
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let special = has_zero(word ^ (ONES * 0x7f))
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')));
    (word & HIGH) | below_space | special == 0
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

/// Appends the line for `record` (with its newline) in `format`.
pub fn write_line(out: &mut Vec<u8>, record: &Record, format: LogFormat, stamps: &mut Stamps) {
    match format {
        LogFormat::Text => write_text(out, record, stamps),
        LogFormat::Json => write_json(out, record, stamps),
    }
    out.push(b'\n');
}

fn write_text(out: &mut Vec<u8>, record: &Record, stamps: &mut Stamps) {
    match record.text.get(Text::Host) {
        Some(host) if !host.is_empty() => escaped(out, host),
        _ => out.push(b'-'),
    }
    append(out, b" - [");
    stamps.write_instant(out, record.started);
    append(out, b"] \"");
    escaped(out, record.method.as_str().as_bytes());
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
    match &record.endpoint {
        Some(endpoint) => address(out, endpoint.spec.address),
        None => out.push(b'-'),
    }
    out.push(b'"');
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    for (name, field) in fields(record, &route_service)
        .into_iter()
        .take(NAMED_IN_TEXT)
    {
        out.push(b' ');
        append(out, name.as_bytes());
        out.push(b':');
        match field {
            Field::Bytes(value) => quoted(out, value),
            Field::Seconds(duration) => seconds(out, duration),
            Field::Number(n) => number(out, n),
        }
    }
}

/// Appends `,"name":`.
fn json_name(out: &mut Vec<u8>, name: &str) {
    append(out, b",\"");
    append(out, name.as_bytes());
    append(out, b"\":");
}

/// Appends `value` as a JSON string (invalid UTF-8 replaced), or `null`.
fn json_string(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => {
            let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(value));
        }
        None => append(out, b"null"),
    }
}

fn write_json(out: &mut Vec<u8>, record: &Record, stamps: &mut Stamps) {
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
        json_name(out, name);
        json_string(out, value);
    }
    append(out, b",\"status\":");
    number(out, u64::from(record.status.as_u16()));
    append(out, b",\"client\":\"");
    address(out, record.client);
    append(out, b"\",\"backend\":");
    match &record.endpoint {
        Some(endpoint) => {
            out.push(b'"');
            address(out, endpoint.spec.address);
            out.push(b'"');
        }
        None => append(out, b"null"),
    }
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    for (name, field) in fields(record, &route_service) {
        json_name(out, name);
        match field {
            Field::Bytes(value) => json_string(out, value.filter(|v| !v.is_empty())),
            Field::Seconds(duration) => seconds(out, duration),
            Field::Number(n) => number(out, n),
        }
    }
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
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..4) {
                    0 => rng.u8(..),
                    _ => edges[rng.usize(0..edges.len())],
                })
                .collect();
            let mut out = Vec::new();
            escaped(&mut out, &bytes);
            assert_eq!(out, reference(&bytes), "{bytes:?}");
        }
        for byte in 0..=255u8 {
            let word = u64::from_le_bytes([b'a', b'a', b'a', byte, b'a', b'a', b'a', b'a']);
            let plain = (0x20..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\';
            assert_eq!(all_plain(word), plain, "{byte:#x}");
        }
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
