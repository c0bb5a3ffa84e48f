//! The status page on the admin listener, loaded in headless Chromium (Debian's `chromium`,
//! installed by the test script) after known traffic: what it shows per route and endpoint, the
//! ejected endpoint marked, and the token taken from the page's address.

use crate::support::*;
use http::StatusCode;
use std::time::{Duration, Instant};

/// The page's DOM after its script ran (a few polls of `/status.json`).
async fn chromium_dom(url: &str) -> String {
    let profile = temp_dir("chromium");
    let output = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("chromium ends within 60 s")
        .expect("chromium runs (scripts/test.sh installs it)");
    let _ = std::fs::remove_dir_all(profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of the first element after `marker` with attribute `attribute` (`id="x"`, or
/// `class="x"` when given a bare class name), a badge's text for a cell holding one.
fn text_after<'a>(dom: &'a str, marker: &str, attribute: &str) -> &'a str {
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in\n{dom}"));
    let rest = &dom[start..];
    let open = match attribute.contains('=') {
        true => format!("{attribute}>"),
        false => format!("class=\"{attribute}\">"),
    };
    let at = rest
        .find(&open)
        .unwrap_or_else(|| panic!("{attribute} after {marker} in\n{rest}"))
        + open.len();
    let rest = &rest[at..];
    let rest = rest.strip_prefix("<span class=\"badge\">").unwrap_or(rest);
    &rest[..rest.find('<').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_routes_endpoints_and_an_ejected_endpoint() {
    let live = Backend::echo("live").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let router = TestRouter::with_routes(&format!(
        "{}\n[[route]]\nuri = \"s.test\"\nbackends = [\"{}\", \"{dead}\"]\n",
        route("idle.test", &[&live]),
        live.addr
    ));
    for _ in 0..20 {
        assert_eq!(get(&router, "s.test", "/").await.status(), StatusCode::OK);
    }
    // Traffic goes on while the page loads (bounded: 15 s), so the dead endpoint, probed
    // when each ejection runs out, stays out.
    let traffic = {
        let http = router.http;
        tokio::spawn(async move {
            let started = Instant::now();
            let mut sent = 0;
            while started.elapsed() < Duration::from_secs(15) {
                let req = http::Request::get("/")
                    .header("host", "s.test")
                    .body(full(""))
                    .unwrap();
                assert_eq!(send(http, req).await.status(), StatusCode::OK);
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        })
    };
    let dom = chromium_dom(&format!("http://{}/status", router.admin)).await;
    traffic.abort();

    assert_eq!(
        text_after(&dom, "<header>", "id=\"phase\" class=\"badge running\""),
        "running"
    );
    let total: u64 = text_after(&dom, "<header>", "id=\"total\"")
        .parse()
        .unwrap();
    assert!(total >= 20, "{total}");
    // The busy route first, with its counts; no 5xx (the dead endpoint's attempts were retried).
    let busy = dom.find("data-route=\"s.test\"").expect("s.test shown");
    let idle = dom
        .find("data-route=\"idle.test\"")
        .expect("idle.test shown");
    assert!(busy < idle, "busiest first");
    let responses: u64 = text_after(&dom, "data-route=\"s.test\"", "responses-total")
        .parse()
        .unwrap();
    assert!(responses >= 20, "{responses}");
    assert_eq!(text_after(&dom, "data-route=\"s.test\"", "errors"), "0.0%");
    assert!(
        text_after(&dom, "data-route=\"s.test\"", "p99").starts_with('\u{2264}'),
        "a latency bound"
    );
    assert_eq!(
        text_after(&dom, "data-route=\"idle.test\"", "responses-total"),
        "0"
    );
    // The dead endpoint is marked (ejected, or for an instant between ejections half open),
    // the live one ok.
    let dead_row = format!("data-address=\"{dead}\"");
    let row_start = dom[..dom.find(&dead_row).expect("dead endpoint shown")]
        .rfind("<tr")
        .unwrap();
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("class=\"endpoint ejected\"") || row.contains("class=\"endpoint half_open\""),
        "{row}"
    );
    let failures: u64 = text_after(row, "<tr", "num failures").parse().unwrap();
    assert!(failures >= 1, "{row}");
    let state = text_after(row, "<tr", "state");
    assert!(
        state.starts_with("ejected") || state == "half open",
        "{state}"
    );
    let live_row = format!("data-address=\"{}\"", live.addr);
    let live_start = dom[..dom.find(&live_row).unwrap()].rfind("<tr").unwrap();
    assert!(
        dom[live_start..].starts_with("<tr class=\"endpoint ok\""),
        "{}",
        &dom[live_start..live_start + 200]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_asks_for_the_token_and_takes_it_from_its_address() {
    let live = Backend::echo("live").await;
    let router = TestRouter::start(&format!(
        "{BASE}[admin]\ntoken = \"s3cret\"\n{}",
        route("t.test", &[&live])
    ));
    // The page is public, its data is not.
    for (path, status) in [
        ("/status", StatusCode::OK),
        ("/status.json", StatusCode::UNAUTHORIZED),
    ] {
        let req = http::Request::get(path)
            .header("host", "admin")
            .body(full(""))
            .unwrap();
        assert_eq!(send(router.admin, req).await.status(), status, "{path}");
    }
    let page = format!("http://{}/status", router.admin);
    let dom = chromium_dom(&page).await;
    assert!(
        dom.contains("<form id=\"login\" style=\"display: block;\">"),
        "{dom}"
    );
    assert!(!dom.contains("data-route=\""), "no data without the token");
    let dom = chromium_dom(&format!("{page}#token=s3cret")).await;
    assert!(dom.contains("data-route=\"t.test\""), "{dom}");
}
