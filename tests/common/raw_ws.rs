//! A raw WebSocket client for the attack and security tests: one socket per protocol, one
//! protocol message at a time, close frames and dropped connections as values.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use super::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw socket speaking `protocol`.
pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Opens a connection on `protocol` with `payload` in `connection_init`; the reply.
pub async fn init(app: &TestApp, protocol: &str, payload: Value) -> (Socket, Value) {
    let mut socket = connect(app, protocol).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let reply = receive(&mut socket).await;
    (socket, reply)
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message (pings skipped), a close frame as `{"closed": code}`, or
/// `{"ended": true}` when the server dropped the connection. The bound only keeps a broken
/// build from hanging.
pub async fn receive(socket: &mut Socket) -> Value {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s");
        return match next {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if matches!(message["type"].as_str(), Some("ping" | "ka")) {
                    continue;
                }
                message
            }
            Some(Ok(Message::Close(frame))) => {
                json!({ "closed": frame.map_or(0, |f| u16::from(f.code)) })
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => json!({ "ended": true }),
        };
    }
}

/// The message type that starts an operation: `start` in `graphql-ws`, `subscribe` in
/// `graphql-transport-ws`.
pub fn start_type(protocol: &str) -> &'static str {
    if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    }
}
