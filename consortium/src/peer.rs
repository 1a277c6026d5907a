//! Who is on the other end of a connection. The TLS handshake has already
//! verified the client certificate against the consortium CA (a connection
//! without one never gets here); `PeerAcceptor` then puts that end-entity
//! certificate into every request of the connection as a `PeerCert`
//! extension, and the handlers ask whom it names (`pki::cert_names_bank`,
//! `pki::cert_names_switch`). It also bounds open connections, handshakes included.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::http::Request;
use axum_server::{accept::Accept, accept::DefaultAcceptor, tls_rustls::RustlsAcceptor};
use rustls::pki_types::CertificateDer;
use tokio::{net::TcpStream, sync::OwnedSemaphorePermit, sync::Semaphore};
use tokio_rustls::server::TlsStream;

/// The verified end-entity certificate (DER) the peer presented.
#[derive(Clone, Debug)]
pub struct PeerCert(pub Arc<CertificateDer<'static>>);

#[derive(Clone)]
pub struct PeerAcceptor {
    tls: RustlsAcceptor<DefaultAcceptor>,
    connections: Arc<Semaphore>,
}

impl PeerAcceptor {
    pub fn new(tls: RustlsAcceptor<DefaultAcceptor>, max_connections: usize) -> PeerAcceptor {
        PeerAcceptor { tls, connections: Arc::new(Semaphore::new(max_connections.max(1))) }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for PeerAcceptor {
    type Stream = TlsStream<TcpStream>;
    type Service = WithPeer<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Taken before the handshake, so that handshakes count too.
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            return Box::pin(std::future::ready(Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connection limit reached"))));
        };
        let _ = stream.set_nodelay(true);
        let handshake = self.tls.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let cert = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).cloned();
            // The verifier requires a certificate; this only guards a misconfiguration.
            let Some(cert) = cert else {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "no client certificate"));
            };
            Ok((stream, WithPeer { inner: service, peer: PeerCert(Arc::new(cert.into_owned())), _permit: Arc::new(permit) }))
        })
    }
}

/// The connection's service, adding `PeerCert` to each request. Its clones
/// share the connection's place among `max_connections`.
#[derive(Clone)]
pub struct WithPeer<S> {
    inner: S,
    peer: PeerCert,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl<S, B> tower::Service<Request<B>> for WithPeer<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.peer.clone());
        self.inner.call(request)
    }
}
