//! The web server: the status page, `/api/status`, `/metrics`, `/healthz`, and the
//! authenticated `POST` actions. Everything it shows comes from the status board and
//! alerting; no `GET` runs a check or changes anything, so a burst of page loads never
//! delays a check.

mod metrics;
mod page;

pub use page::templates;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::alerting::Alerting;
use crate::board::Board;
use crate::check::{ActionError, ActionSpec, Checks, RunContext};
use crate::plugin::Kinds;
use crate::runner::Instances;

/// The most a request body may hold (actions take none).
pub const BODY_LIMIT: usize = 4 * 1024;

/// How long a rendered page, status or metrics text is served again before it is
/// rendered anew (any `POST` drops it at once). Many readers cost one render per window.
pub const RENDER_EVERY: Duration = Duration::from_millis(250);

/// What the handlers read.
pub struct Web {
    board: Board,
    instances: Instances,
    alerting: Arc<Mutex<Alerting>>,
    /// The bearer token actions need; `None`: actions are disabled.
    token: Option<String>,
    /// Where the token comes from, for messages.
    token_env: String,
    started_at: DateTime<Utc>,
    host: String,
    /// Rendered bodies by route, with when they were rendered.
    cache: Mutex<std::collections::HashMap<&'static str, Rendered>>,
    /// The check kinds: their sections and partials.
    kinds: &'static Kinds<Checks>,
    /// The page's templates (an error in a kind's partial is shown by `GET /`).
    templates: Result<minijinja::Environment<'static>, minijinja::Error>,
}

impl Web {
    /// Handlers over a daemon's board, instances and alerting. `token` is what actions
    /// need (`None` or empty: actions are disabled); `token_env` names where it came from.
    pub fn new(
        board: Board,
        instances: Instances,
        alerting: Arc<Mutex<Alerting>>,
        kinds: &'static Kinds<Checks>,
        token_env: &str,
        token: Option<String>,
    ) -> Web {
        let token = token.filter(|t| !t.trim().is_empty());
        if token.is_none() {
            info!("{token_env} is not set: the page's actions are disabled");
        }
        Web {
            board,
            instances,
            alerting,
            token,
            token_env: token_env.to_owned(),
            started_at: Utc::now(),
            host: crate::alert::hostname().to_owned(),
            cache: Mutex::default(),
            kinds,
            templates: page::templates(kinds),
        }
    }

    /// The body of `route` as rendered within the last [`RENDER_EVERY`], or rendered now.
    /// While one reader renders a stale body anew, the others get the stale one at once
    /// (no reader waits for another's render); after [`Web::invalidate`] there is no
    /// stale body, so the next readers see the change.
    fn cached<E>(
        &self,
        route: &'static str,
        render: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<axum::body::Bytes, E> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut cache = lock();
            if let Some(r) = cache.get_mut(route) {
                if r.at.elapsed() < RENDER_EVERY || r.rendering {
                    return Ok(r.body.clone());
                }
                r.rendering = true;
            }
        }
        let rendered = render();
        let mut cache = lock();
        match rendered {
            Ok(body) => {
                let body = axum::body::Bytes::from(body);
                cache.insert(
                    route,
                    Rendered {
                        at: std::time::Instant::now(),
                        body: body.clone(),
                        rendering: false,
                    },
                );
                Ok(body)
            }
            Err(e) => {
                if let Some(r) = cache.get_mut(route) {
                    r.rendering = false;
                }
                Err(e)
            }
        }
    }

    /// Forgets every rendered body (after anything that changes what they show).
    fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn actions_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Every check's actions, by id.
    fn actions(&self) -> std::collections::BTreeMap<String, Vec<ActionSpec>> {
        let instances = self.instances.read().unwrap_or_else(|e| e.into_inner());
        instances
            .iter()
            .map(|(id, i)| (id.clone(), i.check().map(|c| c.actions()).unwrap_or_default()))
            .collect()
    }
}

/// The routes, with security headers and the body limit.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/static/page.css", get(page::css))
        .route("/static/page.js", get(page::js))
        .route("/api/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/checks/{id}/run", post(run_now))
        .route("/api/checks/{id}/actions/{action}", post(action))
        .route("/api/alerts/{alert_id}/ack", post(ack))
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(web)
}

