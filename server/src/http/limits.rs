//! Bounds on what the bank accepts at once (OWASP API4): requests in flight
//! per route class, and open connections per address and in total. Past a
//! bound the answer comes at once — 429 `rate_limited` with `Retry-After`,
//! or a closed connection — instead of a queue that grows until memory or
//! the request timeout runs out.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::Semaphore,
};

use crate::{
    config::ServerLimits,
    error::{ApiError, Code},
};

/// Route classes, each with its own bound, so that a login storm cannot
/// take the money path's or the reads' share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    Login,
    Money,
    Read,
    Admin,
}

impl RouteClass {
    /// `None` for the operations endpoints, which are never shed.
    pub fn of(method: &Method, path: &str) -> Option<RouteClass> {
        const MONEY: [&str; 8] = [
            "/v1/deposits",
            "/v1/withdrawals",
            "/v1/transfers",
            "/v1/transfers/batch",
            "/v1/admin/deposits",
            "/v1/admin/withdrawals",
            "/v1/interbank/payments",
            // It moves money on every due date: a repeated creation must not double that.
            "/v1/standing-orders",
        ];
        match path {
            "/healthz" | "/readyz" | "/metrics" => None,
            "/v1/auth/login" | "/v1/auth/mfa" => Some(RouteClass::Login),
            _ if *method == Method::POST && MONEY.contains(&path) => Some(RouteClass::Money),
            _ if path.starts_with("/v1/admin/") || path.starts_with("/v1/dba/") => Some(RouteClass::Admin),
            _ => Some(RouteClass::Read),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RouteClass::Login => "login",
            RouteClass::Money => "money",
            RouteClass::Read => "read",
            RouteClass::Admin => "admin",
        }
    }
}

/// One semaphore per route class.
pub struct Shedder {
    login: Arc<Semaphore>,
    money: Arc<Semaphore>,
    read: Arc<Semaphore>,
    admin: Arc<Semaphore>,
}

impl Shedder {
    pub fn new(limits: &ServerLimits) -> Shedder {
        let bound = |n: usize| Arc::new(Semaphore::new(n.max(1)));
        Shedder {
            login: bound(limits.login_concurrency),
            money: bound(limits.money_concurrency),
            read: bound(limits.read_concurrency),
            admin: bound(limits.admin_concurrency),
        }
    }

    fn semaphore(&self, class: RouteClass) -> &Arc<Semaphore> {
        match class {
            RouteClass::Login => &self.login,
            RouteClass::Money => &self.money,
            RouteClass::Read => &self.read,
            RouteClass::Admin => &self.admin,
        }
    }
}

/// Admits a request if its class has room; otherwise sheds it at once.
pub async fn shed(State(shedder): State<Arc<Shedder>>, request: Request, next: Next) -> Response {
    let Some(class) = RouteClass::of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    match shedder.semaphore(class).clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            metrics::counter!("flexibank_shed_total", "class" => class.as_str()).increment(1);
            ApiError::new(Code::RateLimited, format!("too many {} requests in flight; retry in a moment", class.as_str()))
                .with_retry_after(1)
                .into_response()
        }
    }
}

/// Counts open connections per address and in total; a connection past
/// either bound is closed before its TLS handshake.
#[derive(Clone)]
pub struct ConnectionGate {
    per_address: usize,
    total: usize,
    idle_timeout: Duration,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

impl ConnectionGate {
    pub fn new(limits: &ServerLimits) -> ConnectionGate {
        ConnectionGate {
            per_address: limits.max_connections_per_address.max(1),
            total: limits.max_connections.max(1),
            idle_timeout: Duration::from_millis(limits.idle_timeout_ms.max(1)),
            open: Arc::new(Mutex::new((0, HashMap::new()))),
        }
    }

