//! A real browser for the connect page's tests: Debian's headless Chromium driven over
//! WebDriver (fantoccini) through `/usr/bin/chromedriver` on a loopback port this picks, with
//! a synchronous API (the tests are plain `#[test]` functions; each `Browser` owns a small
//! tokio runtime and blocks on it). The plain HTTP client for requests the browser cannot make
//! (a POST without the CSRF field, reading response headers) is `web_client`'s, re-exported.
//!
//! Every wait is bounded; chromedriver is ended by its own PID when the `Browser` is dropped,
//! after the WebDriver session (and with it Chromium) is closed.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

use super::proc::{free_port, poll, stop_child, PROCESS_TIMEOUT};
pub use super::web_client::{form_body, request, Response};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Start attempts of chromedriver, each on a new port (another process may take a free port
/// between `free_port()` and chromedriver's bind; chromedriver then exits).
const DRIVER_ATTEMPTS: usize = 5;
/// Bound on one WebDriver command (a page load included). Generous: a loaded 2-core machine
/// runs Chromium and a debug mailgate; nothing asserts on durations.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on waiting for an element (inside [`COMMAND_TIMEOUT`], so its own error shows).
const WAIT_TIMEOUT: Duration = Duration::from_secs(50);
/// Bound on closing the session at drop (Chromium's shutdown).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);
/// The tallest window a screenshot grows to.
const MAX_SHOT_HEIGHT: u32 = 4000;

/// Chromium's switches: headless and without a sandbox (the tests run as root in a container),
/// and without anything that would reach beyond loopback on its own (QUIC, background
/// networking, component updates, sync). `--disable-dev-shm-usage`: container images often
/// have a 64 MiB /dev/shm, too small for Chromium's renderer.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,900",
];

/// Marks the document shown now (see [`Browser::leave_by`]).
const MARK_PAGE: &str = "window.mailgateLeftPage = true; return null;";
/// Whether an unmarked document has loaded.
const NEW_PAGE_LOADED: &str =
    "return window.mailgateLeftPage !== true && document.readyState === 'complete';";

