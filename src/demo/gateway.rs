//! A stand-in for IB Gateway: a loopback TCP server speaking the TWS wire protocol of
//! the protobuf era, the one `ibapi` 5.x speaks, so the real client connects to it
//! unchanged — and misbehaving on cue. `vitals demo` runs its desk on it; the tests
//! and benchmarks drive it through outages, silences, drops and notices.
//!
//! Wire (from ibapi's source): every frame is a 4-byte big-endian length and a body.
//! The client opens with `API\0` and a frame holding its version range (`v213..226`);
//! the server answers with one plain frame `"<version>\0YYYYMMDD HH:MM:SS TZ\0"`. Then
//! bodies are a 4-byte big-endian message id and, for ids above 200, a protobuf
//! message: START_API (71+200, `{1: client_id}`) from the client; NextValidId (9+200)
//! and ManagedAccounts (15+200) from the server; error/notice frames (4+200, `{1: id,
//! 2: time_ms, 3: code, 4: text}`); CurrentTime requests (49+200, empty) and replies
//! (49+200, `{1: epoch_seconds}`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

const PROTOBUF: i32 = 200;
const START_API: i32 = 71 + PROTOBUF;
const NEXT_VALID_ID: i32 = 9 + PROTOBUF;
const MANAGED_ACCOUNTS: i32 = 15 + PROTOBUF;
const ERROR: i32 = 4 + PROTOBUF;
const CURRENT_TIME: i32 = 49 + PROTOBUF;
/// The server version the stand-in announces (the lowest ibapi 5.x accepts).
pub const SERVER_VERSION: i32 = 213;

