//! Access log lines: gorouter's text layout or one JSON object, with every value escaped so a
//! client cannot forge a line (text: quotes, backslashes, control and non-ASCII bytes as
//! `\xNN`; JSON: as JSON strings).

use super::record::Record;
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
            header(record.headers.x_forwarded_for.as_ref()),
        ),
        (
            "x_forwarded_proto",
            header(record.headers.x_forwarded_proto.as_ref()),
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
/// printable ASCII as `\xNN`. Runs of plain bytes are copied at once.
fn escaped(out: &mut Vec<u8>, mut bytes: &[u8]) {
    while let Some(at) = bytes.iter().position(|&b| !PLAIN[usize::from(b)]) {
        append(out, &bytes[..at]);
        match bytes[at] {
            byte @ (b'"' | b'\\') => append(out, &[b'\\', byte]),
            byte => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let (high, low) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]);
                append(out, &[b'\\', b'x', high, low]);
            }
        }
        bytes = &bytes[at + 1..];
    }
    append(out, bytes);
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

/// Appends `ip:port` (`[ip]:port` for IPv6).
fn address(out: &mut Vec<u8>, address: SocketAddr) {
    match address {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        SocketAddr::V6(v6) => append(out, format!("[{}]", v6.ip()).as_bytes()),
    }
    out.push(b':');
    number(out, u64::from(address.port()));
}

/// The request target as the client sent it (origin form without a copy).
fn target(uri: &http::Uri) -> std::borrow::Cow<'_, str> {
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(path)) => path.as_str().into(),
        _ => uri.to_string().into(),
    }
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
    match record.headers.host.as_ref().map(HeaderValue::as_bytes) {
        Some(host) if !host.is_empty() => escaped(out, host),
        _ => out.push(b'-'),
    }
    append(out, b" - [");
    stamps.write(out, record.received);
    append(out, b"] \"");
    escaped(out, record.method.as_str().as_bytes());
    out.push(b' ');
    escaped(out, target(&record.uri).as_bytes());
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
    let headers = &record.headers;
    quoted(out, headers.referer.as_ref().map(HeaderValue::as_bytes));
    out.push(b' ');
    quoted(out, headers.user_agent.as_ref().map(HeaderValue::as_bytes));
    append(out, b" \"");
    address(out, record.client);
    append(out, b"\" \"");
    match &record.endpoint {
        Some(endpoint) => address(out, endpoint.spec.address),
        None => out.push(b'-'),
    }
    out.push(b'"');
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    for (name, field) in fields(record, &route_service) {
        if matches!(name, "bytes_received" | "bytes_sent") {
            continue;
        }
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
    stamps.write(out, record.received);
    out.push(b'"');
    fn header(value: &Option<HeaderValue>) -> Option<&[u8]> {
        value.as_ref().map(HeaderValue::as_bytes)
    }
    let target = target(&record.uri);
    let leading: [(&str, Option<&[u8]>); 6] = [
        ("host", header(&record.headers.host)),
        ("method", Some(record.method.as_str().as_bytes())),
        ("uri", Some(target.as_bytes())),
        ("protocol", Some(version(record.version).as_bytes())),
        ("referer", header(&record.headers.referer)),
        ("user_agent", header(&record.headers.user_agent)),
    ];
    for (name, value) in leading {
        append(out, format!(",\"{name}\":").as_bytes());
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
        append(out, format!(",\"{name}\":").as_bytes());
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

    #[test]
    fn seconds_have_six_decimals() {
        let mut out = Vec::new();
        seconds(&mut out, Duration::from_micros(2_000_042));
        assert_eq!(out, b"2.000042");
    }
}
