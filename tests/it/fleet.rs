//! A desk of three hosts on loopback ports, sharing one alerts Delta table: each vitals
//! says its own `[server] name`; the watcher's `peer` checks read the other two (one
//! with a critical check, one healthy and protected by a read token, and the same one
//! without the token), its page has a Fleet section naming every host (in Chromium
//! too), and when a host is killed its peer check turns critical within interval +
//! timeout + 1 s and a rule on the peer kind pages, as a row under the watcher's name.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::browser::{ChromeDriver, screenshot, until as browser_until};
use crate::support::{Daemonized, check, free_port, status, write_config};

async fn within<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One host's config in its own folder, appending to the shared `table`.
fn host(dir: &Path, name: &str, port: u16, table: &Path, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write_config(
        dir,
        &format!(
            "{body}\n[sinks.desk]\nkind = \"delta\"\ntable = {:?}\nflush_interval = \"200ms\"\n\n\
             [server]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\n{}",
            table.display().to_string(),
            if name == "data-1" {
                "read_token_env = \"DATA_READ_TOKEN\"\n"
            } else {
                ""
            }
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_watch_each_other_through_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = d.join("desk-alerts");
    let (engine, data, watcher) = (free_port(), free_port(), free_port());
    let engine_cfg = host(
        &d.join("engine"),
        "engine-1",
        engine,
        &table,
        "[checks.gateway]\nkind = \"command\"\ninterval = \"500ms\"\n\
         command = [\"/bin/sh\", \"-c\", \"echo 'CRITICAL - gateway down'; exit 2\"]\n\n\
         [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n",
    );
    let data_cfg = host(
        &d.join("data"),
        "data-1",
        data,
        &table,
        "[checks.sync]\nkind = \"command\"\ninterval = \"500ms\"\ncommand = [\"/bin/sh\", \"-c\", \"echo 'OK - syncing'\"]\n",
    );
    let watcher_cfg = host(
        &d.join("watcher"),
        "watcher",
        watcher,
        &table,
        &format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"1s\"\n\n\
             [checks.engine_host]\nkind = \"peer\"\nurl = \"http://127.0.0.1:{engine}\"\n\n\
             [checks.data_host]\nkind = \"peer\"\nurl = \"http://127.0.0.1:{data}\"\nread_token_env = \"DATA_TOKEN\"\n\n\
             [checks.data_host_anonymous]\nkind = \"peer\"\nurl = \"http://127.0.0.1:{data}/\"\n\n\
             [[rules]]\nname = \"host_down\"\nkinds = [\"peer\"]\nwhen = \"label == 'DOWN'\"\nseverity = \"CRITICAL\"\n"
        ),
    );
    let _engine = Daemonized::spawn(&engine_cfg);
    let data_host = Daemonized::spawn_with_env(&data_cfg, &[("DATA_READ_TOKEN", "s3cret-read")]);
    let watch = Daemonized::spawn_with_env(&watcher_cfg, &[("DATA_TOKEN", "s3cret-read")]);
    watch.expect("status page on");
    data_host.expect("status page on");

    // What the watcher reads of each peer.
    let s = within(20, "every peer read", async || {
        let s = status(watcher).await;
        let engine = check(&s, "engine_host");
        let ready = engine["details"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["rule"] == "gateway_down"))
            && check(&s, "data_host")["status"] == "ok"
            && check(&s, "data_host_anonymous")["label"] == "DOWN";
        ready.then_some(s)
    })
    .await;
    let engine_peer = check(&s, "engine_host");
    assert_eq!(engine_peer["status"], "critical", "{engine_peer}");
    assert_eq!(engine_peer["details"]["name"], "engine-1");
    assert_eq!(engine_peer["value"], 1.0, "one problem");
    assert!(
        engine_peer["message"]
            .as_str()
            .unwrap()
            .contains("firing: gateway_down on gateway")
    );
    let data_peer = check(&s, "data_host");
    assert_eq!(data_peer["label"], "UP");
    crate::panels::assert_writes_what_its_panel_reads(&serde_json::from_value(data_peer.clone()).unwrap());
    assert_eq!(data_peer["details"]["name"], "data-1");
    let anonymous = check(&s, "data_host_anonymous");
    assert_eq!(anonymous["status"], "critical");
    assert!(
        anonymous["message"]
            .as_str()
            .unwrap()
            .contains("answered 401 Unauthorized"),
        "{anonymous}"
    );
    assert!(!s.to_string().contains("s3cret-read"), "the token never shows");
    // Each says its own name.
    assert_eq!(status(engine).await["name"], "engine-1");
    assert_eq!(s["name"], "watcher");

    // The Fleet section: this host first, then every peer.
    let page = reqwest::get(format!("http://127.0.0.1:{watcher}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fleet = &page[page.find("id=\"fleet\"").expect("a Fleet section")..];
    let order: Vec<usize> = [
        "data-host=\"watcher\"",
        "data-host=\"engine-1\"",
        "data-host=\"data-1\"",
    ]
    .iter()
    .map(|h| fleet.find(h).unwrap_or_else(|| panic!("{h} in {fleet}")))
    .collect();
    assert!(order[0] < order[1] && order[0] < order[2], "this host first");

    // One table: each host's rows under its name; /alerts filters by host.
    let rows = within(
        20,
        "rows of engine-1 and the watcher in the one table",
        async || {
            let rows = crate::support::delta::try_read_table(&table).ok()?;
            let rows = rows["rows"].as_array()?.clone();
            let hosts: Vec<&str> = rows.iter().filter_map(|r| r["host"].as_str()).collect();
            (hosts.contains(&"engine-1") && hosts.contains(&"watcher")).then_some(rows)
        },
    )
    .await;
    assert!(
        rows.iter()
            .any(|r| r["host"] == "engine-1" && r["rule"] == "gateway_down")
    );
    assert!(
        rows.iter()
            .any(|r| r["host"] == "watcher" && r["check_id"] == "data_host_anonymous")
    );
    let engine_only = reqwest::get(format!("http://127.0.0.1:{watcher}/alerts.csv?host=engine-1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(engine_only.contains("gateway_down"), "{engine_only}");
    assert!(!engine_only.contains(",watcher"), "{engine_only}");

    // The Fleet section in Chromium, at desktop width and on a phone.
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.browser(profile.path()).await;
    c.goto(&format!("http://127.0.0.1:{watcher}/")).await.unwrap();
    browser_until(
        &c,
        "the Fleet rows",
        "const t = document.querySelector('#fleet').textContent; \
         return ['watcher', 'engine-1', 'data-1'].every(h => t.includes(h)) \
           && document.querySelectorAll('#fleet tbody tr').length === 4",
    )
    .await;
    c.set_window_size(390, 844).await.unwrap();
    let fits = c
        .execute(
            "const f = document.querySelector('#fleet'); return f.getBoundingClientRect().right <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, Value::Bool(true), "the Fleet section fits a phone");
    screenshot(&c, "fleet-phone.png").await;
    c.close().await.unwrap();

    // SIGKILL the data host: its peer check is critical within interval + timeout + 1 s,
    // and host_down pages, as a row under the watcher's name.
    drop(data_host);
    let killed = Instant::now();
    within(10, "data_host critical", async || {
        let s = status(watcher).await;
        (check(&s, "data_host")["status"] == "critical").then_some(())
    })
    .await;
    assert!(
        killed.elapsed() <= Duration::from_secs(3),
        "{:?} after the kill",
        killed.elapsed()
    );
    within(20, "host_down on data_host in the table", async || {
        let rows = crate::support::delta::try_read_table(&table).ok()?;
        rows["rows"]
            .as_array()?
            .iter()
            .any(|r| r["rule"] == "host_down" && r["check_id"] == "data_host" && r["host"] == "watcher")
            .then_some(())
    })
    .await;
}

/// A peer's URL holds no credentials or query, and its token variable is a secret no
/// plugin may be given; `[server] name` takes no spaces.
#[test]
fn a_peer_keeps_its_token_out_of_the_url_and_from_plugins() {
    let registry = vitals::registry::registry().unwrap();
    let text = "[server]\nname = \"engine 1\"\n\n\
                [checks.a]\nkind = \"peer\"\nurl = \"http://user:pw@10.0.0.12:8686\"\n\n\
                [checks.b]\nkind = \"peer\"\nurl = \"http://10.0.0.12:8686/?token=x\"\n\n\
                [checks.c]\nkind = \"peer\"\nurl = \"http://10.0.0.12:8686\"\nread_token_env = \"DESK_PEER\"\n\n\
                [checks.p]\nkind = \"command\"\ncommand = [\"/bin/true\"]\nenv_passthrough = [\"DESK_PEER\"]\n";
    let e = vitals::config::parse("v.toml".as_ref(), text, registry)
        .unwrap_err()
        .to_string();
    for expected in [
        "[server] key `name`: a name of 1 to 64 characters without spaces",
        "[checks.a] key `url`: must hold no user or password",
        "[checks.b] key `url`: must hold no query",
    ] {
        assert!(e.contains(expected), "{expected}: {e}");
    }
    // With the rest valid, the passthrough of the peer's token is refused.
    let text = text
        .replace("name = \"engine 1\"", "name = \"engine-1\"")
        .replace("user:pw@", "")
        .replace("/?token=x", "");
    let e = vitals::config::parse("v.toml".as_ref(), &text, registry)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[checks.p] key `env_passthrough`: `DESK_PEER` holds a secret"),
        "{e}"
    );
}