/// A headless Chromium session and the chromedriver serving it.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// The Chromium profile (`--user-data-dir`) and chromedriver's log.
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium whose `Accept-Language` is
    /// `accept_language` (e.g. "nb", "da,en;q=0.5").
    pub fn start(accept_language: &str) -> Browser {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-browser-")
            .tempdir()
            .expect("browser tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (driver, port) = start_driver(&dir);
        let mut browser = Browser {
            rt,
            client: None,
            driver,
            dir,
        };
        let profile = browser.dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 60_000, "script": 30_000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": { "intl": { "accept_languages": accept_language } },
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let url = format!("http://127.0.0.1:{port}");
        let connect = async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        };
        let client = match browser
            .rt
            .block_on(async { tokio::time::timeout(COMMAND_TIMEOUT, connect).await })
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "no Chromium session from chromedriver: {e}\n{}",
                browser.driver_log()
            ),
            Err(_) => panic!(
                "no Chromium session within {COMMAND_TIMEOUT:?}\n{}",
                browser.driver_log()
            ),
        };
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("session open")
    }

    /// Runs one WebDriver command (bounded); panics naming `what` on an error or time-out.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match self
            .rt
            .block_on(async { tokio::time::timeout(COMMAND_TIMEOUT, fut).await })
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("browser: {what}: {e}"),
            Err(_) => panic!("browser: {what}: no answer within {COMMAND_TIMEOUT:?}"),
        }
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.run(&format!("goto {url}"), self.client().goto(url));
    }

    /// The address of the page shown now.
    pub fn url(&self) -> String {
        self.run("current url", self.client().current_url())
            .to_string()
    }

    /// The path (and query) of the page shown now, e.g. "/connect".
    pub fn path(&self) -> String {
        let url = self.run("current url", self.client().current_url());
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.run("page source", self.client().source())
    }

    /// Whether an element matching the CSS selector is on the page (no waiting).
    pub fn exists(&self, css: &str) -> bool {
        let found = self.run(
            &format!("find all {css}"),
            self.client().find_all(Locator::Css(css)),
        );
        !found.is_empty()
    }

    /// The rendered text of the element matching the CSS selector; panics if there is none.
    pub fn text(&self, css: &str) -> String {
        let client = self.client();
        self.run(&format!("text of {css}"), async {
            client.find(Locator::Css(css)).await?.text().await
        })
    }

    /// An attribute of the element matching the CSS selector (`None` when it has none).
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let client = self.client();
        self.run(&format!("attribute {name} of {css}"), async {
            client.find(Locator::Css(css)).await?.attr(name).await
        })
    }

    /// The current value of the form field (input or select) matching the CSS selector.
    pub fn value(&self, css: &str) -> String {
        let client = self.client();
        let value = self.run(&format!("value of {css}"), async {
            client.find(Locator::Css(css)).await?.prop("value").await
        });
        value.unwrap_or_default()
    }

    /// Types `value` into the field named `field` of the form `#form_id` (cleared first).
    pub fn fill(&self, form_id: &str, field: &str, value: &str) {
        let css = format!("form#{form_id} [name=\"{field}\"]");
        let client = self.client();
        self.run(&format!("fill {css}"), async {
            let el = client.find(Locator::Css(&css)).await?;
            el.clear().await?;
            el.send_keys(value).await
        });
    }

    /// Picks the option with value `value` of the `<select>` named `field` in `#form_id`.
    pub fn choose(&self, form_id: &str, field: &str, value: &str) {
        let css = format!("form#{form_id} select[name=\"{field}\"]");
        let client = self.client();
        self.run(&format!("choose {value} in {css}"), async {
            client
                .find(Locator::Css(&css))
                .await?
                .select_by_value(value)
                .await
        });
    }

    /// Clicks the element with this id (a link or a button) and waits for the next page.
    pub fn click(&self, id: &str) {
        self.leave_by(&format!("#{id}"), Locator::Id(id));
    }

    /// Clicks the element matching the CSS selector (e.g. one row's button) and waits for
    /// the next page.
    pub fn press(&self, css: &str) {
        self.leave_by(css, Locator::Css(css));
    }

    /// Submits the form `#form_id` with its (first) submit button, as a person would, and
    /// waits for the next page.
    pub fn submit(&self, form_id: &str) {
        let css = format!(
            "form#{form_id} button[type=\"submit\"], form#{form_id} input[type=\"submit\"]"
        );
        self.leave_by(&format!("#{form_id}'s submit button"), Locator::Css(&css));
    }

    /// Clicks `target`, then waits (bounded) until another document has loaded: a click can
    /// return before its navigation starts, and the next page may have the same address (a
    /// form posted to itself), so the old document is marked and its mark must be gone.
    fn leave_by(&self, what: &str, target: Locator<'_>) {
        let client = self.client();
        self.run(&format!("click {what}"), async {
            client.execute(MARK_PAGE, Vec::new()).await?;
            client.find(target).await?.click().await
        });
        self.run(&format!("the page after clicking {what}"), async {
            loop {
                // Fails while the old page unloads: then it is not there yet either.
                if let Ok(v) = client.execute(NEW_PAGE_LOADED, Vec::new()).await {
                    if v == serde_json::Value::Bool(true) {
                        return Ok::<(), fantoccini::error::CmdError>(());
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// Runs `script` in the page (WebDriver's "execute script", which the page's CSP does not
    /// govern) and returns its value.
    pub fn script(&self, script: &str) -> serde_json::Value {
        self.run("execute script", self.client().execute(script, Vec::new()))
    }

    /// Waits (bounded) until an element matching the CSS selector is on the page.
    pub fn wait_for(&self, css: &str) {
        let client = self.client();
        self.run(&format!("wait for {css}"), async {
            client
                .wait()
                .at_most(WAIT_TIMEOUT)
                .for_element(Locator::Css(css))
                .await
                .map(|_| ())
        });
    }

    /// The value of the browser's cookie `name` for the page shown now (HttpOnly ones too).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.run("get cookies", self.client().get_all_cookies());
        cookies
            .iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Every cookie of the page shown now as one `Cookie:` header value ("a=1; b=2").
    pub fn cookie_header(&self) -> String {
        let cookies = self.run("get cookies", self.client().get_all_cookies());
        cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Saves a PNG of the whole page shown now as `<target dir>/screenshots/<name>.png`.
    /// WebDriver captures the viewport only, so a longer page gets a taller window for the
    /// shot (at most [`MAX_SHOT_HEIGHT`]), then the window is put back.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let client = self.client();
        let sizes = self.script(
            "return [window.outerWidth, window.outerHeight, window.innerHeight, \
             document.documentElement.scrollHeight];",
        );
        let size = |i: usize| sizes[i].as_u64().and_then(|v| u32::try_from(v).ok());
        let (width, outer, inner, page) = (size(0), size(1), size(2), size(3));
        let taller = match (width, outer, inner, page) {
            (Some(w), Some(o), Some(i), Some(p)) if p > i => {
                let h = (o - i.min(o) + p).min(MAX_SHOT_HEIGHT);
                self.run("grow the window", client.set_window_size(w, h));
                Some((w, o))
            }
            _ => None,
        };
        let png = self.run("screenshot", client.screenshot());
        if let Some((w, o)) = taller {
            self.run("restore the window", client.set_window_size(w, o));
        }
        let dir = screenshot_dir();
        fs::create_dir_all(&dir).expect("create screenshots dir");
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Panics (naming the page, never the secret) if the page's source or address contains
    /// any of `secrets`.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        let page = self.path();
        assert_no_secret(&page, &self.source(), secrets);
        assert_no_secret(&format!("{page} (its address)"), &self.url(), secrets);
    }

    fn driver_log(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let mut out = String::from("--- chromedriver log (last lines):\n");
        for line in tail.into_iter().rev() {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if thread::panicking() {
                // What the page looked like when the test failed; named after the test.
                let name = thread::current()
                    .name()
                    .unwrap_or("test")
                    .replace("::", "-");
                let png = self.rt.block_on(async {
                    tokio::time::timeout(CLOSE_TIMEOUT, client.screenshot()).await
                });
                if let Ok(Ok(png)) = png {
                    let dir = screenshot_dir();
                    let _ = fs::create_dir_all(&dir);
                    let _ = fs::write(dir.join(format!("failed-{name}.png")), png);
                }
            }
            // Closing the session makes chromedriver end Chromium.
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(CLOSE_TIMEOUT, client.close()).await });
        }
        stop_child(&mut self.driver, Duration::from_secs(10));
    }
}

/// Starts chromedriver on a free loopback port and waits (bounded) until it says it is ready;
/// tries again on a new port when it exits (the port was taken).
fn start_driver(dir: &TempDir) -> (Child, u16) {
    let log = dir.path().join("chromedriver.log");
    let mut why = String::new();
    for _ in 0..DRIVER_ATTEMPTS {
        let port = free_port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn {CHROMEDRIVER}: {e} (is chromium-driver installed?)")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let ready = poll(PROCESS_TIMEOUT, Duration::from_millis(50), || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(format!("chromedriver exited with {status}")));
            }
            let answer = request("GET", &format!("http://{addr}/status"), &[], None).ok()?;
            (answer.status == 200 && answer.body.contains("\"ready\"")).then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => return (child, port),
            Some(Err(e)) => why = e,
            None => {
                stop_child(&mut child, Duration::from_secs(10));
                panic!("chromedriver on port {port} did not answer within {PROCESS_TIMEOUT:?}");
            }
        }
    }
    let log = fs::read_to_string(&log).unwrap_or_default();
    panic!("chromedriver did not start in {DRIVER_ATTEMPTS} attempts ({why}):\n{log}");
}

/// `<target dir>/screenshots`: `CARGO_TARGET_DIR` when set, else the crate's `target/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// Panics, naming `page` and the secret's position in `secrets` (never the secret), if
/// `source` contains any of `secrets`.
#[track_caller]
pub fn assert_no_secret(page: &str, source: &str, secrets: &[&str]) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(!secret.is_empty(), "secret #{i} is empty");
        assert!(
            !source.contains(secret),
            "page {page} contains secret #{i} ({} chars)",
            secret.len()
        );
    }
}
