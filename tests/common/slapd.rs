//! A real OpenLDAP server (Debian's `slapd`) in a temporary directory, on free loopback
//! ports: plain LDAP with StartTLS, and LDAPS, with a certificate from a test CA. The test
//! tree has people, groups (groupOfNames, with memberOf kept by the memberof overlay) and a
//! service account that may read everything and write passwords; anonymous clients may
//! read nothing but the root DSE. Like some directories, it accepts unauthenticated binds
//! (a DN with an empty password), which succeed as anonymous.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::pki::TestCa;

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const BASE_DN: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PASSWORD: &str = "admin-secret";
pub const SERVICE_DN: &str = "cn=portcullis,dc=example,dc=com";
pub const SERVICE_PASSWORD: &str = "service-secret";
/// The only name in the server's certificate.
pub const TLS_NAME: &str = "ldap.test";

const TREE: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: cn=portcullis,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: portcullis
userPassword: service-secret

dn: uid=john,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: john
cn: John Doe
sn: Doe
mail: john@example.com
userPassword: john password

dn: uid=mary,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: mary
cn: Mary Major
sn: Major
mail: mary@example.com
userPassword: mary password

dn: uid=jane,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jane
cn: Jane Roe
sn: Roe
userPassword: jane password

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=john,ou=people,dc=example,dc=com

dn: cn=dev,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: dev
member: uid=john,ou=people,dc=example,dc=com
member: uid=mary,ou=people,dc=example,dc=com
";

/// A running slapd, stopped when dropped.
pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `ldap://` port (StartTLS offered).
    pub port: u16,
    /// `ldaps://` port.
    pub tls_port: u16,
    /// The CA that signed the server's certificate.
    pub ca: TestCa,
}

impl Slapd {
    /// Starts slapd with the test tree loaded.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Like [`Slapd::start`], with `global` slapd.conf lines (e.g. `TLSVerifyClient demand`).
    pub fn start_with(global: &str) -> Self {
        assert!(
            Path::new(SLAPD).exists(),
            "{SLAPD} is missing: the LDAP tests need Debian's slapd and ldap-utils (integration/install-deps installs them)"
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("LDAP test CA");
        let server = ca.server(&[TLS_NAME]);
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), &server.cert_pem).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key_pem).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let d = dir.path().display();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
allow bind_anon_dn
{global}
access to dn.base=\"\" by * read
access to dn.base=\"cn=Subschema\" by * read
database mdb
suffix \"{BASE_DN}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PASSWORD}
directory {d}/data
maxsize 10485760
overlay memberof
access to attrs=userPassword
  by dn.exact=\"{SERVICE_DN}\" write
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact=\"{SERVICE_DN}\" read
  by users read
  by * none
"
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
        let mut slapd = Self { child: None, dir, port: free_port(), tls_port: free_port(), ca };
        slapd.run();
        slapd.ldap_tool("ldapadd", &["-f", &slapd.write("tree.ldif", TREE)]);
        slapd
    }

    /// Writes `text` to `name` in slapd's directory; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The directory holding `ca.pem` (for `certificates_directory`).
    pub fn ca_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("trusted");
        if !dir.exists() {
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("ca.pem"), self.ca.cert_pem()).unwrap();
        }
        dir
    }

    fn run(&mut self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("slapd.log")).unwrap();
        let urls = format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/", self.port, self.tls_port);
        let child = Command::new(SLAPD)
            .args(["-f", &self.dir.path().join("slapd.conf").display().to_string(), "-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        // slapd writes its pid file only once its listeners are bound, so a pid file naming
        // this child (still running) proves the ports are slapd's: a bare connect could reach
        // whatever else holds the port if slapd failed to bind it.
        let pid = self.child.as_ref().map(Child::id).unwrap_or_default().to_string();
        let pidfile = self.dir.path().join("slapd.pid");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("slapd exited ({status}):\n{}", self.log());
            }
            let written = std::fs::read_to_string(&pidfile).is_ok_and(|text| text.trim() == pid);
            if written && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not listen in time:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// slapd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Stops slapd (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Runs an OpenLDAP client tool as the root DN against the plain port; its stdout.
    pub fn ldap_tool(&self, tool: &str, args: &[&str]) -> String {
        let url = format!("ldap://127.0.0.1:{}", self.port);
        let out = Command::new(tool)
            .args(["-x", "-H", &url, "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool} (Debian package ldap-utils; integration/install-deps installs it): {e}")
            });
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\nslapd's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// `userPassword` of `uid` as stored, decoded.
    pub fn stored_password(&self, uid: &str) -> String {
        let dn = format!("uid={uid},ou=people,{BASE_DN}");
        let out =
            self.ldap_tool("ldapsearch", &["-LLL", "-o", "ldif-wrap=no", "-b", &dn, "-s", "base", "userPassword"]);
        let line = out.lines().find(|l| l.starts_with("userPassword")).unwrap_or_default().to_string();
        match line.split_once(":: ") {
            Some((_, b64)) => {
                use base64::Engine;
                String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).to_string()
            }
            None => line.trim_start_matches("userPassword: ").to_string(),
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
