//! The console (issue 21) in headless Chromium: the real `wasmrpc serve` with its HTTP listener
//! on `memory://`, real plugins, and Debian's `chromium` driven through `chromedriver` over
//! WebDriver (fantoccini). The page is read as a person sees it: table cells, the form's result,
//! the history's rows. The test saves the screenshots docs/ shows (docs/images/console-*.png).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use sha2::{Digest, Sha256};
use wasmrpc_tests::{ManifestDir, eventually, memory_url, plugin};

use crate::service::Service;

/// How long the page may take to show something the host already did: a few polls, and a
/// reload's compile on a busy machine. A bound on a behaviour check, not a timing assertion.
const WITHIN: Duration = Duration::from_secs(60);

/// chromedriver on a free port, and one headless Chromium session through it.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run chromedriver: apt-get install chromium chromium-driver (.ci/run does)");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"args": [
                "--headless=new",
                // The tests run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                "--hide-scrollbars",
                format!("--user-data-dir={}", profile.path().display()),
            ]}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = eventually(Duration::from_secs(30), || {
            let (caps, url, connector) = (caps.clone(), url.clone(), connector.clone());
            async move { ClientBuilder::new(connector).capabilities(caps).connect(&url).await.ok() }
        })
        .await
        .expect("no WebDriver session from chromedriver");
        Browser { client, driver, _profile: profile }
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }

    async fn find(&self, css: &str) -> Option<Element> {
        self.client.find(Locator::Css(css)).await.ok()
    }

    /// The rendered text of the first element matching `css`, if there is one.
    async fn text(&self, css: &str) -> Option<String> {
        self.find(css).await?.text().await.ok()
    }

    /// Waits until the text of `css` satisfies `ok`, and returns it; fails the test with what
    /// the page showed otherwise.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let seen = eventually(WITHIN, || async { self.text(css).await.filter(|t| ok(t)) }).await;
        match seen {
            Some(text) => text,
            None => {
                let page = self.text("body").await.unwrap_or_default();
                panic!("the console never showed {what} (in {css}: {:?}); the page:\n{page}", self.text(css).await)
            }
        }
    }

    /// Saves what the window shows as docs/images/console-`name`.png.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        // This checkout's docs/ (not `root()`, which a build cache copied from another checkout
        // may point elsewhere).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
    }

    /// Chooses endpoint and method in the form, types the arguments and presses `button`.
    async fn submit(&self, endpoint: &str, method: &str, args: &str, button: &str) {
        let select = self.find("#call-endpoint").await.expect("the endpoint select");
        select.select_by_value(endpoint).await.expect("choose the endpoint");
        let select = self.find("#call-method").await.expect("the method select");
        select.select_by_value(method).await.expect("choose the method");
        let args_box = self.find("#call-args").await.expect("the arguments box");
        args_box.clear().await.unwrap();
        args_box.send_keys(args).await.unwrap();
        self.find(&format!("#{button}")).await.expect("the button").click().await.unwrap();
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces `path` the way editors and `cargo` do: a temporary file renamed over it.
fn rename_over(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The console lists the endpoints, calls a method through its form (a result, and an oslo
/// error), and follows a reload: a new build's sha256 and its history entry appear, and a broken
/// module's failure shows its message while the last good build keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_endpoints_calls_methods_and_follows_reloads() {
    let dir = ManifestDir::new();
    dir.endpoint("calculator", "calculator", "console_calc", "1.0", "");
    let module: PathBuf = dir.path().join("current.wasm");
    let (a, b) = (std::fs::read(plugin("versioned_a")).unwrap(), std::fs::read(plugin("versioned_b")).unwrap());
    std::fs::write(&module, &a).unwrap();
    dir.write(
        "versioned",
        "name = \"versioned\"\nmodule = \"current.wasm\"\n[target]\ntopic = \"console_versioned\"\nversion = \"1.0\"\n",
    );
    let svc = Service::spawn_on(&memory_url(), dir.path(), &["--server", "console-host", "--manifests", "."]);
    svc.ready(WITHIN).await;
    let browser = Browser::start().await;
    let page: SocketAddr = svc.http;
    browser.client.goto(&format!("http://{page}/")).await.expect("load the console");

    // The endpoints, with their targets, methods and module digests.
    let calc_row = "#endpoints tr[data-endpoint='calculator']";
    let versioned_row = "#endpoints tr[data-endpoint='versioned']";
    browser.wait_text(&format!("{calc_row} td.topic"), "the calculator's topic", |t| t == "console_calc").await;
    assert_eq!(browser.text(&format!("{calc_row} td.server")).await.as_deref(), Some("console-host"));
    let methods = browser.text(&format!("{calc_row} ul.methods")).await.unwrap();
    assert!(methods.contains("add") && methods.contains("divide"), "{methods}");
    let sha_a = sha256(&a);
    let shown = browser.wait_text(&format!("{versioned_row} td.sha256"), "build A's sha256", |t| !t.is_empty()).await;
    assert!(sha_a.starts_with(&shown), "shown {shown}, build A is {sha_a}");
    let title = browser.find(&format!("{versioned_row} td.sha256 span")).await.unwrap().attr("title").await.unwrap();
    assert_eq!(title.as_deref(), Some(sha_a.as_str()));
    // The initial loads are the history's first entries.
    browser
        .wait_text("#history tr[data-endpoint='versioned'][data-outcome='loaded'] td.details", "A's load", |t| {
            sha_a.starts_with(t.trim_start_matches("sha256 "))
        })
        .await;
    browser.screenshot("endpoints").await;

    // A call through the form: its result, and the call counted on the method's row.
    browser.submit("calculator", "add", r#"{"a": 2, "b": 3}"#, "call").await;
    browser.wait_text("#result", "the call's result", |t| t == "5").await;
    assert!(browser.text("#call-status").await.unwrap().starts_with("200"), "{:?}", browser.text("#call-status").await);
    let add = format!("{calc_row} li[data-method='add']");
    browser.wait_text(&format!("{add} .count-ok"), "one ok call of add", |t| t == "1").await;
    assert_eq!(browser.text(&format!("{add} .count-error")).await.as_deref(), Some("0"));
    browser.screenshot("call").await;

    // An oslo error: the gateway's JSON with the guest's exception type, and an error counted.
    browser.submit("calculator", "divide", r#"{"a": 1, "b": 0}"#, "call").await;
    let error = browser.wait_text("#result", "the oslo error", |t| t.contains("\"type\"")).await;
    assert!(error.contains("\"DivisionByZero\""), "{error}");
    assert!(browser.text("#call-status").await.unwrap().starts_with("502"));
    let divide = format!("{calc_row} li[data-method='divide']");
    browser.wait_text(&format!("{divide} .count-error"), "one failed call of divide", |t| t == "1").await;

    // A cast: 202, nothing to wait for.
    browser.submit("calculator", "add", r#"{"a": 1, "b": 1}"#, "cast").await;
    browser.wait_text("#call-status", "the cast's 202", |t| t.starts_with("202")).await;

    // A new build: its sha256 in the table, a history entry naming both builds, and its answer.
    rename_over(&module, &b);
    let sha_b = sha256(&b);
    browser
        .wait_text(&format!("{versioned_row} td.sha256"), "build B's sha256", |t| !t.is_empty() && sha_b.starts_with(t))
        .await;
    let reload = "#history tbody tr:first-child";
    let entry = browser.wait_text(reload, "the reload's entry", |t| t.contains("(was")).await;
    assert_eq!(browser.find(reload).await.unwrap().attr("data-outcome").await.unwrap().as_deref(), Some("loaded"));
    assert!(entry.contains("versioned") && entry.contains(&sha_a[..12]) && entry.contains(&sha_b[..12]), "{entry}");
    browser.submit("versioned", "version", "{}", "call").await;
    browser.wait_text("#result", "build B's answer", |t| t == "\"versioned-b\"").await;
    browser.screenshot("reload").await;

    // A broken module: the failure and its message on top of the history; B keeps serving.
    rename_over(&module, b"this is not wasm");
    let message = browser
        .wait_text(&format!("{reload}[data-outcome='failed'] td.details pre"), "the failure's message", |t| {
            !t.is_empty()
        })
        .await;
    assert!(message.contains("not a valid WebAssembly module"), "{message}");
    assert_eq!(browser.text(&format!("{reload} td.endpoint")).await.as_deref(), Some("versioned"));
    assert!(sha_b.starts_with(&browser.text(&format!("{versioned_row} td.sha256")).await.unwrap()));
    browser.submit("versioned", "version", "{}", "call").await;
    browser.wait_text("#result", "build B still answering", |t| t == "\"versioned-b\"").await;
    browser.screenshot("failure").await;

    browser.stop().await;
    let (clean, log) = svc.terminate().await;
    assert!(clean, "the host did not stop cleanly:\n{log}");
}