    fn admit(&self, address: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().expect("connection gate lock");
        let (total, per_address) = &mut *open;
        let mine = per_address.entry(address).or_insert(0);
        if *total >= self.total || *mine >= self.per_address {
            if *mine == 0 {
                per_address.remove(&address);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        metrics::gauge!("flexibank_connections_open").set(*total as f64);
        Some(Admitted { gate: self.open.clone(), address })
    }
}

/// One admitted connection; dropping it (the connection closed) frees its place.
struct Admitted {
    gate: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
    address: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.lock().expect("connection gate lock");
        let (total, per_address) = &mut *open;
        *total -= 1;
        if let Some(mine) = per_address.get_mut(&self.address) {
            *mine -= 1;
            if *mine == 0 {
                per_address.remove(&self.address);
            }
        }
        metrics::gauge!("flexibank_connections_open").set(*total as f64);
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for ConnectionGate {
    type Stream = GatedStream;
    type Service = S;
    type Future = std::future::Ready<io::Result<(GatedStream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream.peer_addr().ok().and_then(|peer| self.admit(peer.ip()));
        std::future::ready(match admitted {
            Some(admitted) => {
                let _ = stream.set_nodelay(true);
                let idle = Box::pin(tokio::time::sleep(self.idle_timeout));
                Ok((GatedStream { stream, idle, idle_timeout: self.idle_timeout, _admitted: admitted }, service))
            }
            None => {
                metrics::counter!("flexibank_connections_refused_total").increment(1);
                Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connection limit reached"))
            }
        })
    }
}

/// A connection that holds its place at the gate while it lives, and ends
/// once nothing has crossed it for the idle timeout (HTTP/2 included, which
/// has no header read timeout between its streams).
pub struct GatedStream {
    stream: TcpStream,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    _admitted: Admitted,
}

impl GatedStream {
    fn active(&mut self) {
        let deadline = tokio::time::Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    metrics::counter!("flexibank_connections_idle_closed_total").increment(1);
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle connection")))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(RouteClass::of(&Method::POST, "/v1/auth/login"), Some(RouteClass::Login));
        assert_eq!(RouteClass::of(&Method::POST, "/v1/transfers"), Some(RouteClass::Money));
        assert_eq!(RouteClass::of(&Method::POST, "/v1/admin/deposits"), Some(RouteClass::Money));
        assert_eq!(RouteClass::of(&Method::GET, "/v1/admin/accounts"), Some(RouteClass::Admin));
        assert_eq!(RouteClass::of(&Method::GET, "/v1/accounts/x/transactions"), Some(RouteClass::Read));
        assert_eq!(RouteClass::of(&Method::GET, "/readyz"), None);
    }

    #[tokio::test]
    async fn a_silent_connection_ends_after_the_idle_timeout() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let limits = ServerLimits { idle_timeout_ms: 200, ..Default::default() };
        let gate = ConnectionGate::new(&limits);
        let admitted = gate.admit(peer.ip()).unwrap();
        let idle_timeout = Duration::from_millis(limits.idle_timeout_ms);
        let mut stream = GatedStream { stream: server, idle: Box::pin(tokio::time::sleep(idle_timeout)), idle_timeout, _admitted: admitted };
        let started = std::time::Instant::now();
        let mut buf = [0u8; 8];
        let error = stream.read(&mut buf).await.expect_err("nothing was sent");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= idle_timeout);
        drop(client);
    }

    #[test]
    fn the_gate_bounds_each_address_and_the_total() {
        let limits = ServerLimits { max_connections: 3, max_connections_per_address: 2, ..Default::default() };
        let gate = ConnectionGate::new(&limits);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "a third from one address");
        let _third = gate.admit(b).unwrap();
        assert!(gate.admit(c).is_none(), "a fourth in total");
        drop(first);
        assert!(gate.admit(c).is_some(), "a closed connection frees its place");
    }
}

/// A 1000-item batch of the longest items (140-character memos, escaped)
/// is under 2 MiB; every other body stays under `server.max_body_bytes`.
pub const MAX_BATCH_BODY_BYTES: usize = 2 * 1024 * 1024;
/// A body past its limit is still read (and dropped) up to this many bytes,
/// so that an HTTP/1.1 client still sending it reads the 413 instead of a
/// reset connection; past this, the connection is closed.
const MAX_DRAIN_BYTES: usize = 8 * 1024 * 1024;

pub fn body_limit(path: &str, max_body_bytes: usize) -> usize {
    if path == "/v1/transfers/batch" {
        MAX_BATCH_BODY_BYTES.max(max_body_bytes)
    } else {
        max_body_bytes
    }
}

/// Reads the whole body before any handler runs: at most its route's limit,
/// else 413 `payload_too_large` once the rest has been drained.
pub async fn buffer_body(State(max_body_bytes): State<usize>, request: Request, next: Next) -> Response {
    use futures::StreamExt;
    let limit = body_limit(request.uri().path(), max_body_bytes);
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    let mut buffered = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            return ApiError::validation("the request body could not be read").into_response();
        };
        seen += chunk.len();
        if seen <= limit {
            buffered.extend_from_slice(&chunk);
        } else if seen > MAX_DRAIN_BYTES {
            break;
        }
    }
    if seen > limit {
        return ApiError::new(Code::PayloadTooLarge, format!("request body is larger than {limit} bytes")).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(buffered))).await
}
