//! TLS for the connections (feature `tls`): rustls, verifying the server's certificate and name.
//!
//! TLS is used when the connection string asks for it with `sslmode=require`; the server's
//! certificate is then always verified (like libpq's `verify-full`) against the Mozilla root
//! certificates plus the PEM file named by `PGSSLROOTCERT` (libpq's variable), which is where a
//! cluster's private CA goes. `sslmode=prefer` (the default) and `disable` connect in plain
//! text: a "prefer" that silently accepted any certificate would protect nothing, and one that
//! verified would break every existing plain-text deployment the day the feature is turned on.
//!
//! The glue to tokio-postgres is written here (a few trait impls over `tokio-rustls`) rather
//! than taken from `tokio-postgres-rustls`: the workspace already builds rustls, tokio-rustls and
//! webpki-roots for the GitHub adapter's HTTPS, so the feature adds no crate to the build.
//! Channel binding is not offered (SCRAM still authenticates; the certificate check is what
//! stops a man in the middle).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::{Error, Result};

/// The environment variable naming extra trusted root certificates (PEM), as libpq reads it.
pub const ROOT_CERT_ENV: &str = "PGSSLROOTCERT";

/// Makes verified rustls connections for tokio-postgres.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeRustls").finish_non_exhaustive()
    }
}

impl MakeRustls {
    /// Trusts the Mozilla roots and the certificates in the file `PGSSLROOTCERT` names, if set.
    ///
    /// Errors: [`Error::Tls`] when that file cannot be read or holds no usable certificate.
    pub fn from_env() -> Result<Self> {
        let extra = std::env::var_os(ROOT_CERT_ENV).filter(|v| !v.is_empty());
        Self::with_root_file(extra.as_deref().map(std::path::Path::new))
    }

    /// Trusts the Mozilla roots and the certificates in `root_file` (PEM), if given.
    pub fn with_root_file(root_file: Option<&std::path::Path>) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = root_file {
            let bad = |reason: String| Error::Tls {
                reason: format!("{ROOT_CERT_ENV} file {}: {reason}", path.display()),
            };
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(bad("holds no PEM certificate".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustls {
            config: Arc::new(config),
        })
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(
        &mut self,
        domain: &str,
    ) -> std::result::Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

/// One TLS handshake to a named server.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { connector.connect(self.name, stream).await.map(RustlsStream) })
    }
}

/// A TLS-wrapped connection to the server.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
