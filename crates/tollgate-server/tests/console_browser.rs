//! The operator console in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver) with fantoccini, against a real tollgate on the memory store and on Redis.
//!
//! What a person would do: sign in with a wrong token and then the right one, create a plan
//! and a key, put the key in the plan, make real checks with it, and see the plan page count
//! them; a plan named like an HTML tag shows as text and runs nothing; a key disabled in the
//! console is refused at the next check; a quota's first-period offset set and changed in
//! the plan form; a key's remaining quota set on the plan page, then spent by real checks.
//! chromedriver and every Chromium process it starts are killed when a test ends, however
//! it ends.

mod support;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tollgate_testkit::RedisServer;

/// How long the page gets for anything to appear.
const WAIT: Duration = Duration::from_secs(20);

/// A plan name that is markup if anything writes it as HTML.
const XSS_NAME: &str = "<img src=x onerror=alert(1)>";

/// Where the screenshot of the plan page goes, for a person to look at.
const SCREENSHOT: &str = "/tmp/console-plan.png";

/// A program the test needs, or a failure that says how to install it.
fn required(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} not found: install it (apt-get install -y {package}; .ci/run does). \
         The console's browser tests need Debian's chromium and chromium-driver."
    );
    p
}

/// chromedriver on a free port, in a process group of its own so that dropping it kills
/// every Chromium process it started too, even when a test panics mid-way.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let driver = required("/usr/bin/chromedriver", "chromium-driver");
        required("/usr/bin/chromium", "chromium");
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("log");
        // Chromium writes under $HOME (its crash reports' database among others); a home
        // inside the temporary directory keeps it off the machine's and names that
        // directory on the command line of every process the browser starts.
        let home = profile.path().join("home");
        std::fs::create_dir_all(&home).expect("home dir");
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let mut d = Driver {
            child,
            port,
            profile,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("chromedriver exited with {status}:\n{}", d.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A browser session: headless Chromium with a fresh profile. `--no-sandbox` because
    /// the tests run as root (CI), where Chromium refuses its sandbox; the pages it loads
    /// are our own, on loopback.
    async fn browser(&self) -> Client {
        let caps = json!({
            "browserName": "chrome",
            // An alert stays open instead of being dismissed, so the test can see it.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,1100",
                    format!("--user-data-dir={}", self.profile.path().join("profile").display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}\n{}", self.log()))
    }
}

/// Processes whose command line names `dir`: the browser's, since each is started with the
/// temporary profile or home inside it.
fn processes_naming(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium's crash handlers leave the process group (they start sessions of their
        // own), so they are found by the temporary directory their command lines name.
        let strays = processes_naming(self.profile.path());
        // The whole group: chromedriver and the browsers it launched.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        if !strays.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&strays)
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The element at `css`, once it is there.
async fn element(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// The `value` and `max` of the quota meter in the key row `row`.
async fn meter(c: &Client, row: &str) -> (Option<String>, Option<String>) {
    let meter = element(c, &format!("{row} meter")).await;
    (
        meter.attr("value").await.expect("meter value"),
        meter.attr("max").await.expect("meter max"),
    )
}

/// The text of `css` once `ok` holds for it.
async fn text_when(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut last = String::from("<not on the page>");
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if ok(&t) {
                    return t;
                }
                last = t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed what was expected; last text: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until nothing matches `css`.
async fn gone(c: &Client, css: &str) {
    let deadline = Instant::now() + WAIT;
    while !c
        .find_all(Locator::Css(css))
        .await
        .expect("find")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{css} is still on the page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces the text of input `css` with `value`.
async fn fill(c: &Client, css: &str, value: &str) {
    let e = element(c, css).await;
    e.clear().await.expect("clear");
    if !value.is_empty() {
        e.send_keys(value).await.expect("type");
    }
}

async fn click(c: &Client, css: &str) {
    element(c, css).await.click().await.expect("click");
}

/// A script's answer, as JSON.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script")
}

/// Fails if a JavaScript dialog (alert, confirm, prompt) is open.
async fn assert_no_dialog(c: &Client) {
    match c.get_alert_text().await {
        Err(e) if e.is_no_such_alert() => {}
        Ok(text) => panic!("a JavaScript dialog is open: {text:?}"),
        Err(e) => panic!("cannot ask for dialogs: {e}"),
    }
}

/// One `POST /v1/check` of `key` on the console test's API stage; the verdict and status.
fn http_check(t: &Tollgate, key: &str) -> (String, u64) {
    let v = http_check_answer(t, key);
    (
        v["verdict"].as_str().unwrap_or_default().to_string(),
        v["httpStatus"].as_u64().unwrap_or_default(),
    )
}

/// One `POST /v1/check` of `key` on the console test's API stage; the whole answer.
fn http_check_answer(t: &Tollgate, key: &str) -> Value {
    let body = json!({
        "apiKey": key, "apiId": "console-api", "stage": "prod",
        "resource": "/things", "method": "GET",
    })
    .to_string();
    let r = t.http(
        "POST",
        "/v1/check",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The id of the record named `name` in a management list.
fn id_named(t: &Tollgate, path: &str, name: &str) -> String {
    let list = t.admin("GET", path, "").json();
    list["item"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == name)
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no {name:?} in {path}: {list}"))
        .to_string()
}

/// The scenario of the module doc, on tollgate `t` (started with the admin token and
/// `--keep-key-values`).
async fn scenario(t: &Tollgate, c: &Client) {
    const LIMIT: u64 = 10;
    const CHECKS: u64 = 3;
    let base = format!("http://127.0.0.1:{}/console/", t.http_port);

    // A wrong token is refused with the API's own message, and is not kept.
    c.goto(&base).await.expect("open the console");
    fill(c, "#signin-token", "not-the-token").await;
    click(c, "#signin-submit").await;
    let error = text_when(c, "#signin-error", |t| !t.is_empty()).await;
    assert!(
        error.starts_with("Sign-in refused: invalid bearer token") && error.contains("HTTP 401"),
        "{error}"
    );
    assert_eq!(js(c, "return sessionStorage.length").await, json!(0));

    // The right one signs in; it is kept for this tab only.
    fill(c, "#signin-token", ADMIN_TOKEN).await;
    click(c, "#signin-submit").await;
    element(c, "#plan-create").await;
    assert_eq!(
        js(c, "return sessionStorage.getItem('tollgate.adminToken')").await,
        json!(ADMIN_TOKEN)
    );
    assert_eq!(js(c, "return localStorage.length").await, json!(0));

    // A plan with a daily quota on one API stage.
    fill(c, "#plan-create input[name=name]", "console-plan").await;
    fill(
        c,
        "#plan-create input[name=description]",
        "made in the console",
    )
    .await;
    fill(c, "#plan-create input[name=stages]", "console-api:prod").await;
    fill(c, "#plan-create input[name=limit]", &LIMIT.to_string()).await;
    click(c, "#plan-create button[type=submit]").await;
    text_when(c, "#plans-table", |t| t.contains("console-plan")).await;
    let plan_id = id_named(t, "/usageplans", "console-plan");
    let row = format!("#plans-table tr[data-plan-id='{plan_id}']");
    let cells = text_when(c, &row, |t| t.contains("DAY")).await;
    assert!(
        cells.contains("console-api:prod") && cells.contains("made in the console"),
        "{cells}"
    );

    // A refusal shows the API's own message: a throttle burst the API does not take.
    fill(c, "#plan-create input[name=name]", "too-bursty").await;
    fill(c, "#plan-create input[name=rate]", "1").await;
    fill(c, "#plan-create input[name=burst]", "999999999999").await;
    click(c, "#plan-create button[type=submit]").await;
    let refused = text_when(c, "#plan-create .form-error", |t| !t.is_empty()).await;
    assert!(
        refused.contains("burstLimit") && refused.contains("HTTP 400"),
        "{refused}"
    );
    fill(c, "#plan-create input[name=rate]", "").await;
    fill(c, "#plan-create input[name=burst]", "").await;

    // A plan named like markup is shown as the characters it is made of, and runs nothing.
    fill(c, "#plan-create input[name=name]", XSS_NAME).await;
    click(c, "#plan-create button[type=submit]").await;
    let xss_id = {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = t.admin("GET", "/usageplans", "").json();
            let found = list["item"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["name"] == XSS_NAME)
                .and_then(|i| i["id"].as_str().map(String::from));
            if let Some(id) = found {
                break id;
            }
            assert!(
                Instant::now() < deadline,
                "the plan was not created: {list}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let xss_row = format!("#plans-table tr[data-plan-id='{xss_id}'] th");
    assert_eq!(text_when(c, &xss_row, |t| !t.is_empty()).await, XSS_NAME);
    assert_no_dialog(c).await;
    assert!(c
        .find_all(Locator::Css("main img"))
        .await
        .expect("find")
        .is_empty());

    // A key with a generated value, shown once at creation.
    click(c, "#nav a[href='#/keys']").await;
    fill(c, "#key-create input[name=name]", "console-key").await;
    click(c, "#key-create button[type=submit]").await;
    let value = text_when(c, "#key-created code.secret", |t| t.len() >= 20).await;
    assert_eq!(value.len(), 40, "{value}");
    // The form is ready for the next key, enabled by default again.
    assert_eq!(
        js(
            c,
            "return document.getElementById('key-create-enabled').checked"
        )
        .await,
        json!(true)
    );
    let key_id = id_named(t, "/apikeys", "console-key");
    let key_row = format!("#keys-table tr[data-key-id='{key_id}']");
    assert_eq!(
        text_when(c, &format!("{key_row} .enabled"), |t| !t.is_empty()).await,
        "yes"
    );
    // The server keeps values here, so the console can read it back on demand.
    click(c, &format!("{key_row} td.value button")).await;
    assert_eq!(
        text_when(c, &format!("{key_row} td.value code"), |t| !t.is_empty()).await,
        value
    );

    // Into the plan, on the plan's page.
    c.goto(&format!("{base}#/plans/{plan_id}"))
        .await
        .expect("plan page");
    text_when(c, "main h1", |t| t == "console-plan").await;
    element(c, "#plan-add-key select")
        .await
        .select_by_value(&key_id)
        .await
        .expect("choose the key");
    click(c, "#plan-add-key button[type=submit]").await;
    let plan_row = format!("#plan-keys tr[data-key-id='{key_id}']");
    text_when(c, &format!("{plan_row} .used-today"), |t| t == "0").await;

    // Real checks with the key, then the page after a reload counts them.
    for _ in 0..CHECKS {
        assert_eq!(http_check(t, &value), ("OK".to_string(), 200));
    }
    c.refresh().await.expect("reload");
    let used = text_when(c, &format!("{plan_row} .used-today"), |t| t != "0").await;
    assert_eq!(used, CHECKS.to_string());
    let remaining = text_when(c, &format!("{plan_row} .remaining"), |t| !t.is_empty()).await;
    assert_eq!(remaining, (LIMIT - CHECKS).to_string());
    assert_eq!(
        meter(c, &plan_row).await,
        (Some(CHECKS.to_string()), Some(LIMIT.to_string()))
    );
    // Today is the chart's last bar.
    let today_bar = text_when(c, "svg.chart g.day:last-of-type text.value", |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(today_bar, CHECKS.to_string());
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(SCREENSHOT, png).expect("write the screenshot");

    // Edit the limits: a throttle added and the quota raised, as PATCH operations.
    click(c, "main details summary").await;
    fill(c, "#plan-edit input[name=rate]", "5").await;
    fill(c, "#plan-edit input[name=burst]", "10").await;
    fill(c, "#plan-edit input[name=limit]", "20").await;
    click(c, "#plan-edit button[type=submit]").await;
    text_when(c, "#plan-throttle", |t| t == "5/s, burst 10").await;
    text_when(c, "#plan-quota", |t| t == "20 per DAY").await;
    text_when(c, &format!("{plan_row} .remaining"), |t| t == "17").await;
    let plan = t.admin("GET", &format!("/usageplans/{plan_id}"), "").json();
    assert_eq!(
        plan["throttle"],
        json!({"rateLimit": 5.0, "burstLimit": 10}),
        "{plan}"
    );
    assert_eq!(plan["quota"]["limit"], json!(20), "{plan}");
    // Both throttle fields emptied: the throttle is removed.
    click(c, "main details summary").await;
    fill(c, "#plan-edit input[name=rate]", "").await;
    fill(c, "#plan-edit input[name=burst]", "").await;
    click(c, "#plan-edit button[type=submit]").await;
    text_when(c, "#plan-throttle", |t| t == "—").await;
    let plan = t.admin("GET", &format!("/usageplans/{plan_id}"), "").json();
    assert!(plan.get("throttle").is_none(), "{plan}");

    // The markup-named plan's own page: a heading of text, no image, no dialog.
    c.goto(&format!("{base}#/plans/{xss_id}"))
        .await
        .expect("xss plan page");
    assert_eq!(text_when(c, "main h1", |t| !t.is_empty()).await, XSS_NAME);
    assert_no_dialog(c).await;
    assert!(c
        .find_all(Locator::Css("main img"))
        .await
        .expect("find")
        .is_empty());

    // Disabled in the console, refused at the next check.
    c.goto(&format!("{base}#/keys")).await.expect("keys page");
    click(c, &format!("{key_row} button.toggle")).await;
    text_when(c, &format!("{key_row} .enabled"), |t| t == "no").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (verdict, status) = http_check(t, &value);
        if verdict == "KEY_DISABLED" {
            assert_eq!(status, 403);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {verdict} after disabling the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Out of the plan again, after a confirmation.
    c.goto(&format!("{base}#/plans/{plan_id}"))
        .await
        .expect("plan page");
    click(c, &format!("{plan_row} button.remove")).await;
    let question = text_when(c, "#confirm-text", |t| !t.is_empty()).await;
    assert!(question.contains("console-key"), "{question}");
    click(c, "#confirm-ok").await;
    gone(c, &plan_row).await;
    let member = t.admin("GET", &format!("/usageplans/{plan_id}/keys/{key_id}"), "");
    assert_eq!(member.status, 404, "{}", member.body);
    element(c, &format!("#plan-add-key option[value='{key_id}']")).await;

    // Deleting asks first, in the page's own dialog; cancelling keeps the plan.
    c.goto(&format!("{base}#/plans")).await.expect("plans page");
    let delete = format!("#plans-table tr[data-plan-id='{xss_id}'] button.danger");
    click(c, &delete).await;
    let question = text_when(c, "#confirm-text", |t| !t.is_empty()).await;
    assert!(question.contains(XSS_NAME), "{question}");
    click(c, "#confirm-cancel").await;
    assert_eq!(
        t.admin("GET", &format!("/usageplans/{xss_id}"), "").status,
        200
    );
    click(c, &delete).await;
    click(c, "#confirm-ok").await;
    gone(c, &format!("#plans-table tr[data-plan-id='{xss_id}']")).await;
    assert_eq!(
        t.admin("GET", &format!("/usageplans/{xss_id}"), "").status,
        404
    );
    assert_no_dialog(c).await;

    // Signing out forgets the token.
    click(c, "#sign-out").await;
    element(c, "#signin-token").await;
    assert_eq!(js(c, "return sessionStorage.length").await, json!(0));
}

/// The scenario on the embedded memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_scenario_on_memory() {
    let driver = Driver::start();
    let t = Tollgate::start_admin(&["--keep-key-values"], &[]);
    let c = driver.browser().await;
    scenario(&t, &c).await;
    let _ = c.close().await;
}

/// The same scenario with tollgate's records and counters in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_scenario_on_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let driver = Driver::start();
    let t = Tollgate::start_admin(&["--redis-url", &redis.url(), "--keep-key-values"], &[]);
    let c = driver.browser().await;
    scenario(&t, &c).await;
    let _ = c.close().await;
}

/// A plan `name` for `console-api`/`prod` with `quota`, and an enabled key `key_name` of
/// `value` in it, made through the management API; their ids.
fn plan_with_key(
    t: &Tollgate,
    name: &str,
    quota: serde_json::Value,
    key_name: &str,
    value: &str,
) -> (String, String) {
    let plan = t
        .admin(
            "POST",
            "/usageplans",
            &json!({
                "name": name,
                "apiStages": [{"apiId": "console-api", "stage": "prod"}],
                "quota": quota,
            })
            .to_string(),
        )
        .json();
    let plan_id = plan["id"].as_str().expect("plan id").to_string();
    let key = t
        .admin(
            "POST",
            "/apikeys",
            &json!({"name": key_name, "value": value, "enabled": true}).to_string(),
        )
        .json();
    let key_id = key["id"].as_str().expect("key id").to_string();
    let joined = t.admin(
        "POST",
        &format!("/usageplans/{plan_id}/keys"),
        &json!({"keyId": key_id, "keyType": "API_KEY"}).to_string(),
    );
    assert_eq!(joined.status, 201, "{}", joined.body);
    (plan_id, key_id)
}

/// In a quota's first period with an offset the plan allows its limit less the offset, and
/// the meter says so: what was used plus what the server says remains, not the plan's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_meter_follows_the_first_periods_offset() {
    let driver = Driver::start();
    let t = Tollgate::start_admin(&[], &[]);
    let value = "offset-key-0123456789abcdef0123456789";
    let (plan_id, key_id) = plan_with_key(
        &t,
        "offset-plan",
        json!({"limit": 10, "offset": 4, "period": "DAY"}),
        "offset-key",
        value,
    );
    assert_eq!(http_check(&t, value), ("OK".to_string(), 200));

    let c = driver.browser().await;
    let base = format!("http://127.0.0.1:{}/console/", t.http_port);
    open_signed_in(&c, &format!("{base}#/plans/{plan_id}")).await;
    let row = format!("#plan-keys tr[data-key-id='{key_id}']");
    let remaining = text_when(&c, &format!("{row} .remaining"), |t| !t.is_empty()).await;
    assert_eq!(remaining, "5");
    let label = text_when(&c, &format!("{row} .quota-text"), |t| !t.is_empty()).await;
    assert_eq!(label, "1 of 6 used today");
    assert_eq!(meter(&c, &row).await.1, Some("6".into()));
    let _ = c.close().await;
}

/// Opens the console at `url` (after `#`, a route) and signs in with the admin token.
async fn open_signed_in(c: &Client, url: &str) {
    c.goto(url).await.expect("open the console");
    fill(c, "#signin-token", ADMIN_TOKEN).await;
    click(c, "#signin-submit").await;
}

/// Today's date in UTC, `YYYY-MM-DD`: the day the memory store counts in.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
        / 86_400;
    let d = tollgate_core::calendar::civil_from_days(days);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// The plan `plan_id` as the management API reads it back.
fn plan_json(t: &Tollgate, plan_id: &str) -> Value {
    let r = t.admin("GET", &format!("/usageplans/{plan_id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The quota's first-period offset, typed in the plan form on create and on edit, is what
/// the management API then holds; an empty field is no offset, and an offset the API refuses
/// (not below the limit, negative) shows the API's own message and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_plan_form_sets_the_quota_offset() {
    let driver = Driver::start();
    let t = Tollgate::start_admin(&[], &[]);
    let c = driver.browser().await;
    let base = format!("http://127.0.0.1:{}/console/", t.http_port);
    open_signed_in(&c, &base).await;

    // Created with a limit of 10 and an offset of 4.
    fill(&c, "#plan-create input[name=name]", "offset-form-plan").await;
    fill(&c, "#plan-create input[name=stages]", "console-api:prod").await;
    fill(&c, "#plan-create input[name=limit]", "10").await;
    fill(&c, "#plan-create input[name=offset]", "4").await;
    click(&c, "#plan-create button[type=submit]").await;
    text_when(&c, "#plans-table", |t| t.contains("offset-form-plan")).await;
    let plan_id = id_named(&t, "/usageplans", "offset-form-plan");
    let plan = plan_json(&t, &plan_id);
    assert_eq!(
        plan["quota"],
        json!({"limit": 10, "offset": 4, "period": "DAY"}),
        "{plan}"
    );

    // An offset not below the limit is refused by the API, in its own words.
    fill(&c, "#plan-create input[name=name]", "offset-too-big").await;
    fill(&c, "#plan-create input[name=limit]", "10").await;
    fill(&c, "#plan-create input[name=offset]", "10").await;
    click(&c, "#plan-create button[type=submit]").await;
    let refused = text_when(&c, "#plan-create .form-error", |t| !t.is_empty()).await;
    assert!(
        refused.contains("quota.offset")
            && refused.contains("below quota.limit (10)")
            && refused.contains("HTTP 400"),
        "{refused}"
    );
    let plans = t.admin("GET", "/usageplans", "").json();
    assert_eq!(plans["item"].as_array().map(Vec::len), Some(1), "{plans}");

    // On the plan's page the offset is shown, and the edit form starts from it.
    c.goto(&format!("{base}#/plans/{plan_id}"))
        .await
        .expect("plan page");
    text_when(&c, "#plan-quota", |t| t == "10 per DAY (offset 4)").await;
    click(&c, "main details summary").await;
    assert_eq!(
        js(
            &c,
            "return document.querySelector('#plan-edit input[name=offset]').value"
        )
        .await,
        json!("4")
    );
    fill(&c, "#plan-edit input[name=offset]", "2").await;
    click(&c, "#plan-edit button[type=submit]").await;
    text_when(&c, "#plan-quota", |t| t == "10 per DAY (offset 2)").await;
    assert_eq!(plan_json(&t, &plan_id)["quota"]["offset"], json!(2));
    let saved = text_when(&c, "#status", |t| !t.is_empty()).await;
    assert!(saved.starts_with("Saved usage plan"), "{saved}");

    // A negative offset is the API's to refuse too; the plan keeps its offset, and the
    // earlier "Saved" news leaves the page so it cannot read as this edit's outcome.
    click(&c, "main details summary").await;
    fill(&c, "#plan-edit input[name=offset]", "-1").await;
    click(&c, "#plan-edit button[type=submit]").await;
    let refused = text_when(&c, "#plan-edit .form-error", |t| !t.is_empty()).await;
    assert!(
        refused.contains("quota.offset must be at least 0, got -1") && refused.contains("HTTP 400"),
        "{refused}"
    );
    assert_eq!(
        js(
            &c,
            "const s = document.getElementById('status'); return [s.hidden, s.textContent]"
        )
        .await,
        json!([true, ""])
    );
    assert_eq!(plan_json(&t, &plan_id)["quota"]["offset"], json!(2));

    // Emptied: no offset.
    fill(&c, "#plan-edit input[name=offset]", "").await;
    click(&c, "#plan-edit button[type=submit]").await;
    text_when(&c, "#plan-quota", |t| t == "10 per DAY").await;
    let plan = plan_json(&t, &plan_id);
    assert_eq!(
        plan["quota"],
        json!({"limit": 10, "offset": 0, "period": "DAY"}),
        "{plan}"
    );
    assert_no_dialog(&c).await;
    let _ = c.close().await;
}

/// On the plan page an operator sets what a key has left of today's quota (UpdateUsage):
/// a negative number gets the API's own refusal, a good one is what the API then reports,
/// the row and its meter show it at once, and exactly that many more real checks pass
/// before the next is refused with 429 "Limit Exceeded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sets_a_keys_remaining_quota() {
    const LIMIT: u64 = 5;
    const GRANT: u64 = 3;
    let driver = Driver::start();
    let t = Tollgate::start_admin(&[], &[]);
    let value = "grant-key-0123456789abcdef0123456789";
    let (plan_id, key_id) = plan_with_key(
        &t,
        "grant-plan",
        json!({"limit": LIMIT, "period": "DAY"}),
        "grant-key",
        value,
    );
    // The day's quota spent: the next check is refused.
    for _ in 0..LIMIT {
        assert_eq!(http_check(&t, value), ("OK".to_string(), 200));
    }
    assert_eq!(http_check(&t, value), ("QUOTA_EXCEEDED".to_string(), 429));
    let day = |t: &Tollgate| {
        let date = today();
        let u = t
            .admin(
                "GET",
                &format!(
                    "/usageplans/{plan_id}/usage?startDate={date}&endDate={date}&keyId={key_id}"
                ),
                "",
            )
            .json();
        u["values"][&key_id][0].clone()
    };
    assert_eq!(day(&t), json!([LIMIT, 0]));

    let c = driver.browser().await;
    let base = format!("http://127.0.0.1:{}/console/", t.http_port);
    open_signed_in(&c, &format!("{base}#/plans/{plan_id}")).await;
    let row = format!("#plan-keys tr[data-key-id='{key_id}']");
    let form = format!("#plan-keys tr[data-remaining-for='{key_id}'] form");
    text_when(&c, &format!("{row} .quota-text"), |t| {
        t == "5 of 5 used today"
    })
    .await;
    assert_eq!(
        text_when(&c, &format!("{row} .remaining"), |t| !t.is_empty()).await,
        "0"
    );

    // A negative number: the API's refusal, in the form, and nothing changes.
    click(&c, &format!("{row} button.set-remaining")).await;
    fill(&c, &format!("{form} input[name=remaining]"), "-1").await;
    click(&c, &format!("{form} button[type=submit]")).await;
    let refused = text_when(&c, &format!("{form} .form-error"), |t| !t.is_empty()).await;
    assert!(
        refused.contains("the value of /remaining must be a whole number from 0 to")
            && refused.contains("got `-1`")
            && refused.contains("HTTP 400"),
        "{refused}"
    );
    assert_eq!(day(&t), json!([LIMIT, 0]));

    // GRANT more: the API reports it, and the row and meter follow without a reload.
    fill(
        &c,
        &format!("{form} input[name=remaining]"),
        &GRANT.to_string(),
    )
    .await;
    click(&c, &format!("{form} button[type=submit]")).await;
    text_when(&c, &format!("{row} .remaining"), |t| t == GRANT.to_string()).await;
    assert_eq!(day(&t), json!([LIMIT, GRANT]));
    let allows = LIMIT + GRANT;
    assert_eq!(
        text_when(&c, &format!("{row} .quota-text"), |t| !t.is_empty()).await,
        format!("{LIMIT} of {allows} used today")
    );
    assert_eq!(
        meter(&c, &row).await,
        (Some(LIMIT.to_string()), Some(allows.to_string()))
    );
    let status = text_when(&c, "#status", |t| !t.is_empty()).await;
    assert!(
        status.contains("grant-key") && status.contains("3 more calls today"),
        "{status}"
    );
    // The form closed with the redraw.
    let form_row = c
        .find(Locator::Css(&format!(
            "#plan-keys tr[data-remaining-for='{key_id}']"
        )))
        .await
        .expect("form row");
    assert!(!form_row.is_displayed().await.expect("displayed"));

    // Exactly GRANT more real checks pass today, then the quota refuses again.
    for i in 0..GRANT {
        assert_eq!(
            http_check(&t, value),
            ("OK".to_string(), 200),
            "granted check {i}"
        );
    }
    let refused = http_check_answer(&t, value);
    assert_eq!(refused["verdict"], "QUOTA_EXCEEDED", "{refused}");
    assert_eq!(refused["httpStatus"], 429, "{refused}");
    assert_eq!(refused["message"], "Limit Exceeded", "{refused}");
    // After a reload the row counts them all, with nothing left and the meter full.
    c.refresh().await.expect("reload");
    text_when(&c, &format!("{row} .used-today"), |t| {
        t == allows.to_string()
    })
    .await;
    assert_eq!(
        text_when(&c, &format!("{row} .remaining"), |t| !t.is_empty()).await,
        "0"
    );
    let (value, max) = meter(&c, &row).await;
    assert!(max.is_some(), "a meter without max");
    assert_eq!(value, max);
    assert_no_dialog(&c).await;
    let _ = c.close().await;
}

/// With `--admin-unauthenticated` the console opens without asking for a token, and says
/// why; there is no token to sign out of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_without_a_token_when_the_api_is_open() {
    let driver = Driver::start();
    let t = Tollgate::start(&["--admin-unauthenticated"]);
    let c = driver.browser().await;
    c.goto(&format!("http://127.0.0.1:{}/console", t.http_port))
        .await
        .expect("open the console");
    element(&c, "#plan-create").await;
    let status = text_when(&c, "#status", |t| !t.is_empty()).await;
    assert!(status.contains("--admin-unauthenticated"), "{status}");
    assert!(c
        .find_all(Locator::Css("#signin"))
        .await
        .expect("find")
        .is_empty());
    let sign_out = c.find(Locator::Css("#sign-out")).await.expect("button");
    assert!(!sign_out.is_displayed().await.expect("displayed"));
    let _ = c.close().await;
}
