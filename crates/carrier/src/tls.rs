//! TLS for the carrier's HTTP client.
//!
//! `reqwest` is built with rustls and no crypto provider of its own (`rustls-no-provider`);
//! this module builds the [`rustls::ClientConfig`] it uses: the `ring` provider, TLS 1.2 and
//! 1.3, and as trust anchors Mozilla's root program compiled into the binary
//! (`webpki-roots`) plus any extra roots the operator names (`--twilio-ca-file`, PEM) —
//! for a private Twilio-compatible service or a TLS-inspecting proxy. Nothing is read
//! from the operating system's certificate store, so the same binary behaves the same on
//! every machine, including one without a CA bundle.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// The extra-roots PEM holds no certificate or one that cannot be parsed.
    #[error("extra CA certificates: {0}")]
    InvalidRoots(String),
    /// rustls refused the protocol configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Parses every `CERTIFICATE` block of a PEM file; at least one is required.
pub fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::InvalidRoots(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsConfigError::InvalidRoots(
            "no CERTIFICATE block in the PEM data".into(),
        ));
    }
    Ok(certs)
}

/// The trust anchors: Mozilla's roots (`webpki-roots`) plus `extra_roots_pem`, if any.
pub fn root_store(extra_roots_pem: Option<&[u8]>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots_pem {
        for cert in parse_pem_certificates(pem)? {
            roots
                .add(cert)
                .map_err(|e| TlsConfigError::InvalidRoots(e.to_string()))?;
        }
    }
    Ok(roots)
}

/// Makes `ring` the process's default rustls provider, for HTTP clients built without a
/// TLS configuration of their own (tests, load generators). Idempotent.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration over the `ring` provider trusting [`root_store`]. No ALPN is
/// offered: the carrier client speaks HTTP/1.1.
pub fn client_config(
    extra_roots_pem: Option<&[u8]>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_root_certificates(root_store(extra_roots_pem)?)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_are_present() {
        let store = root_store(None).unwrap();
        assert!(store.len() > 100, "{} roots", store.len());
        client_config(None).unwrap();
    }

    #[test]
    fn bad_extra_roots_are_refused() {
        assert!(matches!(
            root_store(Some(b"not a pem")),
            Err(TlsConfigError::InvalidRoots(_))
        ));
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(root_store(Some(garbage)).is_err());
    }
}
