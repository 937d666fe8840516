//! docs/writing-a-sink.md, walked: the test-only `test_webhook` sink
//! (`kinds/webhook.rs`, one file and one `mod` line) is registered, documented, parsed
//! from TOML, refused with its own words, and delivers through the dispatcher to a real
//! HTTP server on loopback — an outage retried, a refusal dead-lettered, actions not
//! posted, and no secret of its URL in any message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::config::parse;
use vitals::dispatch::{Dispatcher, SinkInstance};
use vitals::registry::registry;

/// What the receiving server got, and what it answers next.
#[derive(Default)]
struct Receiver {
    bodies: Mutex<Vec<serde_json::Value>>,
    /// Answers to give first, in order; 200 after them.
    script: Mutex<Vec<StatusCode>>,
}

async fn receive(State(r): State<Arc<Receiver>>, body: String) -> StatusCode {
    let answer = {
        let mut script = r.script.lock().unwrap();
        if script.is_empty() {
            StatusCode::OK
        } else {
            script.remove(0)
        }
    };
    if answer == StatusCode::OK {
        r.bodies
            .lock()
            .unwrap()
            .push(serde_json::from_str(&body).unwrap());
    }
    answer
}

/// A receiving server on a free loopback port; stops with the test's runtime.
async fn server(script: Vec<StatusCode>) -> (u16, Arc<Receiver>) {
    let r = Arc::new(Receiver {
        script: Mutex::new(script),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hook", post(receive)).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, r)
}

fn event(n: usize, state: AlertState) -> AlertEvent {
    AlertEvent::new(
        "data_stale",
        &format!("positions{n}"),
        Severity::Warning,
        state,
        format!("positions{n} stale"),
        chrono::Utc::now(),
    )
}

fn sink(dir: &std::path::Path, keys: &str) -> SinkInstance {
    let text = format!("[sinks.hook]\nkind = \"test_webhook\"\n{keys}");
    let config =
        parse(&dir.join("vitals.toml"), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    SinkInstance::build(&config.sinks[0], dir)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

#[test]
fn the_test_sink_is_registered_documented_and_validated_in_its_own_words() {
    let kind = registry().unwrap().sinks.get("test_webhook").expect("registered");
    assert!(
        kind.location().starts_with("tests/it/kinds/webhook.rs:"),
        "{}",
        kind.location()
    );
    let keys: Vec<String> = (kind.keys)().into_iter().map(|k| k.name).collect();
    assert_eq!(keys, ["url", "url_env", "timeout", "group_wait"]);
    let text = "[sinks.hook]\nkind = \"test_webhook\"\nurl = \"ftp://x\"\n";
    let e = parse("v.toml".as_ref(), text, registry().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("v.toml:3:7: [sinks.hook] key `url`: must start with http:// or https://"),
        "{e}"
    );
    // Its URL variable is a secret: no check may pass it to a plugin.
    let text = "[sinks.hook]\nkind = \"test_webhook\"\nurl_env = \"DESK_HOOK\"\n\
                [checks.p]\nkind = \"command\"\ncommand = [\"/bin/true\"]\nenv_passthrough = [\"DESK_HOOK\"]\n";
    let e = parse("v.toml".as_ref(), text, registry().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`DESK_HOOK` holds a secret"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_sink_delivers_retries_an_outage_and_keeps_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (port, received) = server(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
    let url = format!("http://127.0.0.1:{port}/hook?token=s3cret-token");
    let d = Dispatcher::start(vec![sink(dir.path(), &format!("url = \"{url}\"\n"))], dir.path());
    d.send(&event(1, AlertState::Firing));
    // An operator's action is recorded by other sinks, never posted here.
    d.send(&event(2, AlertState::Action));
    until("the batch is delivered after the 503", || {
        !received.bodies.lock().unwrap().is_empty()
    })
    .await;
    let bodies = received.bodies.lock().unwrap().clone();
    let ids: Vec<&str> = bodies
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .map(|e| e["check_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["positions1"], "{bodies:?}");
    d.shutdown(Duration::from_secs(2)).await;
    let outbox = dir.path().join("outbox").join("hook.jsonl");
    assert!(!outbox.exists(), "delivered events leave the outbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_dead_lettered_with_the_url_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (port, received) = server(vec![StatusCode::BAD_REQUEST]).await;
    let url = format!("http://user:pa55@127.0.0.1:{port}/hook?token=s3cret-token");
    let target = sink(dir.path(), &format!("url = \"{url}\"\n"));
    // The error the dispatcher logs and buries the batch with.
    let Ok(s) = &target.sink else { panic!("built") };
    let e = s.deliver(&[event(1, AlertState::Firing)]).await.unwrap_err();
    assert!(!e.retryable, "a 400 is not worth retrying: {e}");
    assert!(e.message.contains(&format!("http://127.0.0.1:{port}/…")), "{e}");
    for secret in ["s3cret", "pa55", "user"] {
        assert!(!e.message.contains(secret), "{secret} in {e}");
    }
    assert!(received.bodies.lock().unwrap().is_empty());
    let d = Dispatcher::start(vec![target], dir.path());
    received.script.lock().unwrap().push(StatusCode::BAD_REQUEST);
    d.send(&event(2, AlertState::Firing));
    let dead = dir.path().join("outbox").join("hook.dead.jsonl");
    until("the batch is dead-lettered", || dead.exists()).await;
    d.shutdown(Duration::from_secs(2)).await;
    assert!(std::fs::read_to_string(dead).unwrap().contains("positions2"));
}
