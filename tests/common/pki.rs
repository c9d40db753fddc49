//! Certificate authorities made at test time (rcgen), with server and client certificates
//! they sign, for TLS to the database servers the tests start.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        self.issue(params)
    }

    /// A client certificate whose common name is `user` (what PostgreSQL's `cert` checks).
    pub fn client(&self, user: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        self.issue(params)
    }

    /// A client certificate for `user` with an RSA key (PKCS#8), which ring cannot generate:
    /// the openssl command makes it.
    pub fn rsa_client(&self, user: &str) -> Issued {
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            .output()
            .expect("openssl (integration/install-deps installs it)");
        assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
        let key = KeyPair::from_pem(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        self.issue_with(params, key)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        self.issue_with(params, KeyPair::generate().unwrap())
    }

    fn issue_with(&self, params: CertificateParams, key: KeyPair) -> Issued {
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}
