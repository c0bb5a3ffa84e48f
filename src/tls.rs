//! TLS material: loading PEM files, the server config (several certificates chosen by SNI, ALPN
//! h2 + http/1.1) and the client configs used to reach TLS backends.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// A certificate or key file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why it could not be used.
        reason: String,
    },
    /// rustls rejected the material.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Loads a PEM certificate chain and its private key.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate found"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key_der, &provider)
        .map_err(|e| file_error(key, format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

/// Loads a PEM bundle of trusted roots.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
        roots
            .add(cert.map_err(|e| file_error(path, e))?)
            .map_err(|e| file_error(path, e))?;
    }
    if roots.is_empty() {
        return Err(file_error(path, "no certificate found"));
    }
    Ok(roots)
}

/// Picks a certificate by SNI: the first whose names cover the requested name, else the first.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|name| {
            let name = ServerName::try_from(name).ok()?;
            self.certs.iter().find(|ck| {
                let Some(leaf) = ck.cert.first() else {
                    return false;
                };
                webpki::EndEntityCert::try_from(leaf)
                    .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
            })
        });
        by_name.or_else(|| self.certs.first()).cloned()
    }
}

/// Server config for the HTTPS listener: ALPN h2 then http/1.1, certificates by SNI.
pub fn server_config(certs: Vec<Arc<CertifiedKey>>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Client configs for TLS backends, one per upstream protocol (they differ in ALPN).
#[derive(Debug, Clone)]
pub struct BackendTls {
    /// ALPN `http/1.1`.
    pub http1: Arc<ClientConfig>,
    /// ALPN `h2`.
    pub http2: Arc<ClientConfig>,
}

/// Client TLS settings by what they verify.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// For backends.
    pub backends: BackendTls,
    /// For route services.
    pub route_services: BackendTls,
}

impl BackendTls {
    /// Trusts `roots`, or the system's roots when `None`.
    pub fn new(roots: Option<RootCertStore>) -> BackendTls {
        let roots = roots.unwrap_or_else(system_roots);
        let build = |alpn: &[u8]| {
            let mut config = ClientConfig::builder()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Arc::new(config)
        };
        BackendTls {
            http1: build(b"http/1.1"),
            http2: build(b"h2"),
        }
    }
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "could not load a system root certificate");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}
