//! The hand-written HTTP/1.1 server and its hand-off to hyper, over raw client bytes.

use crate::support::*;
use std::time::Duration;

/// Splits raw responses into (status line, body) pairs for the echo backend's JSON bodies.
fn echoed_uris(raw: &str) -> Vec<(String, String)> {
    raw.split("HTTP/1.1 ")
        .skip(1)
        .map(|response| {
            let status = response.lines().next().unwrap_or("").to_string();
            let uri = response
                .split("\"uri\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_string();
            (status, uri)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_keep_their_order_across_the_hand_off_to_hyper() {
    let backend = Backend::echo("a").await;
    let router = TestRouter::with_routes(&route("pipe.test", &[&backend]));
    // One write: a plain GET (hand-written server), a POST with a chunked body (handed to
    // hyper with the bytes after it), a small POST with a length and a GET that closes.
    let request = b"GET /one HTTP/1.1\r\nHost: pipe.test\r\n\r\n\
        POST /two HTTP/1.1\r\nHost: pipe.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
        POST /three HTTP/1.1\r\nHost: pipe.test\r\nContent-Length: 3\r\n\r\nabc\
        GET /four HTTP/1.1\r\nHost: pipe.test\r\nConnection: close\r\n\r\n";
    let out = raw(router.http, request, Duration::from_secs(5)).await;
    let seen = echoed_uris(&out);
    let uris: Vec<&str> = seen.iter().map(|(_, uri)| uri.as_str()).collect();
    assert_eq!(uris, ["/one", "/two", "/three", "/four"], "{out}");
    assert!(seen.iter().all(|(status, _)| status == "200 OK"), "{out}");
    assert!(out.contains("\"body\":\"hello\""), "{out}");
    assert!(out.contains("\"body\":\"abc\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_requests_get_framing_date_and_close() {
    let backend = Backend::echo("a").await;
    let router = TestRouter::with_routes(&route("plain.test", &[&backend]));
    let request = b"POST /p HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 4\r\n\r\nbody\
        HEAD /h HTTP/1.1\r\nHost: plain.test\r\n\r\n\
        GET /missing HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n";
    let out = raw(router.http, request, Duration::from_secs(5)).await;
    let heads: Vec<&str> = out
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.split("\r\n\r\n").next().unwrap())
        .collect();
    assert_eq!(heads.len(), 3, "{out}");
    assert!(
        heads[0].starts_with("200 OK") && heads[0].contains("content-length: "),
        "{out}"
    );
    assert!(out.contains("\"body\":\"body\""), "{out}");
    // HEAD: the backend's length, no body (the next response follows at once).
    assert!(
        heads[1].starts_with("200 OK") && heads[1].contains("content-length: "),
        "{out}"
    );
    // The router's own answer: a date, its length, and the close the client asked for.
    assert!(heads[2].starts_with("404"), "{out}");
    for field in [
        "\r\ndate: ",
        "\r\ncontent-length: ",
        "\r\nconnection: close",
    ] {
        assert!(heads[2].contains(field), "{field} missing: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_targets_and_oversized_heads_are_answered_not_dropped() {
    let backend = Backend::echo("a").await;
    let router = TestRouter::with_routes(&route("bad.test", &[&backend]));
    let out = raw(
        router.http,
        b"GET http://[bad/ HTTP/1.1\r\nHost: bad.test\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: bad.test\r\nX-Big: {}\r\n\r\n",
        "x".repeat(70 * 1024)
    );
    let out = raw(router.http, huge.as_bytes(), Duration::from_secs(5)).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
}
