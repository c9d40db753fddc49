//! Client TLS from configuration: which certificate authorities to trust (the system's plus
//! every certificate in `certificates_directory`), whether and against which name the
//! server's certificate is verified, the allowed TLS versions and an optional client
//! certificate.
//!
//! The listener's TLS (`server.tls`) is built here too: certificate and key files, ALPN
//! for HTTP/2 and HTTP/1.1, and client certificates verified against
//! `server.tls.client_certificates` when that list is set.
//!
//! It exists so that every client that speaks TLS (the databases today) reads the same
//! Authelia keys the same way with rustls and ring, so no OpenSSL or other C TLS library
//! is linked. Each error names the configuration key it comes from.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::config::schema::{ServerTls, Tls};

/// File name extensions read from `certificates_directory`.
const CERTIFICATE_EXTENSIONS: &[&str] = &["crt", "pem", "cer"];

/// The certificate authorities a client trusts: the system's (as rustls-native-certs finds
/// them, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) and those in `certificates_directory`.
pub fn trust_anchors(certificates_directory: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut anchors = rustls_native_certs::load_native_certs().certs;
    if let Some(dir) = certificates_directory {
        anchors.extend(directory_certificates(dir)?);
    }
    Ok(anchors)
}

/// Every PEM certificate in the `.crt`, `.pem` and `.cer` files of `dir`, in file name order.
/// A file there with no certificate in it is an error: it is most likely a mistake.
pub fn directory_certificates(dir: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let context = |e: std::io::Error| format!("certificates_directory: cannot read '{}': {e}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(context)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| CERTIFICATE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    let mut certificates = Vec::new();
    for file in files {
        let found = CertificateDer::pem_file_iter(&file)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("certificates_directory: cannot read '{}': {e}", file.display()))?;
        if found.is_empty() {
            return Err(format!("certificates_directory: '{}' holds no PEM certificate", file.display()));
        }
        certificates.extend(found);
    }
    Ok(certificates)
}

/// The certificate chain and private key of `tls`, when a client certificate is configured.
pub fn client_identity(
    key: &str,
    tls: &Tls,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    match (tls.certificate_chain.trim().is_empty(), tls.private_key.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err(format!("{key}.private_key: required with {key}.certificate_chain")),
        (true, false) => Err(format!("{key}.certificate_chain: required with {key}.private_key")),
        (false, false) => {
            let chain = CertificateDer::pem_slice_iter(tls.certificate_chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{key}.certificate_chain: not a PEM certificate chain: {e}"))?;
            if chain.is_empty() {
                return Err(format!("{key}.certificate_chain: holds no PEM certificate"));
            }
            let private_key = PrivateKeyDer::from_pem_slice(tls.private_key.expose().as_bytes())
                .map_err(|e| format!("{key}.private_key: not a PEM private key: {e}"))?;
            Ok(Some((chain, private_key)))
        }
    }
}

/// The RSA key of `key` as PKCS#1 DER (what mysql_async takes), whether it came as PKCS#1
/// ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"); `None` for other kinds of key.
pub fn rsa_pkcs1_der(key: &PrivateKeyDer<'_>) -> Option<Vec<u8>> {
    /// rsaEncryption (RFC 8017).
    const RSA: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    match key {
        PrivateKeyDer::Pkcs1(rsa) => Some(rsa.secret_pkcs1_der().to_vec()),
        PrivateKeyDer::Pkcs8(info) => {
            let info = pkcs8::PrivateKeyInfo::try_from(info.secret_pkcs8_der()).ok()?;
            (info.algorithm.oid == RSA).then(|| info.private_key.to_vec())
        }
        _ => None,
    }
}

/// The TLS versions `tls` allows (both when neither bound is set).
pub fn protocol_versions(key: &str, tls: &Tls) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |name: &str, which: &str| match name {
        "" => Ok(None),
        "TLS1.2" => Ok(Some(0)),
        "TLS1.3" => Ok(Some(1)),
        other => Err(format!("{key}.{which}: '{other}' is not supported; use TLS1.2 or TLS1.3")),
    };
    let min = rank(&tls.minimum_version, "minimum_version")?.unwrap_or(0);
    let max = rank(&tls.maximum_version, "maximum_version")?.unwrap_or(1);
    if min > max {
        return Err(format!("{key}.minimum_version: must not be above {key}.maximum_version"));
    }
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    Ok(all[min..=max].to_vec())
}

