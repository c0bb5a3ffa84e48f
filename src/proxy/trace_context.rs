//! Trace context, as gorouter's `tracing` options: W3C `traceparent` / `tracestate` and Zipkin
//! B3 headers, each when enabled. A trace the request carries is kept (W3C: same trace id and
//! flags, a new parent id for this hop, this router's `tracestate` entry first); otherwise one is
//! started. The request id (`X-Vcap-Request-Id`) is then the trace id in UUID form, so that
//! logs and traces meet.

use super::names::{B3, TRACEPARENT, TRACESTATE, X_B3_SPANID, X_B3_TRACEID};
use super::request_id;
use http::{HeaderMap, HeaderValue};

/// Which trace headers the router keeps or starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceSettings {
    /// W3C trace context.
    pub w3c: bool,
    /// Zipkin B3.
    pub zipkin: bool,
}

/// This router's key in `tracestate`.
const VENDOR: &str = "switchyard";

/// Longest `tracestate` kept (as gorouter: a longer one is dropped).
const MAX_TRACESTATE: usize = 2048;

impl TraceSettings {
    /// True when any trace header is kept or started.
    pub fn enabled(&self) -> bool {
        self.w3c || self.zipkin
    }

    /// Keeps or starts the enabled traces in `headers`; the request id to use.
    pub fn apply(&self, headers: &mut HeaderMap) -> HeaderValue {
        let mut trace_id = None;
        if self.zipkin {
            trace_id = Some(zipkin(headers));
        }
        if self.w3c {
            trace_id = Some(w3c(headers, trace_id));
        }
        match trace_id {
            Some(id) => request_id::uuid(id.to_be_bytes()),
            None => request_id::new_request_id(),
        }
    }
}

/// B3: a single `b3` header adopted, else `X-B3-TraceId` and `X-B3-SpanId` adopted, else both
/// started; the trace id (a 64-bit one is widened).
fn zipkin(headers: &mut HeaderMap) -> u128 {
    let single = headers.get(B3).and_then(|b3| {
        let mut parts = b3.to_str().ok()?.split('-');
        let (trace, span) = (parts.next()?, parts.next()?);
        hex_id(span, &[16])?;
        Some((hex_id(trace, &[16, 32])?, trace.to_owned(), span.to_owned()))
    });
    if let Some((trace, trace_text, span_text)) = single {
        set(headers, X_B3_TRACEID, &trace_text);
        set(headers, X_B3_SPANID, &span_text);
        return trace;
    }
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let (Some(trace_text), Some(span_text)) = (text(X_B3_TRACEID), text(X_B3_SPANID))
        && let (Some(trace), Some(_)) = (hex_id(&trace_text, &[16, 32]), hex_id(&span_text, &[16]))
    {
        set(headers, B3, &format!("{trace_text}-{span_text}"));
        return trace;
    }
    let (trace, span) = (nonzero_u128(), nonzero_u64());
    let (trace_text, span_text) = (format!("{trace:032x}"), format!("{span:016x}"));
    set(headers, X_B3_TRACEID, &trace_text);
    set(headers, X_B3_SPANID, &span_text);
    set(headers, B3, &format!("{trace_text}-{span_text}"));
    trace
}

/// W3C: a valid `traceparent` keeps its trace id and flags with a new parent id; otherwise a
/// new one (version 00, sampled) with `trace_id` (B3's, when that ran) or a random one. This
/// router's entry goes first in `tracestate`. The trace id.
fn w3c(headers: &mut HeaderMap, trace_id: Option<u128>) -> u128 {
    let parent = nonzero_u64();
    let incoming = headers.get(TRACEPARENT).and_then(|value| {
        let text = value.to_str().ok()?;
        let fields: Vec<&str> = text.split('-').collect();
        match fields.as_slice() {
            [version, trace, parent_id, flags]
                if text.len() == 55 && *version != "ff" && hex_id(version, &[2]).is_some() =>
            {
                hex_id(parent_id, &[16])?;
                hex_id(flags, &[2])?;
                Some((hex_id(trace, &[32])?, flags.to_string()))
            }
            _ => None,
        }
    });
    let (trace, flags) =
        incoming.unwrap_or_else(|| (trace_id.unwrap_or_else(nonzero_u128), "01".to_owned()));
    set(
        headers,
        TRACEPARENT,
        &format!("00-{trace:032x}-{parent:016x}-{flags}"),
    );
    let state = headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .filter(|state| state.len() <= MAX_TRACESTATE)
        .unwrap_or("");
    let others = state
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty() && entry.split('=').next() != Some(VENDOR));
    let mut joined = format!("{VENDOR}={parent:016x}");
    for entry in others {
        joined.push(',');
        joined.push_str(entry);
    }
    set(headers, TRACESTATE, &joined);
    trace
}

