//! The listener: the server runs on threads and a runtime of its own, so requests never
//! take a worker thread from the checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Web, router};

/// What one server accepts: connections are bounded so that idle or slow clients
/// cannot exhaust vitals' file descriptors or tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed at once (refused, not queued).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a
    /// keep-alive connection may sit idle before the next request: then it is closed.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled (in-flight requests finish),
/// HTTP/1.1 only, within `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: CancellationToken,
    limits: Limits,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let addr = listener.local_addr().ok();
    info!(listen = ?addr, "status page on http://{}/", addr.map(|a| a.to_string()).unwrap_or_default());
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut at_limit_logged = false;
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::debug!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if !at_limit_logged {
                warn!(
                    "{} connections are open: refusing more until some close",
                    limits.max_connections
                );
                at_limit_logged = true;
            }
            drop(stream);
            continue;
        };
        at_limit_logged = false;
        let service = TowerToHyperService::new(router.clone());
        let (http, watcher, header_timeout) = (http.clone(), graceful.watcher(), limits.header_timeout);
        tokio::spawn(async move {
            if let Some(stream) = unless_h2(stream, header_timeout).await {
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(stream), service))
                    .await;
            }
            drop(slot);
        });
    }
    // In-flight requests finish; idle connections are closed now.
    graceful.shutdown().await;
}

/// HTTP/2 with prior knowledge (h2c) is not spoken: a connection that opens with its
/// preface gets a plain HTTP/1.1 505 and is closed, so the client learns why instead
/// of meeting a silent close. Gives the stream back when it is not that.
async fn unless_h2(mut stream: tokio::net::TcpStream, wait: Duration) -> Option<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut first = [0u8; 4];
    let peeked = tokio::time::timeout(wait, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(4))) || &first != b"PRI " {
        return Some(stream);
    }
    const BODY: &str = "vitals speaks HTTP/1.1 only.\r\n";
    let answer = format!(
        "HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(wait, stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
    None
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
/// a worker thread from the checks, and the kernel runs the checks' threads first.
/// An error names the address when it cannot be bound (taken, not ours): `vitals run`
/// then stops at once rather than run without its page.
pub fn spawn(listen: &str, web: Arc<Web>) -> Result<Server, String> {
    spawn_with(listen, Limits::default(), web)
}

/// [`spawn`] with explicit connection limits.
pub fn spawn_with(listen: &str, limits: Limits, web: Arc<Web>) -> Result<Server, String> {
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
                    let _ = bound_tx.send(Err(format!("cannot start the web server's runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match bind(&listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                let _ = bound_tx.send(Ok(()));
                serve(listener, router(web), stopping, limits).await;
            });
            let _ = done_tx.send(());
        });
    if let Err(e) = thread {
        return Err(format!("cannot start the web server's thread: {e}"));
    }
    // Binding takes microseconds; waiting for it keeps start-up errors in order.
    bound
        .recv()
        .unwrap_or_else(|_| Err("the web server's thread ended before binding".into()))
        .map(|()| Server { stop, done })
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

/// Binds `listen`, or says why not, naming the address.
pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener, String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("[server] listen = {listen:?} is not an address ({e})"))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            ": another program (or another vitals) listens there; stop it, or set another [server] listen"
        } else {
            ""
        };
        format!("cannot listen on {addr}: {e}{hint}")
    })
}
