//! The trust rules of `tls`, checked by real handshakes: in memory against
//! a rustls server, and over loopback through reqwest and tokio-tungstenite
//! configured exactly as the addon's clients are to use them.
//!
//! The certificates (fixtures/, made by fixtures/gen.sh): a private CA and
//! a server certificate for localhost, 127.0.0.1 and `::1` that it signs.

use super::*;
use futures_util::StreamExt;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConnection, ServerConfig, ServerConnection};
use std::io::Write;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CA: &[u8] = include_bytes!("fixtures/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("fixtures/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("fixtures/server.key");

fn server_config() -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A full handshake in memory; the client's error if it refuses the server.
fn handshake(client: Arc<ClientConfig>, name: &str) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client, name)?;
    let mut server = ServerConnection::new(server_config())?;
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.clear();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        let server_state = server.process_new_packets().map(|_| ());
        buf.clear();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets()?;
        server_state?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn temp_file(contents: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents).unwrap();
    file
}

#[allow(clippy::needless_pass_by_value)] // a test helper, called with temporaries
fn unknown_issuer(result: Result<(), rustls::Error>) -> bool {
    matches!(
        result,
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    )
}

#[test]
fn the_provider_is_ring_and_installing_it_twice_is_harmless() {
    install_provider();
    install_provider();
    let installed = CryptoProvider::get_default().expect("a default provider");
    let ring = rustls::crypto::ring::default_provider();
    assert_eq!(
        installed.cipher_suites.len(),
        ring.cipher_suites.len(),
        "the installed provider is ring's"
    );
    // A config built the plain way (as a library that builds its own would) works.
    let plain = ClientConfig::builder()
        .with_root_certificates(bundled_roots())
        .with_no_client_auth();
    assert!(unknown_issuer(handshake(Arc::new(plain), "localhost")));
}

#[test]
fn bundled_roots_are_mozillas_and_do_not_trust_a_private_ca() {
    assert!(bundled_roots().len() > 100);
    let (config, warning) = default_config(None);
    assert_eq!(warning, None);
    assert!(unknown_issuer(handshake(Arc::new(config), "localhost")));
}

#[test]
fn an_extra_ca_file_is_trusted_on_top_of_the_bundled_roots() {
    // Text between PEM blocks is allowed, as in the files OpenSSL writes.
    let mut contents = b"# extra CAs\n".to_vec();
    contents.extend_from_slice(CA);
    let file = temp_file(&contents);
    let (config, warning) = default_config(Some(file.path().as_os_str()));
    assert_eq!(warning, None);
    let config = Arc::new(config);
    for name in ["localhost", "127.0.0.1", "::1"] {
        handshake(config.clone(), name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The certificate's names still matter.
    assert!(matches!(
        handshake(config, "example.com"),
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. }
        ))
    ));
}

#[test]
fn a_bad_extra_ca_file_is_ignored_with_nodes_warning() {
    let missing = std::path::Path::new("/nonexistent/mc-native-ca.pem");
    let empty = temp_file(b"no certificates here\n");
    let broken = temp_file(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    let mut half = CA.to_vec();
    half.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nMIIB\n");
    let half = temp_file(&half);
    for (file, reason) in [
        (missing, "No such file or directory"),
        (empty.path(), "no PEM certificate found"),
        (broken.path(), "bad PEM certificate"),
        (half.path(), "bad PEM certificate"),
    ] {
        let (config, warning) = default_config(Some(file.as_os_str()));
        let warning = warning.expect("a warning");
        let expected = format!(
            "Warning: Ignoring extra certs from `{}`, load failed: ",
            file.display()
        );
        assert!(warning.starts_with(&expected), "{warning}");
        assert!(warning.contains(reason), "{warning}");
        // Nothing of the file is trusted, the bundled roots still are.
        assert!(unknown_issuer(handshake(Arc::new(config), "localhost")));
    }
}

#[test]
fn the_ca_option_replaces_the_bundled_roots() {
    let config = client_config_with_ca(CA).unwrap();
    handshake(config.clone(), "localhost").unwrap();
    assert_eq!(
        client_config_with_ca(b"nothing").unwrap_err(),
        "no PEM certificate found"
    );
    // A server certificate is no CA: rustls takes it as a trust anchor, but it
    // then anchors only itself — and the CA-signed chain above is not trusted.
    let self_only = client_config_with_ca(SERVER_CERT).unwrap();
    assert!(handshake(self_only, "localhost").is_err());
}

#[test]
fn the_process_config_is_built_once_and_offers_no_alpn() {
    let a = client_config();
    let b = client_config();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(a.alpn_protocols.is_empty());
    assert!(CryptoProvider::get_default().is_some());
}

/// One TLS server on loopback; `serve` handles each accepted TLS stream.
async fn tls_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            // A refused handshake is the client's business, not the server's.
            if let Ok(tls) = acceptor.accept(tcp).await {
                tokio::spawn(serve(tls));
            }
        }
    });
    addr
}

#[tokio::test]
async fn reqwest_with_the_preconfigured_client_config_speaks_https() {
    let addr = tls_server(|mut tls| async move {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = b"{\"ok\":true}";
        let head = format!(
            "HTTP/1.1 202 Accepted\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        tls.shutdown().await.ok();
    })
    .await;
    let client = |config: Arc<ClientConfig>| {
        reqwest::Client::builder()
            .tls_backend_preconfigured((*config).clone())
            .build()
            .unwrap()
    };
    let url = format!("https://localhost:{}/api/missions", addr.port());

    let trusted = client(client_config_with_ca(CA).unwrap());
    let response = trusted.post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "{\"ok\":true}");

    let untrusted = client(Arc::new(default_config(None).0));
    let err = untrusted.post(&url).send().await.unwrap_err();
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(std::string::ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

#[tokio::test]
async fn tungstenite_with_the_rustls_connector_speaks_wss() {
    let addr = tls_server(|tls| async move {
        if let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await {
            use futures_util::SinkExt;
            let hello = tokio_tungstenite::tungstenite::Message::text("{\"event\":\"hello\"}");
            ws.send(hello).await.ok();
            ws.close(None).await.ok();
        }
    })
    .await;
    let url = format!("wss://127.0.0.1:{}/ws/executors/ex-1", addr.port());
    let connect = |config: Arc<ClientConfig>| {
        tokio_tungstenite::connect_async_tls_with_config(
            url.clone(),
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(config)),
        )
    };

    let (mut ws, _) = connect(client_config_with_ca(CA).unwrap()).await.unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(first.into_text().unwrap().as_str(), "{\"event\":\"hello\"}");

    let err = connect(Arc::new(default_config(None).0)).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