#[derive(Clone, PartialEq, prost::Message)]
struct StartApi {
    #[prost(int32, optional, tag = "1")]
    client_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NextValidId {
    #[prost(int32, optional, tag = "1")]
    order_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ManagedAccounts {
    #[prost(string, optional, tag = "1")]
    accounts_list: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ErrorMessage {
    #[prost(int32, optional, tag = "1")]
    id: Option<i32>,
    #[prost(int64, optional, tag = "2")]
    error_time: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    error_code: Option<i32>,
    #[prost(string, optional, tag = "4")]
    error_msg: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CurrentTime {
    #[prost(int64, optional, tag = "1")]
    current_time: Option<i64>,
}

/// The longest frame the stand-in reads (a client's frames are a few bytes).
const MAX_FRAME: usize = 1 << 20;

/// How the stand-in treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A healthy gateway.
    Normal,
    /// Accepts the TCP connection and never answers the handshake.
    Mute,
    /// Completes the handshake, then never answers a request (a hung gateway).
    Silent,
    /// Accepts and closes at once (counted: lets tests count reconnect attempts).
    Hangup,
}

#[derive(Clone, Debug)]
enum Cue {
    Notice(i32, String),
    Drop,
}

struct Shared {
    mode: Mutex<Mode>,
    /// Client ids of the live sessions: a second one gets 326.
    in_use: Mutex<HashSet<i32>>,
    accepted: AtomicUsize,
    sessions: AtomicUsize,
    heartbeats: AtomicUsize,
    /// Heartbeat requests received, answered or not.
    asked: AtomicUsize,
    /// Seconds added to the server clock (for skew tests).
    clock_offset: AtomicI64,
    cues: broadcast::Sender<Cue>,
}

/// A running stand-in gateway on a loopback port. Dropping it stops it.
pub struct Gateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Gateway {
    /// Starts on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound (tests and benchmarks want to stop there);
    /// [`Gateway::try_start`] says why instead.
    pub async fn start() -> Gateway {
        match Self::try_start().await {
            Ok(g) => g,
            Err(e) => panic!("the gateway stand-in cannot listen on loopback: {e}"),
        }
    }

    /// Starts on a free loopback port, or says why it cannot.
    pub async fn try_start() -> std::io::Result<Gateway> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Normal),
            in_use: Mutex::new(HashSet::new()),
            accepted: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            heartbeats: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
            clock_offset: AtomicI64::new(0),
            cues: broadcast::channel(64).0,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Gateway {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// Its loopback port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How it treats new connections from now on (and heartbeats, for `Silent`).
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Sends a notice (error frame with id -1) to every live session.
    pub fn notice(&self, code: i32, text: &str) {
        let _ = self.shared.cues.send(Cue::Notice(code, text.to_owned()));
    }

    /// Closes every live session's socket (the gateway keeps listening).
    pub fn drop_sessions(&self) {
        let _ = self.shared.cues.send(Cue::Drop);
    }

    /// An outage: stops listening (connections are refused) and closes every session.
    pub fn outage(&self) {
        if let Some(task) = lock(&self.accept).take() {
            task.abort();
        }
        self.drop_sessions();
    }

    /// Back after an outage, on the same port.
    ///
    /// # Panics
    /// When the port was taken meanwhile.
    pub async fn back(&self) {
        let listener = match TcpListener::bind(self.addr).await {
            Ok(l) => l,
            Err(e) => panic!("the gateway stand-in cannot listen on {} again: {e}", self.addr),
        };
        *lock(&self.accept) = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }

    /// Moves the server clock by `seconds`.
    pub fn skew_clock(&self, seconds: i64) {
        self.shared.clock_offset.store(seconds, Ordering::SeqCst);
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Sessions that completed the handshake so far.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// CurrentTime requests received, answered or not.
    pub fn heartbeats_asked(&self) -> usize {
        self.shared.asked.load(Ordering::SeqCst)
    }

    /// CurrentTime requests answered so far.
    pub fn heartbeats(&self) -> usize {
        self.shared.heartbeats.load(Ordering::SeqCst)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.outage();
    }
}

/// A lock, whatever a panicked holder left.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let cues = shared.cues.subscribe();
        tokio::spawn(session(stream, shared.clone(), cues));
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn proto(id: i32, message: &impl Message) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&message.encode_to_vec());
    frame(&body)
}

fn notice(code: i32, text: &str) -> Vec<u8> {
    proto(
        ERROR,
        &ErrorMessage {
            id: Some(-1),
            error_time: Some(chrono::Utc::now().timestamp_millis()),
            error_code: Some(code),
            error_msg: Some(text.to_owned()),
        },
    )
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let len = stream.read_u32().await.ok()? as usize;
    if len > MAX_FRAME {
        return None;
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn session(mut stream: TcpStream, shared: Arc<Shared>, mut cues: broadcast::Receiver<Cue>) {
    let mode = *lock(&shared.mode);
    if mode == Mode::Hangup {
        return;
    }
    let mut api = [0u8; 4];
    if stream.read_exact(&mut api).await.is_err() || &api != b"API\0" {
        return;
    }
    if read_frame(&mut stream).await.is_none() {
        return;
    }
    if mode == Mode::Mute {
        // Hold the socket open until told to drop it or the client goes.
        let mut sink = [0u8; 64];
        loop {
            tokio::select! {
                cue = cues.recv() => if !matches!(cue, Ok(Cue::Notice(..))) { return },
                n = stream.read(&mut sink) => if n.map_or(true, |n| n == 0) { return },
            }
        }
    }
    let now = chrono::Utc::now();
    let hello = format!("{SERVER_VERSION}\0{} UTC\0", now.format("%Y%m%d %H:%M:%S"));
    if stream.write_all(&frame(hello.as_bytes())).await.is_err() {
        return;
    }
    let Some(start) = read_frame(&mut stream).await else {
        return;
    };
    if start
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        != Some(START_API)
    {
        return;
    }
    let client_id = StartApi::decode(&start[4..])
        .ok()
        .and_then(|s| s.client_id)
        .unwrap_or(0);
    if !lock(&shared.in_use).insert(client_id) {
        let _ = stream
            .write_all(&notice(
                326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            ))
            .await;
        return;
    }
    shared.sessions.fetch_add(1, Ordering::SeqCst);
    let mut hello = proto(NEXT_VALID_ID, &NextValidId { order_id: Some(1) });
    hello.extend(proto(
        MANAGED_ACCOUNTS,
        &ManagedAccounts {
            accounts_list: Some("DU123456,".into()),
        },
    ));
    // What a real gateway says right after a client connects.
    hello.extend(notice(2104, "Market data farm connection is OK:usfarm"));
    hello.extend(notice(2106, "HMDS data farm connection is OK:ushmds"));
    hello.extend(notice(2158, "Sec-def data farm connection is OK:secdefnj"));
    if stream.write_all(&hello).await.is_ok() {
        serve(stream, &shared, &mut cues).await;
    }
    lock(&shared.in_use).remove(&client_id);
}

async fn serve(stream: TcpStream, shared: &Shared, cues: &mut broadcast::Receiver<Cue>) {
    let (mut reader, mut writer) = stream.into_split();
    // Frames are read by their own task: a half-read frame is never abandoned.
    let (tx, mut frames) = mpsc::channel(16);
    let read_task = tokio::spawn(async move {
        while let Some(body) = read_frame(&mut reader).await {
            if tx.send(body).await.is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            body = frames.recv() => {
                let Some(body) = body else { break };
                let id = body.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let silent = *lock(&shared.mode) == Mode::Silent;
                if id == Some(CURRENT_TIME) {
                    shared.asked.fetch_add(1, Ordering::SeqCst);
                }
                if id == Some(CURRENT_TIME) && !silent {
                    shared.heartbeats.fetch_add(1, Ordering::SeqCst);
                    let at = chrono::Utc::now().timestamp() + shared.clock_offset.load(Ordering::SeqCst);
                    let reply = proto(CURRENT_TIME, &CurrentTime { current_time: Some(at) });
                    if writer.write_all(&reply).await.is_err() {
                        break;
                    }
                }
            }
            cue = cues.recv() => match cue {
                Ok(Cue::Notice(code, text)) => {
                    if writer.write_all(&notice(code, &text)).await.is_err() {
                        break;
                    }
                }
                Ok(Cue::Drop) | Err(broadcast::error::RecvError::Closed) => break,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            },
        }
    }
    read_task.abort();
}
