//! The status page in a real browser: headless Chromium (Debian `chromium`) driven over
//! WebDriver (`chromedriver`, via `fantoccini`), against a running `vitals run` with real
//! checks — system, Delta tables written by Python, the IB gateway stand-in, a command
//! check whose status the test flips. Screenshots (desktop and phone widths) go to
//! `test-output/web/`.

use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::Daemonized;
use crate::support::browser::{ChromeDriver, Nginx, screenshot, text, until};
use crate::support::delta::make;
use crate::support::free_port;
use crate::support::gateway::Gateway;
use crate::support::write_config;

const TOKEN: &str = "browser-test-token";

fn config(dir: &Path, port: u16, gateway: u16, flag: &Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[defaults]
interval = "1s"
timeout = "20s"

[checks.ib]
kind = "ib_connection"
port = {gateway}
client_id = 11
heartbeat = "1s"
reconnect_backoff = "100ms"
reconnect_backoff_max = "100ms"
max_reconnect_attempts = 1

[checks.positions]
kind = "delta_freshness"
table = "positions"
column = "synced_at"
force_sync = ["/bin/true"]

[checks.greeks]
kind = "delta_freshness"
table = "greeks"
column = "synced_at"

[checks.cpu]
kind = "cpu"

[checks.memory]
kind = "memory"

[checks.disk]
kind = "disk"
path = "{dir}"

[checks.host]
kind = "host"

[checks.strategy_registry]
kind = "strategy_slots"
table = "registry"
filter_column = "status"
filter_value = "ACTIVE"
limit = 8
warn = 5
crit = 8

[checks.position_queue]
kind = "queue_backlog"
table = "queue"

[checks.feed]
kind = "command"
command = ["/bin/sh", "-c", "if [ -e {flag} ]; then echo 'CRITICAL - feed down'; exit 2; fi; echo 'OK - feed up'"]

[[rules]]
name = "feed_down"
checks = ["feed"]
when = "status == 'critical'"
severity = "CRITICAL"
message = "{{check}}: {{message}}"
"#,
        dir = dir.display(),
        flag = flag.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_works_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(&[d.join("positions").to_str().unwrap(), "tz", "5"]);
    make(&[d.join("greeks").to_str().unwrap(), "ntz", "90"]);
    make(&["registry", d.join("registry").to_str().unwrap(), "6", "2"]);
    make(&["queue", d.join("queue").to_str().unwrap(), "3", "1", "40"]);
    let flag = d.join("feed-down");
    std::fs::write(&flag, "").unwrap();
    let gw = Gateway::start().await;
    let port = free_port();
    let path = write_config(d, &config(d, port, gw.port(), &flag));
    let mut child = vitals_with_token(&path);
    child.expect("status page on");

    let driver = ChromeDriver::start().await;
    let c = driver.browser(&d.join("chromium-profile")).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();

    // Every section of the seed's page, in its order.
    let headings: Vec<String> = {
        let mut v = Vec::new();
        for h in c.find_all(Locator::Css("main h2")).await.unwrap() {
            v.push(h.text().await.unwrap());
        }
        v
    };
    assert_eq!(
        &headings[..6],
        [
            "Alerts",
            "IB connection",
            "Data freshness",
            "System metrics",
            "Active strategy registry",
            "Queue backlog",
        ]
    );
    // Badges show text and icon, not colour alone.
    until(
        &c,
        "IB connected",
        "return document.querySelector('#ib .badge')?.textContent.includes('CONNECTED')",
    )
    .await;
    assert!(text(&c, "#ib .badge").await.starts_with('✔'));
    until(
        &c,
        "fresh and stale tables",
        "const t = document.querySelector('#freshness').textContent; return t.includes('FRESH') && t.includes('STALE')",
    )
    .await;
    until(
        &c,
        "the slots",
        "return document.querySelector('#registry').textContent.includes('6 of 8 slots used')",
    )
    .await;
    until(
        &c,
        "the queue",
        "return document.querySelector('#queue').textContent.includes('3 pending')",
    )
    .await;
    until(
        &c,
        "four bars",
        "return document.querySelectorAll('meter').length >= 4",
    )
    .await;
    until(
        &c,
        "the feed alert",
        "return document.querySelector('#alerts').textContent.includes('feed_down on feed')",
    )
    .await;
    // A sparkline once there is history.
    until(
        &c,
        "a sparkline",
        "return document.querySelectorAll('svg.spark polyline').length >= 3",
    )
    .await;

    // Screenshots: desktop, then a phone's width (and nothing wider than the screen).
    screenshot(&c, "desktop.png").await;
    c.set_window_size(390, 844).await.unwrap();
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, Value::Bool(true), "the page fits a phone's width");
    // On a phone: why a table is STALE is in view without hovering, and its Force sync
    // button without scrolling sideways.
    let in_view = c
        .execute(
            "const row = document.querySelector('#freshness [data-check=greeks]'); \
             const why = row.querySelector('.why'); \
             const sync = document.querySelector('#freshness [data-check=positions] button[data-post$=force_sync]'); \
             const state = row.querySelector('td.sync'); \
             const w = window.innerWidth; \
             return [why && why.offsetParent !== null && why.textContent.length > 0 && why.getBoundingClientRect().right <= w, \
                     sync.getBoundingClientRect().right <= w && sync.getBoundingClientRect().left >= 0, \
                     /(running|idle|error)/.test(state.textContent) && state.querySelector('.small').textContent.length > 0 \
                       && state.offsetParent !== null && state.getBoundingClientRect().right <= w];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        in_view,
        json!([true, true, true]),
        "the reason, the button and the sync status are in view at 390 px"
    );
    screenshot(&c, "phone.png").await;
    c.set_window_size(1280, 1000).await.unwrap();
    // The writer's sync status and why, in its own column.
    let sync = text(&c, "#freshness [data-check=greeks] td.sync").await;
    assert!(
        ["running", "idle", "error"].iter().any(|s| sync.contains(s)),
        "{sync}"
    );
    // The thresholds are next to the age, not only in a tooltip.
    assert!(
        text(&c, "#freshness [data-check=greeks]")
            .await
            .contains("warn 30 s · crit 60 s")
    );

    // The long registry is its summary until opened; its columns sort.
    let open = c
        .execute(
            "return document.querySelector('#registry details.rows').open",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(open, Value::Bool(false), "the registry starts collapsed");
    c.execute(
        "document.querySelector('#registry details.rows').open = true",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#registry table.registry th:nth-child(2)").await;
    let symbols = c
        .execute(
            "return [...document.querySelectorAll('.registry-rows tr')].map(r => r.dataset.symbol)",
            vec![],
        )
        .await
        .unwrap();
    let symbols: Vec<String> = serde_json::from_value(symbols).unwrap();
    let mut sorted = symbols.clone();
    sorted.sort();
    assert_eq!(symbols, sorted, "sorted by symbol");

    // The symbol filter narrows the table, and stays through a refresh.
    c.execute("window.__marker = 42", vec![]).await.unwrap();
    let filter = c.find(Locator::Css("#symbol-filter")).await.unwrap();
    filter.send_keys("SPY").await.unwrap();
    let visible = "return [...document.querySelectorAll('.registry-rows tr')].filter(r => !r.hidden).map(r => r.dataset.symbol)";
    let shown = c.execute(visible, vec![]).await.unwrap();
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, ["SPY", "SPY"], "6 active rows cycle SPY, QQQ, IWM, AAPL");
    assert_eq!(text(&c, "#registry .filter-count").await, "· 2 of 6 shown");
    let refreshed = c
        .execute_async(
            "const done = arguments[0]; document.addEventListener('vitals:refreshed', () => done(true), {once: true});",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refreshed, Value::Bool(true));
    let shown: Vec<String> = serde_json::from_value(c.execute(visible, vec![]).await.unwrap()).unwrap();
    assert_eq!(shown.len(), 2, "still filtered after a refresh");

    // Acknowledge the alert: the first action asks for the token (kept for the tab).
    click(&c, "#alerts button.action").await;
    give_token(&c).await;
    until(
        &c,
        "the alert acknowledged",
        "return document.querySelector('#alerts').textContent.includes('acknowledged')",
    )
    .await;
    assert!(
        c.find_all(Locator::Css("#alerts button.action"))
            .await
            .unwrap()
            .is_empty()
    );

    // A status change shows up by itself, without a reload.
    std::fs::remove_file(&flag).unwrap();
    until(
        &c,
        "the alert resolved",
        "return document.querySelector('#alerts').textContent.includes('No active alerts')",
    )
    .await;
    until(
        &c,
        "feed ok",
        "return document.querySelector('#other').textContent.includes('OK - feed up')",
    )
    .await;
    assert_eq!(
        c.execute("return window.__marker", vec![]).await.unwrap(),
        json!(42),
        "no reload"
    );

    // Reconnect: the gateway goes away (auto-reconnect gives up after one attempt), the
    // button appears, the gateway comes back, the button reconnects (the tab has the
    // token now: no prompt).
    gw.outage();
    until(
        &c,
        "a Reconnect button",
        "return !!document.querySelector('#ib button.action')",
    )
    .await;
    assert!(text(&c, "#ib .badge").await.contains("DISCONNECTED"));
    gw.back().await;
    click(&c, "#ib button.action").await;
    until(
        &c,
        "the reconnect result",
        "return document.querySelector('#toast').textContent.includes('✔ connected to')",
    )
    .await;
    until(&c, "IB connected again", "return document.querySelector('#ib .badge').textContent.includes('CONNECTED') && !document.querySelector('#ib .badge').textContent.includes('DIS')").await;

    // Clear asks first.
    click(&c, "#queue button.action").await;
    wait_for_dialog(&c).await;
    assert!(c.get_alert_text().await.unwrap().contains("Nothing is deleted"));
    c.accept_alert().await.unwrap();
    until(
        &c,
        "the queue cleared",
        "return document.querySelector('#queue').textContent.includes('0 pending')",
    )
    .await;
    let counts = crate::support::delta::statuses(&d.join("queue"), None);
    assert_eq!(counts["counts"]["CLEARED"], 3, "{counts}");
    screenshot(&c, "after-actions.png").await;

    // vitals goes away: the page says so instead of showing old data as current.
    child.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = child.child.wait();
    until(&c, "the offline banner", "const b = document.getElementById('offline'); return !b.hidden && b.textContent.includes('cannot be reached')").await;
    screenshot(&c, "offline.png").await;
    c.close().await.unwrap();
}

