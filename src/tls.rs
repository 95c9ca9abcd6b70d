//! TLS for the HTTP client (reqwest) and the WebSocket connector
//! (tokio-tungstenite): rustls with the `ring` crypto provider, and the
//! trust a Node user expects.
//!
//! - **One provider, installed at start.** `ring` is the only rustls
//!   provider in the build (no aws-lc: it needs a C toolchain, and cmake or
//!   nasm on some targets, for every target). [`install_provider`] makes it
//!   the process default; the addon calls it when it loads, and
//!   [`client_config`] calls it too, so no code path can reach rustls
//!   without a provider, whatever builds a client first.
//! - **Trust like Node's.** Mozilla's root CAs, bundled in the binary
//!   (`webpki-roots`: the set Node itself bundles), extended with the PEM
//!   certificates of the file named by `NODE_EXTRA_CA_CERTS`. The file is
//!   read once, on first use; if it cannot be read or holds no valid
//!   certificate it is ignored with Node's own warning on stderr, and the
//!   bundled roots still apply. [`client_config_with_ca`] is Node's `ca`
//!   option: the given certificates replace both.
//!
//! Why bundled roots rather than the platform verifier: see docs/platforms.md.

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};

/// The environment variable Node reads for extra trusted CAs.
pub(crate) const EXTRA_CA_ENV: &str = "NODE_EXTRA_CA_CERTS";

/// The crypto provider every TLS connection of the addon uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Makes `ring` rustls' process-wide default provider. Idempotent and
/// cheap: call it before anything that may build a rustls config.
pub(crate) fn install_provider() {
    if CryptoProvider::get_default().is_none() {
        // Err only if another thread installed one first: that one stays.
        let _ = CryptoProvider::install_default((*provider()).clone());
    }
}

/// The client config for every outgoing HTTPS and WSS connection: bundled
/// roots plus `NODE_EXTRA_CA_CERTS`, built once per process. No ALPN is
/// offered (both users speak HTTP/1.1).
///
/// reqwest: `.tls_backend_preconfigured((*tls::client_config()).clone())`;
/// tokio-tungstenite: `Connector::Rustls(tls::client_config())`.
pub(crate) fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_provider();
            let file = std::env::var_os(EXTRA_CA_ENV).filter(|f| !f.is_empty());
            let (config, warning) = default_config(file.as_deref());
            if let Some(warning) = warning {
                eprintln!("mc-native: {warning}");
            }
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
/// Node's `ca` option: trust exactly the certificates in `pem` (one or more
/// PEM `CERTIFICATE` blocks), neither the bundled roots nor
/// `NODE_EXTRA_CA_CERTS`.
pub(crate) fn client_config_with_ca(pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    install_provider();
    let mut roots = RootCertStore::empty();
    add_pem(&mut roots, pem)?;
    Ok(Arc::new(build(roots)))
}

/// Bundled roots, extended with the certificates in `extra_ca_file` if it
/// names a readable file of PEM certificates. The second value is Node's
/// warning when the file is ignored.
pub(crate) fn default_config(extra_ca_file: Option<&OsStr>) -> (ClientConfig, Option<String>) {
    let mut roots = bundled_roots();
    let warning = extra_ca_file.and_then(|file| {
        let loaded = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                // All or nothing: a bad file adds no certificate.
                let mut extra = RootCertStore::empty();
                add_pem(&mut extra, &pem)?;
                roots.roots.extend(extra.roots);
                Ok(())
            });
        loaded.err().map(|reason| {
            format!(
                "Warning: Ignoring extra certs from `{}`, load failed: {reason}",
                file.to_string_lossy()
            )
        })
    });
    (build(roots), warning)
}

/// Mozilla's root CAs, as compiled into the binary.
pub(crate) fn bundled_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Adds every PEM `CERTIFICATE` block of `pem` to `roots` (text between
/// blocks is ignored, as OpenSSL does). Fails if there is none, or if one
/// is malformed or not a usable trust anchor.
fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), String> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("bad PEM certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err("no PEM certificate found".to_owned());
    }
    Ok(())
}

fn build(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests;
