//! Serving the app on a socket: HTTP/1.1 connections with a deadline for every request head
//! and for every write the client leaves unread, a cap on open connections, the peer address
//! for handlers, and graceful shutdown.
//!
//! `axum::serve` offers none of the limits, so this is its accept loop (as in axum's
//! `serve-with-hyper` example) with hyper's own settings. HTTP/1.1 only, as `axum::serve` was
//! with axum's default features: hyper-util's HTTP/1-or-2 sniffing reads the first bytes with
//! no deadline at all, so a client that connects and sends nothing would never be dropped.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};
use tokio_io_timeout::TimeoutStream;

/// Connection limits; see SECURITY.md.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a client has to send a whole request head: from connecting, and again from the
    /// end of each response while the connection is kept alive. Then the server closes it.
    pub header_read_timeout: Duration,
    /// Connections open at once, WebSockets included. Beyond it the server stops accepting:
    /// new connections wait in the kernel's listen backlog until one closes.
    pub max_connections: usize,
    /// How long a write may wait for the client to read (a response, a WebSocket message)
    /// before the connection is closed. Without it a client that never reads held its
    /// answer in the server's memory for as long as it kept the connection open.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight, and returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    // `stop` tells connections to finish; each holds a `closed` receiver until it ends.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &permits) => accepted,
            () = &mut shutdown => break,
        };
        if let Some((stream, peer, permit)) = accepted {
            let mut stream = TimeoutStream::new(stream);
            stream.set_write_timeout(Some(options.write_timeout));
            let connection = Connection {
                io: Counted {
                    stream: Box::pin(stream),
                    _permit: permit,
                },
                peer,
                stop: stop_rx.clone(),
                closed: closed_rx.clone(),
            };
            tokio::spawn(connection.serve(builder.clone(), app.clone()));
        }
    }
    drop(listener);
    stop_tx.send_replace(());
    drop(closed_rx);
    closed_tx.closed().await;
}

/// The next connection, once fewer than the cap are open; `None` after a failed accept.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so this only waits.
    let permit = Arc::clone(permits).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            // Responses are written whole; waiting to coalesce them only adds latency.
            let _ = stream.set_nodelay(true);
            Some((stream, peer, permit))
        }
        Err(err) => {
            accept_failed(err).await;
            None
        }
    }
}

/// A client that gave up before being accepted is routine; anything else (out of file
/// descriptors) is logged and retried after a pause rather than in a busy loop.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection and what it needs to serve and end.
struct Connection {
    io: Counted,
    peer: SocketAddr,
    stop: watch::Receiver<()>,
    closed: watch::Receiver<()>,
}

impl Connection {
    async fn serve(mut self, builder: http1::Builder, app: Router) {
        let peer = self.peer;
        // hyper-util's bridge calls a fresh clone of the router per request, as
        // `tower::ServiceExt::oneshot` did, without depending on tower.
        let app = TowerToHyperService::new(app);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            hyper::service::Service::call(&app, request)
        });
        let connection = builder
            .serve_connection(TokioIo::new(self.io), service)
            .with_upgrades();
        let mut connection = pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            // Sent once, after every connection has its receiver; an error (the server gone)
            // means the same.
            _ = self.stop.changed() => {
                // Answers the request in flight, then closes; idle connections close now.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(peer = %peer, error = %err, "connection closed");
        }
        drop(self.closed);
    }
}

/// A connection's socket holding its place under the cap. It moves into a WebSocket on
/// upgrade, so the place is released when the socket closes, not when HTTP ends. A write
/// pending past the write timeout fails with `TimedOut`, which closes the connection
/// (HTTP and WebSocket alike) and frees what was waiting to be sent.
struct Counted {
    stream: Pin<Box<TimeoutStream<TcpStream>>>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().stream.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.as_mut().poll_shutdown(cx)
    }
}
