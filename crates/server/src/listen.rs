//! Accepting connections, with the limits `axum::serve` lacks (issue 19
//! finding 5: half-open connections exhausted the file descriptors):
//!
//! - a header-read timeout, which also closes a keep-alive connection that
//!   sends nothing more (hyper starts the clock whenever it waits for a
//!   request head);
//! - a cap on open connections: past it the server stops accepting until
//!   one closes, so the kernel's backlog queues newcomers instead of the
//!   process running out of descriptors;
//! - graceful shutdown: on the signal, no new connections; those open
//!   finish their requests, for at most [`ListenLimits::drain`].
//!
//! Every request carries its peer address (`ConnectInfo`), as with
//! `into_make_service_with_connect_info`, for the rate limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ListenLimits {
    /// A request's head must arrive within this, and an idle keep-alive
    /// connection is closed after it.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// How long shutdown waits for open connections (event streams may
    /// never end by themselves).
    pub drain: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: while every slot is taken, newcomers wait in
        // the kernel's backlog.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before
                    // accept: not fatal; back off briefly and go on.
                    eprintln!("warning: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |req: axum::http::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopped.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back means every connection has closed.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.drain, slots.acquire_many(all)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use axum::routing::get;

    use super::*;

    /// A server on a free loopback port, answering `/` with the peer's
    /// address; returns its address and a handle that stops it.
    async fn start(limits: ListenLimits) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            serve(listener, app, limits, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
        });
        (addr, tx, task)
    }

    /// A blocking GET, on a thread: the answer's body.
    fn get_blocking(addr: SocketAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Whether the server closes `s` within `within` (a read sees EOF or a
    /// reset rather than timing out).
    fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
        s.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue, // a 408 or similar before closing
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_headers_are_cut_off_and_the_connection_cap_queues_newcomers() {
        let limits = ListenLimits {
            header_timeout: Duration::from_millis(800),
            max_connections: 2,
            drain: Duration::from_secs(2),
        };
        let (addr, stop, task) = start(limits).await;
        let answer = tokio::task::spawn_blocking(move || get_blocking(addr)).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.1"),
            "{answer}"
        );

        let result = tokio::task::spawn_blocking(move || {
            // Two slowloris connections take both slots: half a header each.
            let mut slow: Vec<std::net::TcpStream> = (0..2)
                .map(|_| {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ").unwrap();
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_millis(100));
            // A third client waits in the backlog until a slot frees: it is
            // answered, but only after the slow ones are cut off.
            let t0 = Instant::now();
            let third = std::thread::spawn(move || get_blocking(addr));
            let cut: Vec<bool> = slow
                .iter_mut()
                .map(|s| closed_within(s, Duration::from_secs(5)))
                .collect();
            let answer = third.join().unwrap();
            (cut, answer, t0.elapsed())
        })
        .await
        .unwrap();
        let (cut, answer, waited) = result;
        assert_eq!(cut, [true, true], "slow headers are cut off");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            waited >= Duration::from_millis(500),
            "{waited:?}: it had to wait for a slot"
        );

        // An idle keep-alive connection is closed too.
        let idle = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            closed_within(&mut s, Duration::from_secs(5))
        })
        .await
        .unwrap();
        assert!(idle, "an idle keep-alive connection is closed");

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops")
            .unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err(), "no longer listening");
    }
}
