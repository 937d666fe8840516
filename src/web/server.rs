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
/// cannot exhaust vitals' file descriptors or tasks, nor lock the desk out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. At the limit a new connection that speaks within
    /// [`AUDITION`] takes the place of the oldest silent one (or else the oldest): a
    /// client holding every connection open cannot keep everyone else out.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a
    /// keep-alive connection may sit idle before the next request: then it is closed.
    pub header_timeout: Duration,
    /// How long a write of an answer may wait for the client to read: a client that
    /// asks for a big answer and never reads it is dropped, and what the answer held
    /// with it.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// How long a connection past the cap that has spoken waits for the evicted one's slot.
const EVICTION_WAIT: Duration = Duration::from_millis(400);

/// The connections being served, oldest first, each with what closes it and whether
/// its client has sent a byte yet.
type Open = Arc<std::sync::Mutex<std::collections::VecDeque<(u64, CancellationToken, Arc<AtomicBool>)>>>;

use std::sync::atomic::{AtomicBool, Ordering};

/// Serves `router` on `listener` until `stop` is cancelled (in-flight requests finish),
/// HTTP/1.1 only, within `limits`.
///
/// At the connection cap, a new connection is not served at once: it has
/// [`AUDITION`] to send its first bytes (a request on its way does so within
/// milliseconds). Once it has, it takes the place of the oldest connection whose
/// client never sent a byte, or else of the oldest. A client holding every socket open
/// and reopening each as it closes only ever evicts its own silent sockets: the new
/// ones it opens never speak, so they never evict anyone.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: CancellationToken,
    limits: Limits,
) {
    use hyper_util::rt::TokioTimer;

    let addr = listener.local_addr().ok();
    info!(listen = ?addr, "status page on http://{}/", addr.map(|a| a.to_string()).unwrap_or_default());
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    // Connections past the cap waiting to speak, at most as many again.
    let auditions = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let served = Served {
        open: Arc::default(),
        stop: stop.clone(),
        http,
        router,
        limits,
        next_id: Arc::default(),
    };
    let mut tasks = tokio::task::JoinSet::new();
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
        // Reap what has finished, so the set stays small.
        while tasks.try_join_next().is_some() {}
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            at_limit_logged = false;
            tasks.spawn(
                served
                    .clone()
                    .serve(stream, slot, Arc::new(AtomicBool::new(false))),
            );
            continue;
        }
        if !at_limit_logged {
            warn!(
                "{} connections are open: a new one that sends a request takes the place of the oldest idle one",
                limits.max_connections
            );
            at_limit_logged = true;
        }
        let Ok(audition) = auditions.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let (served, slots) = (served.clone(), slots.clone());
        tasks.spawn(async move {
            let _audition = audition;
            let mut first = [0u8; 1];
            let spoke = tokio::select! {
                peeked = tokio::time::timeout(AUDITION, stream.peek(&mut first)) => matches!(peeked, Ok(Ok(n)) if n > 0),
                _ = served.stop.cancelled() => false,
            };
            if !spoke {
                return;
            }
            served.evict_one();
            if let Ok(Ok(slot)) = tokio::time::timeout(EVICTION_WAIT, slots.acquire_owned()).await {
                drop(_audition);
                served.serve(stream, slot, Arc::new(AtomicBool::new(true))).await;
            }
        });
    }
    // In-flight requests finish (each connection's token is a child of `stop`); idle
    // connections close now.
    while tasks.join_next().await.is_some() {}
}

/// How long a connection past the cap has to send its first bytes.
pub const AUDITION: Duration = Duration::from_secs(2);

/// What serving one connection needs.
#[derive(Clone)]
struct Served {
    open: Open,
    stop: CancellationToken,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    limits: Limits,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl Served {
    /// Closes the oldest connection whose client never sent a byte, or else the
    /// oldest (an idle or half-sent one at once; one handling or writing an answer
    /// after it).
    fn evict_one(&self) {
        let evicted = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let silent = open
                .iter()
                .position(|(_, _, spoke)| !spoke.load(Ordering::Relaxed));
            match silent {
                Some(i) => open.remove(i),
                None => open.pop_front(),
            }
        };
        if let Some((_, close, _)) = evicted {
            close.cancel();
        }
    }