/// A rustls client configuration for `tls` (the configuration key `key`), trusting
/// `anchors` unless `skip_verify` is set.
pub fn client_config(key: &str, tls: &Tls, anchors: &[CertificateDer<'static>]) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocol_versions(key, tls)?)
        .map_err(|e| format!("{key}: {e}"))?;
    let builder = if tls.skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Verifier { provider, verify_as: None }))
    } else {
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(anchors.iter().cloned());
        if unusable > 0 {
            tracing::debug!(unusable, "{key}: some trusted certificates cannot be used as roots and are ignored");
        }
        if roots.is_empty() {
            return Err(format!(
                "{key}: no trusted certificate authority: the system has none and certificates_directory adds none"
            ));
        }
        builder.with_root_certificates(roots)
    };
    match client_identity(key, tls)? {
        Some((chain, private_key)) => builder
            .with_client_auth_cert(chain, private_key)
            .map_err(|e| format!("{key}: the client certificate cannot be used: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The listener's rustls configuration from `server.tls`: ALPN offers `h2` then
/// `http/1.1`; with `client_certificates`, a client without a certificate signed by one of
/// them is refused during the handshake. Errors name the key at fault.
pub fn server_config(tls: &ServerTls) -> Result<ServerConfig, String> {
    if tls.certificate.is_empty() {
        return Err("server.tls.certificate: required with server.tls.key".into());
    }
    if tls.key.is_empty() {
        return Err("server.tls.key: required with server.tls.certificate".into());
    }
    let chain = CertificateDer::pem_file_iter(&tls.certificate)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("server.tls.certificate: cannot read '{}': {e}", tls.certificate))?;
    if chain.is_empty() {
        return Err(format!("server.tls.certificate: '{}' holds no PEM certificate", tls.certificate));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("server.tls.key: cannot read a PEM private key from '{}': {e}", tls.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("server.tls: {e}"))?;
    let builder = if tls.client_certificates.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for (i, path) in tls.client_certificates.iter().enumerate() {
            let key = format!("server.tls.client_certificates[{i}]");
            let found = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{key}: cannot read '{path}': {e}"))?;
            if found.is_empty() {
                return Err(format!("{key}: '{path}' holds no PEM certificate"));
            }
            for certificate in found {
                roots.add(certificate).map_err(|e| format!("{key}: '{path}' cannot be a trust anchor: {e}"))?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("server.tls.client_certificates: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("server.tls.key: does not match the certificate or cannot be used: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Like [`client_config`], but when `tls.server_name` is set the server's certificate is
/// verified for that name whatever name the client connects to (for clients, such as the
/// LDAP one, that verify against the address's host).
pub fn client_config_named(key: &str, tls: &Tls, anchors: &[CertificateDer<'static>]) -> Result<ClientConfig, String> {
    let mut config = client_config(key, tls, anchors)?;
    if tls.skip_verify || tls.server_name.trim().is_empty() {
        return Ok(config);
    }
    let name = ServerName::try_from(tls.server_name.trim().to_string())
        .map_err(|e| format!("{key}.server_name: '{}' is not a host name or address: {e}", tls.server_name))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(anchors.iter().cloned());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("{key}: {e}"))?;
    config.dangerous().set_certificate_verifier(Arc::new(Verifier { provider, verify_as: Some((inner, name)) }));
    Ok(config)
}

/// A verifier of our own: `skip_verify` (no `verify_as`: any certificate is accepted, but
/// the handshake signatures are still checked, so the peer holds the key of the
/// certificate it sent), or verification for a configured name instead of the one
/// connected to.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    verify_as: Option<(Arc<rustls::client::WebPkiServerVerifier>, ServerName<'static>)>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.verify_as {
            Some((inner, name)) => inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::Secret;

    #[test]
    fn versions_follow_the_bounds() {
        let tls =
            |min: &str, max: &str| Tls { minimum_version: min.into(), maximum_version: max.into(), ..Tls::default() };
        assert_eq!(protocol_versions("k", &tls("", "")).unwrap().len(), 2);
        assert_eq!(protocol_versions("k", &tls("TLS1.3", "")).unwrap(), [&rustls::version::TLS13]);
        assert_eq!(protocol_versions("k", &tls("", "TLS1.2")).unwrap(), [&rustls::version::TLS12]);
        let err = protocol_versions("k", &tls("TLS1.3", "TLS1.2")).unwrap_err();
        assert!(err.starts_with("k.minimum_version"), "{err}");
        assert!(protocol_versions("k", &tls("TLS1.0", "")).unwrap_err().contains("TLS1.0"));
    }

    #[test]
    fn client_identity_needs_both_halves() {
        let chain_only = Tls { certificate_chain: "x".into(), ..Tls::default() };
        assert!(client_identity("k", &chain_only).unwrap_err().starts_with("k.private_key"));
        let key_only = Tls { private_key: Secret::new("x"), ..Tls::default() };
        assert!(client_identity("k", &key_only).unwrap_err().starts_with("k.certificate_chain"));
        let garbage = Tls { certificate_chain: "x".into(), private_key: Secret::new("y"), ..Tls::default() };
        assert!(client_identity("k", &garbage).unwrap_err().starts_with("k.certificate_chain"));
        assert!(client_identity("k", &Tls::default()).unwrap().is_none());
    }

    #[test]
    fn a_directory_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored: not a certificate extension").unwrap();
        assert!(directory_certificates(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("broken.pem"), "not a certificate").unwrap();
        let err = directory_certificates(dir.path()).unwrap_err();
        assert!(err.contains("broken.pem") && err.contains("no PEM certificate"), "{err}");
        let missing = directory_certificates(&dir.path().join("missing")).unwrap_err();
        assert!(missing.starts_with("certificates_directory: cannot read"), "{missing}");
    }
}
