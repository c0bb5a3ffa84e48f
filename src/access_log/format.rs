//! Access log lines: gorouter's text layout or one JSON object, with every value escaped so a
//! client cannot forge a line (quotes, backslashes, control and non-ASCII bytes as `\xNN`).

use super::record::Record;
use super::time::write_rfc3339;
use crate::config::AccessLogFormat as LogFormat;
use http::HeaderValue;
use std::fmt::Write;

/// The named fields after the request line, in gorouter's order.
fn fields<'a>(
    record: &'a Record,
    route_service: &'a Option<String>,
) -> [(&'static str, Field<'a>); 11] {
    let endpoint = record.endpoint.as_deref().map(|e| &e.spec);
    fn text(value: Option<&str>) -> Field<'_> {
        Field::Text(value.filter(|v| !v.is_empty()))
    }
    [
        (
            "x_forwarded_for",
            Field::Header(record.headers.x_forwarded_for.as_ref()),
        ),
        (
            "x_forwarded_proto",
            Field::Header(record.headers.x_forwarded_proto.as_ref()),
        ),
        ("vcap_request_id", Field::Header(Some(&record.request_id))),
        (
            "response_time",
            Field::Seconds(record.response_time.as_secs_f64()),
        ),
        ("app_id", text(endpoint.map(|e| e.app_id.as_str()))),
        (
            "app_index",
            text(endpoint.map(|e| e.instance_index.as_str())),
        ),
        (
            "instance_id",
            text(endpoint.map(|e| e.instance_id.as_str())),
        ),
        (
            "x_cf_routererror",
            Field::Header(record.router_error.as_ref()),
        ),
        ("route_service", text(route_service.as_deref())),
        ("bytes_received", Field::Number(record.bytes_in)),
        ("bytes_sent", Field::Number(record.bytes_out)),
    ]
}

/// One value of a line.
enum Field<'a> {
    Header(Option<&'a HeaderValue>),
    Text(Option<&'a str>),
    Seconds(f64),
    Number(u64),
}

/// Appends `bytes` escaped: `"` and `\` with a backslash, anything outside printable ASCII as
/// `\xNN`.
fn escaped(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
}

/// Appends `"value"` (or `"-"` when there is none).
fn quoted(out: &mut String, value: Option<&[u8]>) {
    out.push('"');
    match value {
        Some(value) if !value.is_empty() => escaped(out, value),
        _ => out.push('-'),
    }
    out.push('"');
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
pub fn write_line(out: &mut String, record: &Record, format: LogFormat) {
    match format {
        LogFormat::Text => write_text(out, record),
        LogFormat::Json => write_json(out, record),
    }
    out.push('\n');
}

fn write_text(out: &mut String, record: &Record) {
    let host = record.headers.host.as_ref().map(HeaderValue::as_bytes);
    match host {
        Some(host) if !host.is_empty() => escaped(out, host),
        _ => out.push('-'),
    }
    out.push_str(" - [");
    write_rfc3339(out, record.received);
    out.push_str("] \"");
    escaped(out, record.method.as_str().as_bytes());
    out.push(' ');
    escaped(out, record.uri.to_string().as_bytes());
    out.push(' ');
    out.push_str(version(record.version));
    let _ = write!(
        out,
        "\" {} {} {} ",
        record.status.as_u16(),
        record.bytes_in,
        record.bytes_out
    );
    let headers = &record.headers;
    quoted(out, headers.referer.as_ref().map(HeaderValue::as_bytes));
    out.push(' ');
    quoted(out, headers.user_agent.as_ref().map(HeaderValue::as_bytes));
    out.push(' ');
    quoted(out, Some(record.client.to_string().as_bytes()));
    out.push(' ');
    let backend = record.endpoint.as_ref().map(|e| e.spec.address.to_string());
    quoted(out, backend.as_deref().map(str::as_bytes));
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    for (name, field) in fields(record, &route_service) {
        if matches!(name, "bytes_received" | "bytes_sent") {
            continue;
        }
        out.push(' ');
        out.push_str(name);
        out.push(':');
        match field {
            Field::Header(value) => quoted(out, value.map(HeaderValue::as_bytes)),
            Field::Text(value) => quoted(out, value.map(str::as_bytes)),
            Field::Seconds(seconds) => {
                let _ = write!(out, "{seconds:.6}");
            }
            Field::Number(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
}

fn json_string(out: &mut String, value: &str) {
    // serde_json escapes quotes, backslashes and control characters.
    out.push_str(&serde_json::Value::from(value).to_string());
}

fn write_json(out: &mut String, record: &Record) {
    let mut time = String::new();
    write_rfc3339(&mut time, record.received);
    let header = |value: Option<&HeaderValue>| {
        value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let backend = record.endpoint.as_ref().map(|e| e.spec.address.to_string());
    let leading: [(&str, Option<String>); 7] = [
        ("time", Some(time)),
        ("host", header(record.headers.host.as_ref())),
        ("method", Some(record.method.to_string())),
        ("uri", Some(record.uri.to_string())),
        ("protocol", Some(version(record.version).to_string())),
        ("referer", header(record.headers.referer.as_ref())),
        ("user_agent", header(record.headers.user_agent.as_ref())),
    ];
    out.push('{');
    for (name, value) in leading {
        let _ = write!(out, "\"{name}\":");
        match value {
            Some(value) => json_string(out, &value),
            None => out.push_str("null"),
        }
        out.push(',');
    }
    let _ = write!(out, "\"status\":{},", record.status.as_u16());
    out.push_str("\"client\":");
    json_string(out, &record.client.to_string());
    out.push_str(",\"backend\":");
    match backend {
        Some(backend) => json_string(out, &backend),
        None => out.push_str("null"),
    }
    let route_service = record.route_service.as_ref().map(ToString::to_string);
    for (name, field) in fields(record, &route_service) {
        let _ = write!(out, ",\"{name}\":");
        match field {
            Field::Header(Some(value)) => {
                json_string(out, &String::from_utf8_lossy(value.as_bytes()));
            }
            Field::Text(Some(value)) => json_string(out, value),
            Field::Header(None) | Field::Text(None) => out.push_str("null"),
            Field::Seconds(seconds) => {
                let _ = write!(out, "{seconds:.6}");
            }
            Field::Number(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out.push('}');
}