fn vitals_with_token(path: &Path) -> Daemonized {
    // The token goes to the child's environment only.
    Daemonized::spawn_with_env(path, &[("VITALS_TOKEN", TOKEN)])
}

/// Clicks the element like a user: scrolled to the middle of the screen first.
async fn click(c: &Client, css: &str) {
    let el = c.find(Locator::Css(css)).await.unwrap();
    let arg = serde_json::to_value(&el).unwrap();
    c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
        .await
        .unwrap();
    el.click().await.unwrap();
}

/// Answers the page's own token dialog (a password field, never `window.prompt`).
async fn give_token(c: &Client) {
    until(
        c,
        "the token dialog",
        "const d = document.getElementById('token-dialog'); return d.open && d.querySelector('input').type === 'password';",
    )
    .await;
    let input = c
        .find(Locator::Css("#token-dialog input[name=token]"))
        .await
        .unwrap();
    input.send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("#token-dialog button[value=ok]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until a browser dialog (a confirm) is open.
async fn wait_for_dialog(c: &Client) {
    for _ in 0..100 {
        if c.get_alert_text().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no dialog opened");
}

/// A kind that lives only in the tests (`tests/it/kinds/gauge.rs`) appears in its own
/// section with its partial, bar, sparkline and button, and the button runs its action.
/// The daemon runs in this process, whose registry has the test kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_from_outside_the_crate_brings_its_panel_and_action() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let level = d.join("level");
    std::fs::write(&level, "90").unwrap();
    let port = free_port();
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[checks.tank]\nkind = \"test_gauge\"\n\
             interval = \"200ms\"\nfile = \"level\"\nwarn = 50\ncrit = 80\n"
        ),
    );
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("a valid config");
    let server = vitals::web::spawn(
        &format!("127.0.0.1:{port}"),
        daemon.web_with_token(Some(TOKEN.into())),
    )
    .expect("the page is served");

    let driver = ChromeDriver::start().await;
    let c = driver.browser(&d.join("chromium-profile")).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    until(
        &c,
        "the gauge critical in its own section",
        "const s = document.querySelector('#gauges'); return !!s && s.querySelector('h2').textContent === 'Test gauges' && s.querySelector('.badge').textContent.includes('CRITICAL')",
    )
    .await;
    let meter = c.find(Locator::Css("#gauges meter")).await.unwrap();
    assert_eq!(meter.attr("value").await.unwrap().as_deref(), Some("90.0"));
    assert_eq!(meter.attr("high").await.unwrap().as_deref(), Some("80.0"));
    assert!(
        text(&c, "#gauges .gauge")
            .await
            .contains("warn 50.0 %, crit 80.0 %")
    );
    until(
        &c,
        "the gauge's sparkline",
        "return document.querySelectorAll('#gauges svg.spark polyline').length === 1",
    )
    .await;
    screenshot(&c, "test-kind.png").await;

    // Its button, labelled as the kind declares, runs its action through the API.
    assert_eq!(text(&c, "#gauges button.action").await, "Reset gauge");
    click(&c, "#gauges button.action").await;
    give_token(&c).await;
    until(
        &c,
        "the action's result",
        "return document.querySelector('#toast').textContent.includes('✔ the gauge reads 0 now')",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&level).unwrap(), "0");
    until(
        &c,
        "the gauge ok",
        "return document.querySelector('#gauges .badge').textContent.includes('OK')",
    )
    .await;
    c.close().await.unwrap();
    server.stop(Duration::from_secs(2));
    daemon.shutdown().await;
}