/// A lower-case hex id of one of `lengths`, not all zero (as both specs require).
fn hex_id(text: &str, lengths: &[usize]) -> Option<u128> {
    let valid = lengths.contains(&text.len())
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let value = u128::from_str_radix(text, 16).ok().filter(|_| valid)?;
    (value != 0 || text.len() == 2).then_some(value)
}

fn nonzero_u128() -> u128 {
    fastrand::u128(1..)
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

fn set(headers: &mut HeaderMap, name: http::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const BOTH: TraceSettings = TraceSettings {
        w3c: true,
        zipkin: true,
    };

    fn headers(fields: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    fn get<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    #[test]
    fn a_w3c_trace_keeps_its_id_and_flags_with_a_new_parent() {
        let settings = TraceSettings {
            w3c: true,
            zipkin: false,
        };
        let incoming = format!("00-{TRACE}-00f067aa0ba902b7-00");
        let mut h = headers(&[
            ("traceparent", &incoming),
            ("tracestate", "switchyard=1,congo=t61"),
        ]);
        let id = settings.apply(&mut h);
        let parent = get(&h, "traceparent");
        assert!(
            parent.starts_with(&format!("00-{TRACE}-")) && parent.ends_with("-00"),
            "{parent}"
        );
        assert_ne!(parent, incoming);
        let span = &parent[36..52];
        assert_eq!(
            get(&h, "tracestate"),
            format!("switchyard={span},congo=t61")
        );
        assert_eq!(id, "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
    }

    #[test]
    fn malformed_or_absent_traces_are_started() {
        let settings = TraceSettings {
            w3c: true,
            zipkin: false,
        };
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            let mut h = if bad.is_empty() {
                HeaderMap::new()
            } else {
                headers(&[("traceparent", bad)])
            };
            let id = settings.apply(&mut h);
            let parent = get(&h, "traceparent");
            assert_eq!(parent.len(), 55, "{parent}");
            assert!(
                parent.starts_with("00-") && parent.ends_with("-01"),
                "{parent}"
            );
            assert!(!parent.contains(&TRACE.to_uppercase()));
            assert_eq!(id.to_str().unwrap().replace('-', ""), &parent[3..35]);
        }
    }

    #[test]
    fn b3_is_adopted_or_started_and_w3c_shares_its_trace() {
        let settings = TraceSettings {
            w3c: false,
            zipkin: true,
        };
        let mut single = headers(&[("b3", &format!("{TRACE}-00f067aa0ba902b7-1"))]);
        settings.apply(&mut single);
        assert_eq!(get(&single, "x-b3-traceid"), TRACE);
        assert_eq!(get(&single, "x-b3-spanid"), "00f067aa0ba902b7");
        let mut multi = headers(&[
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", "00f067aa0ba902b7"),
        ]);
        settings.apply(&mut multi);
        assert_eq!(get(&multi, "b3"), "a3ce929d0e0e4736-00f067aa0ba902b7");
        let mut none = HeaderMap::new();
        let id = BOTH.apply(&mut none);
        let trace = get(&none, "x-b3-traceid").to_owned();
        assert_eq!(trace.len(), 32);
        assert_eq!(&get(&none, "traceparent")[3..35], trace);
        assert_eq!(id.to_str().unwrap().replace('-', ""), trace);
    }
}
