//! The web UI in a real browser: the real `forewarn` binary scrapes the
//! demo's targets (a leak after a deploy, a filter passing everything after
//! a CI deploy, a backlog step), and Debian's headless Chromium, driven
//! through chromedriver's W3C WebDriver API, loads each page and looks for
//! what a person would: the deploy line's label, the verdict, the band, the
//! fitted trend, a rule kind's status, a target's health. It creates a
//! silence through the form and sees the alert muted, tabs through a page,
//! checks a phone-width layout, and that a `<script>` label value renders as
//! text. Screenshots go to `$FOREWARN_SCREENSHOTS` (default: the test's
//! temp dir); `docs/screenshots/` holds copies.
//!
//! Chromium and chromedriver are required (`.ci/run` installs them); the
//! test fails, not skips, without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

mod support;
use support::{free_port, temp_dir, wait_for_async, Daemon, Proc};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// A label value that must show as text, never run.
const EVIL: &str = "<script>window.pwned=1</script>";

fn require_browser() {
    for (path, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the web UI test needs a real browser; run `apt-get install -y {pkg}` (.ci/run does)"
        );
    }
}

/// The daemon's config: the demo's rules and targets, a `<script>` label
/// on the backlog's target, a target nothing listens on, state in `dir`.
fn write_config(dir: &Path, targets: &str, listen: &str, extra_http: &str) -> PathBuf {
    let rules = dir.join("demo.yml");
    std::fs::write(&rules, forewarn::demo::DEMO_RULES).unwrap();
    let cfg = format!(
        r#"
global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: demo-checkout
    metrics_path: /checkout/metrics
    static_configs: [ {{ targets: ["{targets}"] }} ]
  - job_name: demo-filter
    metrics_path: /filter/metrics
    static_configs: [ {{ targets: ["{targets}"] }} ]
  - job_name: demo-queue
    metrics_path: /queue/metrics
    static_configs: [ {{ targets: ["{targets}"], labels: {{ note: {evil:?} }} }} ]
  - job_name: demo-gone
    static_configs: [ {{ targets: ["127.0.0.1:1"] }} ]
rule_files: [ "{rules}" ]
route: {{ receiver: nowhere, group_by: [alertname] }}
receivers:
  - name: nowhere
http: {{ listen: "{listen}"{extra_http} }}
storage: {{ path: "{data}", retention: 1h }}
"#,
        evil = EVIL,
        rules = rules.display(),
        data = dir.join("data").display(),
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// A WebDriver session on chromedriver.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Proc,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_for_async("chromedriver", Duration::from_secs(15), async || {
            let r = http.get(format!("{base}/status")).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1280,800", "--force-prefers-reduced-motion"]
        }}}});
        let v: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {v}")).to_string();
        Browser { http, session: format!("{base}/session/{id}"), _driver: driver }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self.http.request(method, format!("{}{path}", self.session)).json(&body).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    async fn open(&self, url: &str) -> String {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url })).await;
        self.source().await
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", json!({})).await.as_str().unwrap_or_default().to_string()
    }

    /// The page once it shows `text` (a form post's redirect may still be
    /// loading when a click returns); the page as it is after 10 s.
    async fn source_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.source().await;
            if s.contains(text) || Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn eval(&self, script: &str) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": [] })).await
    }

    async fn find(&self, css: &str) -> String {
        let v = self.cmd(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), json!({ "text": text })).await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/click"), json!({})).await;
    }

    async fn press_tab(&self) {
        let tab = "\u{E004}";
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}]}]});
        self.cmd(reqwest::Method::POST, "/actions", actions).await;
    }

    /// Sets the viewport (not the window) to `width`x`height` CSS pixels,
    /// as a phone (`mobile`) or a desktop, and the colour scheme asked for.
    async fn viewport(&self, width: u32, height: u32, mobile: bool, scheme: &str) {
        let cdp = |cmd: &str, params: Value| json!({ "cmd": cmd, "params": params });
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        self.cmd(reqwest::Method::POST, "/goog/cdp/execute", cdp("Emulation.setDeviceMetricsOverride", metrics)).await;
        let media = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.cmd(reqwest::Method::POST, "/goog/cdp/execute", cdp("Emulation.setEmulatedMedia", media)).await;
    }

    async fn screenshot(&self, dir: &Path, name: &str) {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{name}: a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session, which closes Chromium (killing chromedriver alone
    /// would leave it running). Plain blocking HTTP: this may run while
    /// unwinding from a failed assertion.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.session.strip_prefix("http://") else { return };
        let Some((host, path)) = rest.split_once('/') else { return };
        if let Ok(mut s) = std::net::TcpStream::connect(host) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(req.as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
}

/// The alert's id (fingerprint) by name, once it fires.
async fn firing(http: &reqwest::Client, base: &str, name: &str) -> Option<String> {
    let v: Value = http.get(format!("{base}/api/v1/alerts")).send().await.ok()?.json().await.ok()?;
    v["data"]["alerts"].as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == name && a["state"] == "firing")
            .then(|| a["fingerprint"].as_str().unwrap_or("").to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_what_a_person_looks_for_in_a_real_browser() {
    require_browser();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("web-ui");
    let shots = std::env::var_os("FOREWARN_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| dir.join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();

    // The demo's incidents, sooner: leak at 3 s, fan-out at 10 s, step at 12 s.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let targets = l.local_addr().unwrap().to_string();
    let scenario = forewarn::demo::Scenario { leak_at: 3.0, fanout_at: 10.0, step_at: 12.0 };
    tokio::spawn(forewarn::demo::serve_targets(l, scenario));
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &targets, &listen, "");
    let _daemon = Daemon::on(&cfg).current_dir(&dir).quiet().start();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    support::wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(15)).await;

    // CI records a deploy of the filter before its fan-out.
    let r = http
        .post(format!("{base}/api/v1/deploys"))
        .json(&json!({"service": "filter", "version": "1.8.0", "commit": "abc1234", "by": "ci-pipeline"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let browser = Browser::start().await;
    browser.viewport(1280, 800, false, "light").await;

    let ratio = wait_for_async("the ratio alert", Duration::from_secs(40), async || {
        firing(&http, &base, "DemoFilterPassesEverything").await
    })
    .await;
    let backlog = wait_for_async("the threshold alert", Duration::from_secs(20), async || {
        firing(&http, &base, "DemoBacklogHigh").await
    })
    .await;
    let leak = wait_for_async("the trend alert", Duration::from_secs(60), async || {
        firing(&http, &base, "DemoMemoryLeak").await
    })
    .await;

    // Alerts: grouped by state and severity, verdict, band, the chart with the deploy line.
    let page = browser.open(&format!("{base}/alerts")).await;
    assert!(page.contains("FilterPassesEverything") && page.contains("DemoBacklogHigh"), "{page}");
    assert!(page.contains("began") && page.contains("after filter v1.8.0 was deployed"), "the verdict:\n{page}");
    assert!(page.contains("class=\"band\"") && page.contains("expected band"), "the band:\n{page}");
    assert!(page.contains("filter v1.8.0 deployed"), "the deploy line's label in the chart:\n{page}");
    assert!(page.contains("commit abc1234, by ci-pipeline</title>"), "the deploy line's hover text:\n{page}");
    assert!(page.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"), "the label value as text:\n{page}");
    assert!(!page.contains("<script"), "no script element on the page");
    assert_eq!(browser.eval("return window.pwned === undefined").await, json!(true));
    browser.screenshot(&shots, "alerts").await;

    // Keyboard: the first Tab reaches the skip link, the next ones the nav.
    browser.press_tab().await;
    assert_eq!(browser.eval("return document.activeElement.textContent").await, json!("Skip to content"));
    browser.press_tab().await;
    browser.press_tab().await;
    assert_eq!(browser.eval("return document.activeElement.textContent").await, json!("Alerts"));

    // One alert: the trend's fitted line and its deploy; the threshold's levels.
    let page = browser.open(&format!("{base}/alerts/{leak}")).await;
    assert!(page.contains("fitted trend") && page.contains("class=\"trend\""), "the fitted trend:\n{page}");
    assert!(page.contains("class=\"eta\"") && page.contains("limit 629.1M reached "), "the limit and its ETA:\n{page}");
    assert!(page.contains("demo-checkout v2.4.0 deployed"), "the auto-detected deploy line:\n{page}");
    assert!(
        page.contains("href=\"/rules#rule-") && page.contains("href=\"/targets#target-"),
        "links to rule and target"
    );
    browser.screenshot(&shots, "alert-trend").await;
    browser.viewport(1280, 800, false, "dark").await;
    browser.open(&format!("{base}/alerts/{leak}")).await;
    let bg = browser.eval("return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(bg, json!("rgb(21, 23, 27)"), "the dark theme follows prefers-color-scheme");
    browser.screenshot(&shots, "alert-trend-dark").await;
    browser.viewport(1280, 800, false, "light").await;
    let page = browser.open(&format!("{base}/alerts/{ratio}")).await;
    assert!(page.contains("Verdict:") && page.contains("filter v1.8.0"), "{page}");
    browser.screenshot(&shots, "alert-ratio").await;
    let page = browser.open(&format!("{base}/alerts/{backlog}")).await;
    assert!(page.contains("&gt; 100") || page.contains("above 100"), "the threshold level:\n{page}");
    assert!(page.contains("clears 50"), "the clear level on the chart:\n{page}");

    // Rules: kinds and their status; targets: health.
    let page = browser.open(&format!("{base}/rules")).await;
    for kind in ["trend", "ratio", "threshold", "expr"] {
        assert!(page.contains(&format!("data-kind=\"\">{kind}<")), "rule kind {kind}:\n{page}");
    }
    assert!(page.contains("slope ") && page.contains("expected band: "), "kind status:\n{page}");
    browser.screenshot(&shots, "rules").await;
    let page = browser.open(&format!("{base}/targets")).await;
    assert_eq!(page.matches("data-health=\"\">up<").count(), 3, "three healthy targets:\n{page}");
    assert_eq!(page.matches("data-health=\"\">down<").count(), 1, "one down:\n{page}");
    assert!(page.contains("127.0.0.1:1/metrics") && page.contains("refused"), "its error:\n{page}");
    browser.screenshot(&shots, "targets").await;
    let page = browser.open(&format!("{base}/deploys")).await;
    assert!(page.contains("filter v1.8.0 deployed") && page.contains("seen while scraping"), "{page}");
    browser.screenshot(&shots, "deploys").await;
    let page = browser.open(&format!("{base}/graph?expr=queue_backlog&range=5m&service=")).await;
    assert!(page.contains("<svg") && page.contains("1 series"), "{page}");

    // A silence through the form: the preview lists the alert, creating it mutes it.
    browser.open(&format!("{base}/alerts/{backlog}")).await;
    browser.click("a.button[href^='/silences/new']").await;
    let page = browser.source_with("would be muted now").await;
    assert!(page.contains("1 alert would be muted now") && page.contains("DemoBacklogHigh"), "the preview:\n{page}");
    browser.type_into("#createdBy", "ana").await;
    browser.type_into("#comment", "draining the queue").await;
    browser.screenshot(&shots, "silence-new").await;
    browser.click("#create").await;
    let page = browser.source_with("created.").await;
    assert!(page.contains("created.") && page.contains("1 alert muted now"), "{page}");
    let v: Value = http.get(format!("{base}/api/v1/silences")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["data"][0]["createdBy"], "ana");
    let page = browser.open(&format!("{base}/alerts")).await;
    assert!(page.contains("class=\"chip\">silenced<"), "the alert shows as silenced:\n{page}");
    // Expire it from the list.
    browser.open(&format!("{base}/silences")).await;
    browser.click("form[action='/silences/expire'] button").await;
    let page = browser.source_with("expired.").await;
    assert!(page.contains("expired.") && page.contains("<span class=\"state\">expired</span>"), "{page}");

    // A phone: nothing wider than the screen.
    browser.viewport(390, 844, true, "light").await;
    for path in ["/alerts", "/rules", "/targets"] {
        browser.open(&format!("{base}{path}")).await;
        let wide = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth + 1").await;
        assert_eq!(wide, json!(true), "{path} fits a 390 px wide screen");
    }
    browser.open(&format!("{base}/alerts")).await;
    browser.screenshot(&shots, "alerts-phone").await;
}

/// The silence forms go through the API's credentials, and only from the
/// server's own pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_forms_need_credentials_and_the_same_origin() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("web-ui-auth");
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, "127.0.0.1:9", &listen, ", bearer_tokens: [s3cret-token-for-tests]");
    let _daemon = Daemon::on(&cfg).current_dir(&dir).quiet().start();
    let base = format!("http://{listen}");
    support::wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(15)).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = "matchers=alertname%3D%22X%22&duration=1h&createdBy=ana&comment=test";
    let post = |origin: Option<&str>, token: bool| {
        let mut r = http
            .post(format!("{base}/silences"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if token {
            r = r.bearer_auth("s3cret-token-for-tests");
        }
        r.send()
    };
    assert_eq!(http.get(format!("{base}/alerts")).send().await.unwrap().status(), 401, "pages need credentials");
    let r = http.get(format!("{base}/alerts")).bearer_auth("s3cret-token-for-tests").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(post(Some(&base), false).await.unwrap().status(), 401);
    assert_eq!(post(Some("http://evil.example"), true).await.unwrap().status(), 403);
    assert_eq!(post(None, true).await.unwrap().status(), 403, "no Origin: not from a page");
    let r = post(Some(&base), true).await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let v: Value = http
        .get(format!("{base}/api/v1/silences"))
        .bearer_auth("s3cret-token-for-tests")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
}