/// Behind nginx with TLS, on the desk's name (`[server] public_url`): the page loads,
/// its button works; a POST from another origin is still refused through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_tls_the_buttons_work_and_other_origins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let level = d.join("level");
    std::fs::write(&level, "90").unwrap();
    let (port, proxy) = (free_port(), free_port());
    let public = format!("https://vitals.desk.example:{proxy}");
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}/\"\n\n[checks.tank]\nkind = \"test_gauge\"\n\
             interval = \"200ms\"\nfile = \"level\"\nwarn = 50\ncrit = 80\n"
        ),
    );
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("a valid config");
    let server = vitals::web::spawn(
        &format!("127.0.0.1:{port}"),
        daemon.web_with_token(Some(TOKEN.into())),
    )
    .expect("the page is served");
    let _nginx = Nginx::start(d, proxy, port);

    let driver = ChromeDriver::start().await;
    let c = driver
        .browser_with(
            &d.join("chromium-profile"),
            &[
                // The desk's name resolves to loopback, for this browser only.
                "--host-resolver-rules=MAP vitals.desk.example 127.0.0.1".into(),
                // The certificate is self-signed.
                "--ignore-certificate-errors".into(),
            ],
        )
        .await;
    c.goto(&format!("{public}/")).await.unwrap();
    until(
        &c,
        "the gauge through nginx",
        "return location.protocol === 'https:' && !!document.querySelector('#gauges .badge')",
    )
    .await;
    click(&c, "#gauges button.action").await;
    give_token(&c).await;
    until(
        &c,
        "the action's result through nginx",
        "return document.querySelector('#toast').textContent.includes('✔ the gauge reads 0 now')",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&level).unwrap(), "0");
    c.close().await.unwrap();

    // Through the same proxy, with the token: the desk's origin is let in, another is not.
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .resolve("vitals.desk.example", ([127, 0, 0, 1], proxy).into())
        .build()
        .unwrap();
    let post = |origin: &str| {
        client
            .post(format!("{public}/api/checks/tank/run"))
            .header("origin", origin)
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
    };
    assert_eq!(post(&public).await.unwrap().status(), 200);
    let refused = post("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("origin https://evil.example is not this server")
    );
    server.stop(Duration::from_secs(2));
}