    /// Serves one connection, holding `slot` until it ends.
    async fn serve(
        self,
        stream: tokio::net::TcpStream,
        slot: tokio::sync::OwnedSemaphorePermit,
        spoke: Arc<AtomicBool>,
    ) {
        use hyper_util::rt::TokioIo;
        use hyper_util::service::TowerToHyperService;

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = self.stop.child_token();
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((id, close.clone(), spoke.clone()));
        // Whether a request is being handled (its answer not yet begun): an evicted
        // connection finishes that one.
        let handling = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let service = {
            let (router, handling) = (self.router.clone(), handling.clone());
            TowerToHyperService::new(tower::service_fn(move |req| {
                use tower::ServiceExt;
                let (router, handling) = (router.clone(), handling.clone());
                async move {
                    handling.fetch_add(1, Ordering::Relaxed);
                    let answer = router.oneshot(req).await;
                    handling.fetch_sub(1, Ordering::Relaxed);
                    answer
                }
            }))
        };
        let stream = tokio::select! {
            s = unless_h2(stream, self.limits.header_timeout, &spoke) => s,
            // Evicted before its first byte.
            _ = close.cancelled() => None,
        };
        if let Some(stream) = stream {
            let io = WriteDeadline::new(stream, self.limits.write_timeout);
            let answering = io.answering.clone();
            let connection = self.http.serve_connection(TokioIo::new(io), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = close.cancelled() => {
                    // Evicted, or vitals stops: a request being handled or answered
                    // finishes (its write bounded by write_timeout); an idle or
                    // half-sent one ends now.
                    connection.as_mut().graceful_shutdown();
                    let busy = || handling.load(Ordering::Relaxed) > 0 || answering.load(Ordering::Relaxed);
                    loop {
                        tokio::select! {
                            _ = connection.as_mut() => break,
                            _ = tokio::time::sleep(EVICTION_WAIT / 4) => {
                                if !busy() {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _, _)| *i != id);
        drop(slot);
    }
}

/// A stream whose writes may wait for the client at most `limit`: a client that does
/// not read the answer it asked for is an error (`TimedOut`), and the connection ends.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write waits.
    waiting: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Whether the connection is writing an answer: set by a write, cleared when the
    /// client sends bytes of a request (a half-sent request is not being answered).
    answering: Arc<std::sync::atomic::AtomicBool>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            waiting: None,
            answering: Arc::default(),
        }
    }

    /// `Pending` from the inner stream: time out if it has waited too long.
    fn waited<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        pending: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        match pending {
            std::task::Poll::Pending => {
                let limit = self.limit;
                let sleep = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    self.waiting = None;
                    return std::task::Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not read the answer in time",
                    )));
                }
                std::task::Poll::Pending
            }
            ready => {
                self.waiting = None;
                ready
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.answering.store(false, Ordering::Relaxed);
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.answering.store(true, Ordering::Relaxed);
        }
        self.waited(cx, r)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.waited(cx, r)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// HTTP/2 with prior knowledge (h2c) is not spoken: a connection that opens with its
/// preface gets a plain HTTP/1.1 505 and is closed, so the client learns why instead
/// of meeting a silent close. Gives the stream back when it is not that.
async fn unless_h2(
    mut stream: tokio::net::TcpStream,
    wait: Duration,
    spoke: &AtomicBool,
) -> Option<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut first = [0u8; 4];
    let peeked = tokio::time::timeout(wait, stream.peek(&mut first)).await;
    if matches!(peeked, Ok(Ok(n)) if n > 0) {
        spoke.store(true, Ordering::Relaxed);
    }
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