/// Serves `router` on `listener` until `stop` is cancelled (in-flight requests finish).
pub async fn serve(listener: tokio::net::TcpListener, router: Router, stop: CancellationToken) {
    let addr = listener.local_addr().ok();
    info!(listen = ?addr, "status page on http://{}/", addr.map(|a| a.to_string()).unwrap_or_default());
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        warn!("the web server stopped: {e}");
    }
}

/// A rendered body and when it was rendered.
struct Rendered {
    at: std::time::Instant,
    body: axum::body::Bytes,
    /// A reader is rendering it anew.
    rendering: bool,
}

/// A web server running on its own thread and runtime.
pub struct Server {
    stop: CancellationToken,
    done: std::sync::mpsc::Receiver<()>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish (at most `grace`), and returns.
    pub fn stop(self, grace: Duration) {
        self.stop.cancel();
        let _ = self.done.recv_timeout(grace);
    }
}

/// Starts the server for `web` on `listen`, on threads of its own (a runtime with two
/// workers at nice 10): however many requests arrive, they queue there and never take
/// a worker thread from the checks, and the kernel runs the checks' threads first. `None` (logged) when `listen` cannot be bound:
/// the daemon keeps running without its page.
pub fn spawn(listen: &str, web: Arc<Web>) -> Option<Server> {
    let stop = CancellationToken::new();
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    let (listen, stopping) = (listen.to_owned(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("vitals-web".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    warn!("cannot start the web server's runtime ({e}): the status page is off");
                    let _ = bound_tx.send(false);
                    return;
                }
            };
            runtime.block_on(async move {
                let Some(listener) = bind(&listen).await else {
                    let _ = bound_tx.send(false);
                    return;
                };
                let _ = bound_tx.send(true);
                serve(listener, router(web), stopping).await;
            });
            let _ = done_tx.send(());
        });
    if let Err(e) = thread {
        warn!("cannot start the web server's thread ({e}): the status page is off");
        return None;
    }
    // Binding takes microseconds; waiting for it keeps start-up errors in order.
    bound.recv().unwrap_or(false).then_some(Server { stop, done })
}

/// Gives the calling thread a nice value of 10, so that under a flood of requests the
/// kernel runs the checks' threads first.
fn lower_priority() {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority only reads its integer arguments; `tid` is this thread's id.
    let r = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, 10) };
    if r != 0 {
        tracing::debug!(
            "cannot lower the web thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Binds `listen`; on failure the daemon keeps running without its page.
pub async fn bind(listen: &str) -> Option<tokio::net::TcpListener> {
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            warn!("[server] listen = {listen:?} is not an address ({e}): the status page is off");
            return None;
        }
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            warn!("cannot listen on {addr} ({e}): the status page is off; checks and alerts keep running");
            None
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// A refused request: status, message and, for 401, the challenge.
struct Refusal {
    status: StatusCode,
    message: String,
    challenge: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
            challenge: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = error(self.status, self.message);
        if let Some(c) = self.challenge {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        r
    }
}

/// Security headers on every response; for `POST`: same-origin only, and the token.
async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    // No route reads a body; refuse big ones before anything else.
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if length.is_some_and(|n| n > BODY_LIMIT) {
        let mut r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        );
        secure(r.headers_mut());
        return r;
    }
    if request.method() == Method::POST
        && let Err(refused) = authorize(&web, request.headers())
    {
        let mut r = refused.into_response();
        secure(r.headers_mut());
        return r;
    }
    let post = request.method() == Method::POST;
    let mut response = next.run(request).await;
    if post {
        web.invalidate();
    }
    secure(response.headers_mut());
    response
}

fn secure(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}

fn authorize(web: &Web, headers: &HeaderMap) -> Result<(), Refusal> {
    // Cross-site requests are refused whatever they carry.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "cross-site requests are refused",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let origin = origin.as_bytes();
        let same = [&b"http://"[..], b"https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(*scheme) == Some(host));
        if !same {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "origin {} is not this server: actions are taken from vitals' own page",
                    String::from_utf8_lossy(origin)
                ),
            ));
        }
    }
    let Some(token) = &web.token else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "actions are disabled: set the environment variable {} to a secret token and restart vitals",
                web.token_env
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(given) = given else {
        return Err(Refusal {
            challenge: Some("Bearer"),
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "this action needs `Authorization: Bearer <token>`",
            )
        });
    };
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal {
            challenge: Some("Bearer error=\"invalid_token\""),
            ..Refusal::new(StatusCode::UNAUTHORIZED, "wrong token")
        })
    }
}

