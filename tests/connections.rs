//! Connections without credentials cannot be held open for free: a client gets a short time
//! to send each request head, and the number of open connections is capped.

mod common;

use std::time::{Duration, Instant};

use axum::{Router, extract::Request, routing::post};
use common::{TestApp, websocket};
use contacts_server::http::serve::{ServeOptions, serve};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, oneshot},
};
use tokio_tungstenite::tungstenite::Message;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);

/// Far above the header timeout: the bound only keeps a broken build from hanging CI.
const GENEROUS: Duration = Duration::from_secs(10);

async fn app(max_connections: usize) -> TestApp {
    let options = ServeOptions {
        header_read_timeout: HEADER_TIMEOUT,
        max_connections,
        ..ServeOptions::default()
    };
    TestApp::start_serving(options, |state| state).await
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connect")
}

/// Reads until the server closes `stream`; what it sent and how long after the call it
/// closed, or `None` when it is still open after [`GENEROUS`].
async fn closed_by_server(stream: &mut TcpStream) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0; 4096];
        // A reset counts as closed too.
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            received.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(GENEROUS, read).await.ok()?;
    Some((
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    ))
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let app = app(100).await;
    let mut silent = connect(&app).await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
        .await
        .expect("write");

    let (silent, half) = tokio::join!(closed_by_server(&mut silent), closed_by_server(&mut half));
    for (name, closed) in [("silent", silent), ("half-sent", half)] {
        let (_, after) = closed.unwrap_or_else(|| panic!("{name} connection still open"));
        // Closed by the timeout, not refused at once.
        assert!(after >= HEADER_TIMEOUT / 2, "{name} closed after {after:?}");
    }
    // Whole requests are still served.
    let data = app.data("{ contactStats { total } }", json!({})).await;
    assert_eq!(data["contactStats"]["total"], 0);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = app(100).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (received, _) = closed_by_server(&mut stream)
        .await
        .expect("kept-alive connection still open");
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.ends_with("ok\n"), "{received}");
}

#[tokio::test]
async fn a_websocket_outlives_the_header_timeout() {
    let app = app(100).await;
    let mut socket = websocket(&app, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init" }).to_string();
    socket.send(Message::text(init)).await.expect("init");
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");

    // The server closing a silent connection shows the header timeout has passed.
    let mut silent = connect(&app).await;
    assert!(closed_by_server(&mut silent).await.is_some());

    let ping = json!({ "type": "ping" }).to_string();
    socket.send(Message::text(ping)).await.expect("ping");
    assert_eq!(next_json(&mut socket).await["type"], "pong");
}

async fn next_json(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let message = tokio::time::timeout(GENEROUS, socket.next())
            .await
            .expect("no message within 10 s")
            .expect("socket open")
            .expect("message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON message");
        }
    }
}

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn beyond_the_connection_cap_new_connections_wait_for_a_place() {
    let app = app(1).await;
    let mut holder = connect(&app).await;
    let mut waiting = connect(&app).await;
    waiting.write_all(REQUEST).await.expect("write");

    // Without the cap it would be answered at once; with it, only once the holder's place is
    // freed by the header timeout.
    let (response, after) = closed_by_server(&mut waiting).await.expect("answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(after >= HEADER_TIMEOUT / 2, "answered after {after:?}");
    assert!(closed_by_server(&mut holder).await.is_some());
}

#[tokio::test]
async fn a_websocket_holds_its_place_under_the_cap() {
    let app = app(1).await;
    let socket = websocket(&app, "graphql-transport-ws").await;
    let mut waiting = connect(&app).await;
    waiting.write_all(REQUEST).await.expect("write");
    let mut buffer = [0; 64];
    let early = tokio::time::timeout(HEADER_TIMEOUT, waiting.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "answered while the WebSocket held the only place"
    );

    drop(socket);
    let (response, _) = closed_by_server(&mut waiting).await.expect("answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let started = std::sync::Arc::new(Notify::new());
    let handler_started = started.clone();
    let echo = move |request: Request| async move {
        handler_started.notify_one();
        axum::body::to_bytes(request.into_body(), 1024)
            .await
            .unwrap_or_default()
    };
    let app = Router::new().route("/echo", post(echo));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async {
        let _ = stopped.await;
    };
    let server = tokio::spawn(serve(listener, app, ServeOptions::default(), signal));

    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello";
    stream.write_all(head.as_bytes()).await.expect("write");
    started.notified().await;
    stop.send(()).expect("server running");
    // Refused once the listener is gone, which happens as connections are told to finish.
    let refused = async {
        while TcpStream::connect(address).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(GENEROUS, refused)
        .await
        .expect("still accepting after shutdown");
    assert!(!server.is_finished(), "returned with a request in flight");

    stream.write_all(b" world").await.expect("write");
    let (response, _) = closed_by_server(&mut stream).await.expect("closed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello world"), "{response}");
    tokio::time::timeout(GENEROUS, server)
        .await
        .expect("serve returned")
        .expect("serve task");
}

/// Sends its chunks for as long as it is polled; tells `dropped` when the server lets go of it.
struct Endless {
    chunk: axum::body::Bytes,
    dropped: Option<oneshot::Sender<()>>,
}

impl Drop for Endless {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}

impl futures_util::Stream for Endless {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(Some(Ok(self.chunk.clone())))
    }
}

/// A client that asks for an answer and never reads it: the server gives up on the write
/// after the write timeout and lets go of the answer, where it used to hold it for as long as
/// the client kept the connection open (an outside review: 40 such requests, 1.17 GB).
#[tokio::test]
async fn an_answer_the_client_never_reads_is_dropped_after_the_write_timeout() {
    let (dropped_tx, dropped) = oneshot::channel::<()>();
    let dropped_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let answer = move || {
        let dropped = dropped_tx.lock().ok().and_then(|mut once| once.take());
        let body = Endless {
            chunk: axum::body::Bytes::from(vec![b'x'; 1 << 20]),
            dropped,
        };
        async move { axum::body::Body::from_stream(body) }
    };
    let app = Router::new().route("/big", axum::routing::get(answer));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let options = ServeOptions {
        write_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    tokio::spawn(serve(listener, app, options, std::future::pending()));

    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    // Never read: the socket buffers fill and the server's write waits.
    tokio::time::timeout(GENEROUS, dropped)
        .await
        .expect("the server still holds the unread answer")
        .expect("the answer was made");
    // The connection is gone too: reading drains what the kernel held, then ends.
    assert!(closed_by_server(&mut stream).await.is_some());
}