/// With `[history]`, the page has a chart per check from `/api/history`, and the range
/// switch redraws them at a coarser step; a phone-width window scrolls no sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trend_charts_render_and_the_range_switch_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Full at first (the alert fires), then 42 % (it resolves): two markers.
    std::fs::write(d.join("level"), "90").unwrap();
    let port = free_port();
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[history]\nresolution = \"1s\"\n\n\
             [checks.tank]\nkind = \"test_gauge\"\ninterval = \"200ms\"\nfile = \"level\"\nwarn = 50\ncrit = 80\n\n\
             [[rules]]\nname = \"tank_full\"\nchecks = [\"tank\"]\nwhen = \"value > 80\"\nseverity = \"WARNING\"\n\n\
             [sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"100ms\"\n"
        ),
    );
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("a valid config");
    let server =
        vitals::web::spawn(&format!("127.0.0.1:{port}"), daemon.web_with_token(None)).expect("served");
    // The alert fires, then the tank empties to 42 % and it resolves.
    tokio::time::timeout(Duration::from_secs(20), async {
        while daemon.alerting().lock().unwrap().active().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the alert fires");
    std::fs::write(d.join("level"), "42").unwrap();
    // A few seconds of history (buckets written, and the ones still in memory).
    tokio::time::timeout(Duration::from_secs(20), async {
        while !d
            .join("state/history/_delta_log/00000000000000000003.json")
            .exists()
            || !daemon.alerting().lock().unwrap().active().is_empty()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("history written, the alert resolved");

    let driver = ChromeDriver::start().await;
    let c = driver.browser(&d.join("chromium-profile")).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    until(
        &c,
        "the tank's chart",
        "const f = document.querySelector('#trends figure[data-check=\"tank\"]'); \
         return !!f && !!f.querySelector('canvas') && f.dataset.step !== undefined",
    )
    .await;
    let shown = c
        .execute(
            "const f = document.querySelector('#trends figure[data-check=\"tank\"]'); return [f.dataset.step, Number(f.dataset.points)]",
            vec![],
        )
        .await
        .unwrap();
    // An hour at 1 s resolution is 3,600 buckets: 2-second steps keep it under 2,000.
    assert_eq!(shown[0], "2", "an hour's step: {shown}");
    assert!(shown[1].as_f64().unwrap() >= 2.0, "points drawn: {shown}");
    // The alert's fired and resolved markers (from the alerts table).
    until(
        &c,
        "the fired and resolved markers",
        "return document.querySelector('#trends figure[data-check=\"tank\"]').dataset.markers === '2'",
    )
    .await;
    c.execute("document.getElementById('trends').scrollIntoView()", vec![])
        .await
        .unwrap();
    screenshot(&c, "trends-1h.png").await;
    click(&c, "#trends button[data-range=\"86400\"]").await;
    until(
        &c,
        "24 h in 44-second steps (at most ~2,000 points)",
        "const f = document.querySelector('#trends figure[data-check=\"tank\"]'); \
         return f.dataset.step === '44' && document.querySelector('#trends button[data-range=\"86400\"]').getAttribute('aria-pressed') === 'true'",
    )
    .await;
    // Phone width: nothing scrolls sideways.
    c.set_window_size(390, 844).await.unwrap();
    until(
        &c,
        "no sideways scrolling at phone width",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
    )
    .await;
    screenshot(&c, "trends-phone.png").await;
    c.close().await.unwrap();
    server.stop(Duration::from_secs(2));
}

/// `/alerts` in Chromium: reached from the health page's link, filtered with its form,
/// and an alert acknowledged with its button (the token asked once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_filters_and_acknowledges_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("level"), "90").unwrap();
    let port = free_port();
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [checks.tank]\nkind = \"test_gauge\"\ninterval = \"200ms\"\nfile = \"level\"\nwarn = 50\ncrit = 80\n\n\
             [[rules]]\nname = \"tank_full\"\nchecks = [\"tank\"]\nwhen = \"value > 80\"\nseverity = \"WARNING\"\n\n\
             [sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"100ms\"\n"
        ),
    );
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("a valid config");
    let server = vitals::web::spawn(
        &format!("127.0.0.1:{port}"),
        daemon.web_with_token(Some(TOKEN.into())),
    )
    .expect("served");
    tokio::time::timeout(Duration::from_secs(20), async {
        while !d.join("alerts/_delta_log/00000000000000000001.json").exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the firing alert in the alerts table");

    let driver = ChromeDriver::start().await;
    let c = driver.browser(&d.join("chromium-profile")).await;
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    click(&c, "footer a[href=\"/alerts\"]").await;
    until(
        &c,
        "the firing alert on /alerts",
        "return location.pathname === '/alerts' && !!document.querySelector('tr[data-state=\"firing\"] button[data-post]')",
    )
    .await;
    // Filter by severity: CRITICAL hides it, WARNING shows it.
    c.execute(
        "document.querySelector('select[name=severity]').value = 'CRITICAL'",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "form.filters button[type=submit]").await;
    until(
        &c,
        "no alert for CRITICAL",
        "return location.search.includes('severity=CRITICAL') && document.querySelectorAll('tr[data-alert]').length === 0",
    )
    .await;
    c.execute(
        "document.querySelector('select[name=severity]').value = 'WARNING'",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "form.filters button[type=submit]").await;
    until(
        &c,
        "the alert for WARNING",
        "return location.search.includes('severity=WARNING') && document.querySelectorAll('tr[data-alert]').length === 1",
    )
    .await;
    // Acknowledge it from there.
    click(&c, "tr[data-state=\"firing\"] button[data-post]").await;
    give_token(&c).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while !daemon.alerting().lock().unwrap().active()[0].acknowledged {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("acknowledged");
    // The acknowledgement reaches the alerts table (its own commit), then the page.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !d.join("alerts/_delta_log/00000000000000000002.json").exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the acknowledgement in the alerts table");
    c.refresh().await.unwrap();
    until(
        &c,
        "the alert acknowledged on /alerts",
        "return !!document.querySelector('tr[data-state=\"acknowledged\"]')",
    )
    .await;
    screenshot(&c, "alerts-page.png").await;
    c.close().await.unwrap();
    server.stop(Duration::from_secs(2));
}
