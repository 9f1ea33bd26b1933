//! A webhook receiver for the tests, on a real socket: it checks every signature as the docs
//! tell receivers to, refuses the first attempts of each delivery, records what it accepted
//! and any requests that overlapped, and can be stopped (its port then refuses connections)
//! and restarted on the same port.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::post,
};
use contacts_server::contacts::clock::{Clock, ManualClock};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::{net::TcpSocket, task::JoinHandle};

pub const SECRET: &str = "test-webhook-secret-of-32-bytes!";

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests per `Webhook-Id`.
    pub attempts: HashMap<String, usize>,
    /// The changes of accepted (2xx) requests, in the order they were accepted.
    pub accepted: Vec<Value>,
    pub bad_signatures: usize,
    /// Requests that began while another was being answered.
    pub overlaps: usize,
}

struct Shared {
    clock: ManualClock,
    refuse_first: usize,
    in_flight: AtomicUsize,
    seen: Mutex<Seen>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver answering 503 to the first `refuse_first` attempts of each delivery, and
    /// checking signature timestamps against `clock`.
    pub async fn start(clock: ManualClock, refuse_first: usize) -> Self {
        let shared = Arc::new(Shared {
            clock,
            refuse_first,
            in_flight: AtomicUsize::new(0),
            seen: Mutex::default(),
        });
        let mut receiver = Self {
            addr: "127.0.0.1:0".parse().expect("address"),
            shared,
            server: None,
        };
        receiver.restart().await;
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks?token=abc", self.addr)
    }

    /// Serves again, on the same port once it had one.
    pub async fn restart(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("bind");
        let listener = socket.listen(64).expect("listen");
        self.addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Stops listening: connections to the port are refused until [`Self::restart`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Runs `read` on what the receiver saw.
    pub fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.shared.seen.lock().expect("lock"))
    }

    /// Polls (bounded: 30 s) until `done` holds for what the receiver saw.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        for _ in 0..3_000 {
            if self.seen(&done) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "receiver: not {what} within 30 s: {:?}",
            self.seen(|seen| format!("{seen:?}"))
        );
    }

    /// The accepted changes' idempotency keys, in arrival order.
    pub fn keys(&self) -> Vec<String> {
        self.seen(|seen| {
            seen.accepted
                .iter()
                .map(|change| change["idempotencyKey"].as_str().expect("key").to_owned())
                .collect()
        })
    }
}

/// Counts a request in flight for as long as it is answered.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let overlapped = shared.in_flight.fetch_add(1, Ordering::SeqCst) > 0;
    let _in_flight = InFlight(&shared.in_flight);
    // A receiver takes a moment to answer; requests sent concurrently would overlap here.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let status = record(&shared, &headers, &body, overlapped);
    // No keep-alive: once stopped, the port refuses every request, pooled ones included.
    (status, [(header::CONNECTION, "close")])
}

fn record(shared: &Shared, headers: &HeaderMap, body: &[u8], overlapped: bool) -> StatusCode {
    let mut seen = shared.seen.lock().expect("lock");
    seen.overlaps += usize::from(overlapped);
    let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let signature = header("webhook-signature").unwrap_or_default();
    if !verify(signature, body, shared.clock.now().timestamp()) {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = header("webhook-id").unwrap_or_default().to_owned();
    let attempts = seen.attempts.entry(id).or_default();
    *attempts += 1;
    if *attempts <= shared.refuse_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body: Value = serde_json::from_slice(body).expect("JSON body");
    let changes = body["changes"].as_array().expect("changes").clone();
    seen.accepted.extend(changes);
    StatusCode::NO_CONTENT
}

/// The check docs/change-feed.md asks receivers for: `t` within 5 minutes of now, `v1` the
/// HMAC-SHA256 of `"<t>.<body>"`, compared in constant time.
pub fn verify(signature: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}