/// `GET /api/status`: every check's latest observation, the active and held-back
/// alerts, and which actions each check offers.
async fn status(State(web): State<Arc<Web>>) -> Response {
    match web.cached("status", || serde_json::to_vec(&status_json(&web))) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status: {e}"),
        ),
    }
}

fn status_json(web: &Web) -> Value {
    let checks: Vec<Value> = web
        .board
        .snapshot()
        .iter()
        .map(|e| {
            let mut o = serde_json::to_value(&*e.latest).unwrap_or_default();
            o["since"] = json!(e.since);
            o
        })
        .collect();
    let (alerts, suppressed) = {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        (a.active(), a.suppressed())
    };
    json!({
        "generated_at": Utc::now(),
        "host": web.host,
        "checks": checks,
        "alerts": alerts,
        "suppressed": suppressed,
        "actions_enabled": web.actions_enabled(),
        "actions": web.actions(),
    })
}

/// `GET /healthz`: vitals itself is alive and serving.
async fn healthz(State(web): State<Arc<Web>>) -> Response {
    let checks = web.instances.read().unwrap_or_else(|e| e.into_inner()).len();
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "checks": checks,
        "started_at": web.started_at,
        "uptime_s": (Utc::now() - web.started_at).num_seconds(),
    }))
    .into_response()
}

fn instance(web: &Web, id: &str) -> Result<Arc<crate::runner::Instance>, Refusal> {
    let instances = web.instances.read().unwrap_or_else(|e| e.into_inner());
    instances.get(id).cloned().ok_or_else(|| {
        let known: Vec<&str> = instances.keys().map(String::as_str).collect();
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!(
                "no check `{id}`{}; configured checks: {}",
                crate::plugin::suggest(id, known.iter().copied()),
                known.join(", ")
            ),
        )
    })
}

/// `POST /api/checks/{id}/run`: runs the check now and puts the result on the board.
async fn run_now(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let i = match instance(&web, &id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let o = i.run_once(tokio::time::Instant::now()).await;
    web.board.publish(o.clone());
    info!(check = %id, status = %o.status, "run now (requested over HTTP): {}", o.message);
    web.alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record_action(&id, "run", true, &format!("{}: {}", o.status, o.message));
    axum::Json(o).into_response()
}

/// How long an action may take (its own timeouts are usually shorter).
const ACTION_TIME: Duration = Duration::from_secs(300);

/// `POST /api/checks/{id}/actions/{action}`: one of the check's own actions.
async fn action(State(web): State<Arc<Web>>, Path((id, name)): Path<(String, String)>) -> Response {
    let i = match instance(&web, &id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let check = match i.check() {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{id}: the check could not be set up: {e}"),
            );
        }
    };
    let now = tokio::time::Instant::now();
    let cx = RunContext {
        id: id.clone(),
        scheduled: now,
        deadline: now + ACTION_TIME.max(i.timeout),
        timeout: ACTION_TIME.max(i.timeout),
    };
    let result = check.act(&name, &cx).await;
    let record = |ok: bool, message: &str| {
        web.alerting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_action(&id, &name, ok, message);
    };
    match result {
        Ok(outcome) => {
            info!(check = %id, action = %name, ok = outcome.ok, "action: {}", outcome.message);
            record(outcome.ok, &outcome.message);
            let code = if outcome.ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            (code, axum::Json(outcome)).into_response()
        }
        Err(e @ ActionError::NoSuchAction { .. }) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => {
            let message = e.to_string();
            warn!(check = %id, action = %name, "action failed: {message}");
            record(false, &message);
            error(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

/// `POST /api/alerts/{alert_id}/ack`.
async fn ack(State(web): State<Arc<Web>>, Path(alert_id): Path<String>) -> Response {
    let mut alerting = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
    match alerting.acknowledge(&alert_id) {
        Some(event) => {
            info!(alert_id = %alert_id, "alert acknowledged over HTTP");
            axum::Json(event).into_response()
        }
        None => {
            let firing: Vec<String> = alerting
                .active()
                .into_iter()
                .filter(|a| !a.acknowledged)
                .map(|a| a.alert_id)
                .collect();
            error(
                StatusCode::NOT_FOUND,
                format!(
                    "no unacknowledged firing alert `{alert_id}`; firing now: {}",
                    if firing.is_empty() {
                        "none".to_owned()
                    } else {
                        firing.join(", ")
                    }
                ),
            )
        }
    }
}
