//! Delivery over SMTP with lettre.
//!
//! The conversation is driven step by step on lettre's `AsyncSmtpConnection` (the
//! connection `AsyncSmtpTransport` uses underneath) rather than through the transport,
//! for two reasons: the startup check needs MAIL FROM and RCPT TO followed by RSET, which
//! the transport cannot do, and a failure can then say which step failed (connect, TLS,
//! AUTH, sender, recipient). Sending and checking share one connect path, so the TLS
//! policy checked at startup is the one used for mail.
//!
//! The TLS policy follows the scheme of `notifier.smtp.address`: `submissions` is TLS
//! from the first byte (port 465), `submission` requires STARTTLS (587), `smtp` (25) uses
//! STARTTLS when offered. Mail never crosses the network in clear text unless the server is
//! this machine or `disable_require_tls` says so: to a remote `smtp://` server STARTTLS is
//! required, and `disable_starttls` towards one is a configuration error.
//!
//! `notifier.smtp.timeout` bounds connecting and, separately, the whole exchange, so a
//! server that accepts connections but never answers cannot hold a request forever. There is
//! no connection pool: notifications are rare, and a fresh connection never finds a stale one.

use std::net::IpAddr;
use std::time::Duration;

use lettre::Address;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters, TlsVersion};
use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;

use super::{NotifyError, Recipient};
use crate::config::schema::SmtpNotifier;
use crate::config::validate::parse_service_address;

/// The URL schemes of `notifier.smtp.address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    /// `smtp://`: relay port, STARTTLS when offered.
    Smtp,
    /// `submission://`: STARTTLS required.
    Submission,
    /// `submissions://`: implicit TLS.
    Submissions,
}

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP address (without brackets).
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// True when the server is this machine, where clear text is not exposed on a network.
    pub(super) fn is_local(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost") || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `notifier.smtp.address`; the port defaults by scheme (25, 587, 465).
pub(super) fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let url = parse_service_address(text, &["smtp", "submission", "submissions"])?;
    let scheme = match url.scheme() {
        "submission" => Scheme::Submission,
        "submissions" => Scheme::Submissions,
        _ => Scheme::Smtp,
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in notifier.smtp.username and notifier.smtp.password, not in the address".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{text}' has a path, query or fragment; give only scheme://host:port"));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => return Err(format!("address '{text}' has no host")),
    };
    let port = url.port().unwrap_or(match scheme {
        Scheme::Smtp => 25,
        Scheme::Submission => 587,
        Scheme::Submissions => 465,
    });
    Ok(Endpoint { scheme, host, port })
}

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Security {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS, or fail.
    RequireStarttls,
    /// STARTTLS when the server offers it, else clear text.
    Opportunistic,
    /// Clear text.
    Plain,
}

/// The protection for `endpoint` under the `disable_starttls` and `disable_require_tls`
/// settings; refuses combinations that would send clear text to a remote server.
pub(super) fn security(
    endpoint: &Endpoint,
    disable_starttls: bool,
    disable_require_tls: bool,
) -> Result<Security, String> {
    let clear_text_allowed = endpoint.is_local() || disable_require_tls;
    match (endpoint.scheme, disable_starttls) {
        (Scheme::Submissions, _) => Ok(Security::Implicit),
        (Scheme::Submission, false) => Ok(Security::RequireStarttls),
        (Scheme::Submission, true) => {
            Err("notifier.smtp.disable_starttls: submission:// means STARTTLS; use smtp:// for a server without it"
                .into())
        }
        (Scheme::Smtp, false) if clear_text_allowed => Ok(Security::Opportunistic),
        (Scheme::Smtp, false) => Ok(Security::RequireStarttls),
        (Scheme::Smtp, true) if clear_text_allowed => Ok(Security::Plain),
        (Scheme::Smtp, true) => Err(format!(
            "notifier.smtp.disable_starttls: refusing to send mail in clear text to the remote server {}; \
             use submissions:// or submission://, or set notifier.smtp.disable_require_tls",
            endpoint.host
        )),
    }
}

/// Sends mail to one SMTP server.
pub(super) struct SmtpSender {
    endpoint: Endpoint,
    tls: Tls,
    hello: ClientId,
    credentials: Option<Credentials>,
    username: String,
    timeout: Duration,
    sender: Mailbox,
    check_recipient: Address,
}

impl SmtpSender {
    /// Builds the sender; errors name the configuration key.
    pub(super) fn from_config(c: &SmtpNotifier) -> Result<Self, String> {
        let address = c.address.as_deref().filter(|a| !a.is_empty()).ok_or("notifier.smtp.address: required")?;
        let endpoint = parse_endpoint(address).map_err(|e| format!("notifier.smtp.address: {e}"))?;
        let tls = match security(&endpoint, c.disable_starttls, c.disable_require_tls)? {
            Security::Plain => Tls::None,
            Security::Opportunistic => Tls::Opportunistic(tls_parameters(&endpoint, c)?),
            Security::RequireStarttls => Tls::Required(tls_parameters(&endpoint, c)?),
            Security::Implicit => Tls::Wrapper(tls_parameters(&endpoint, c)?),
        };
        let sender = c.sender.as_deref().filter(|s| !s.is_empty()).ok_or("notifier.smtp.sender: required")?;
        let sender: Mailbox =
            sender.parse().map_err(|e| format!("notifier.smtp.sender: '{sender}' is not a mailbox: {e}"))?;
        let check_recipient = c.startup_check_address.parse().map_err(|e| {
            format!("notifier.smtp.startup_check_address: '{}' is not an email address: {e}", c.startup_check_address)
        })?;
        if c.timeout.is_zero() {
            return Err("notifier.smtp.timeout: must be positive".into());
        }
        let credentials =
            (!c.username.is_empty()).then(|| Credentials::new(c.username.clone(), c.password.expose().to_string()));
        Ok(Self {
            endpoint,
            tls,
            hello: client_id(&c.identifier),
            credentials,
            username: c.username.clone(),
            timeout: c.timeout.get(),
            sender,
            check_recipient,
        })
    }

    /// Connects, and checks that the server would take mail from the sender to the startup
    /// check address; sends nothing.
    pub(super) async fn startup_check(&self) -> Result<(), NotifyError> {
        self.bounded(async {
            let mut conn = self.connect().await?;
            let from = self.sender.email.clone();
            if let Err(e) = conn.command(Mail::new(Some(from), vec![])).await {
                return Err(self.rejected(&mut conn, format!("the sender <{}>", self.sender.email), e).await);
            }
            if let Err(e) = conn.command(Rcpt::new(self.check_recipient.clone(), vec![])).await {
                return Err(self.rejected(&mut conn, format!("the recipient <{}>", self.check_recipient), e).await);
            }
            // The check is over; a server that mishandles RSET or QUIT still took the envelope.
            let _ = conn.command(Rset).await;
            let _ = conn.quit().await;
            Ok(())
        })
        .await
    }

    /// Sends one message: multipart/alternative when there is an HTML body, else text only.
    pub(super) async fn send(
        &self,
        to: &Recipient,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), NotifyError> {
        let email = self.build(to, subject, text, html)?;
        let bytes = email.formatted();
        self.bounded(async {
            let mut conn = self.connect().await?;
            if let Err(e) = conn.send(email.envelope(), &bytes).await {
                return Err(self.rejected(&mut conn, format!("the message to <{}>", to.address), e).await);
            }
            let _ = conn.quit().await;
            Ok(())
        })
        .await
    }

    fn build(
        &self,
        to: &Recipient,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<lettre::Message, NotifyError> {
        let invalid = |reason: String| NotifyError::InvalidRecipient { address: to.address.clone(), reason };
        let address: Address = to.address.parse().map_err(|e: lettre::address::AddressError| invalid(e.to_string()))?;
        let name = to.name.trim();
        let mailbox = Mailbox::new((!name.is_empty()).then(|| name.to_string()), address);
        let builder = lettre::Message::builder()
            .from(self.sender.clone())
            .to(mailbox)
            .subject(subject)
            .date_now()
            .message_id(Some(format!("<{}@{}>", uuid::Uuid::new_v4(), self.sender.email.domain())))
            // RFC 3834: an automatic message; out-of-office replies should not answer it.
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
        let built = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text.to_string(), html.to_string())),
            None => builder.header(ContentType::TEXT_PLAIN).body(text.to_string()),
        };
        built.map_err(|e| invalid(e.to_string()))
    }

    /// TCP (and implicit TLS), EHLO, STARTTLS as the policy says, then AUTH when configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, NotifyError> {
        let server = self.endpoint.display();
        let implicit = match &self.tls {
            Tls::Wrapper(p) => Some(p.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.endpoint.host.as_str(), self.endpoint.port),
            Some(self.timeout),
            &self.hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| {
            if e.is_tls() {
                NotifyError::Tls { server: server.clone(), reason: reason(&e) }
            } else {
                NotifyError::Connection { server: server.clone(), reason: reason(&e) }
            }
        })?;
        let starttls = match &self.tls {
            Tls::Required(_) if !conn.can_starttls() => {
                conn.abort().await;
                return Err(NotifyError::Tls { server, reason: "the server does not offer STARTTLS".into() });
            }
            Tls::Required(p) => Some(p.clone()),
            Tls::Opportunistic(p) if conn.can_starttls() => Some(p.clone()),
            _ => None,
        };
        if let Some(parameters) = starttls
            && let Err(e) = conn.starttls(parameters, &self.hello).await
        {
            // Not `abort`: after a failed handshake lettre has no stream left to say QUIT on.
            return Err(NotifyError::Tls { server, reason: reason(&e) });
        }
        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await
        {
            conn.abort().await;
            return Err(NotifyError::Auth { server, username: self.username.clone(), reason: reason(&e) });
        }
        Ok(conn)
    }

    /// A refusal (or a broken connection) while `what` was being sent.
    async fn rejected(
        &self,
        conn: &mut AsyncSmtpConnection,
        what: String,
        e: lettre::transport::smtp::Error,
    ) -> NotifyError {
        conn.abort().await;
        let server = self.endpoint.display();
        if e.is_permanent() || e.is_transient() {
            NotifyError::Rejected { server, what, reason: reason(&e) }
        } else {
            NotifyError::Connection { server, reason: format!("while sending {what}: {}", reason(&e)) }
        }
    }

    /// Runs one whole exchange within `notifier.smtp.timeout`.
    async fn bounded(&self, exchange: impl Future<Output = Result<(), NotifyError>>) -> Result<(), NotifyError> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(NotifyError::Timeout { server: self.endpoint.display(), after: self.timeout }))
    }
}

/// TLS settings from `notifier.smtp.tls`: the name to verify (default: the host), whether
/// to verify at all, the lowest version.
fn tls_parameters(endpoint: &Endpoint, c: &SmtpNotifier) -> Result<TlsParameters, String> {
    let tls = c.tls.clone().unwrap_or_default();
    let name = if tls.server_name.is_empty() { endpoint.host.clone() } else { tls.server_name.clone() };
    let minimum = match tls.minimum_version.as_str() {
        "" | "TLS1.2" => TlsVersion::Tlsv12,
        "TLS1.3" => TlsVersion::Tlsv13,
        other => {
            return Err(format!("notifier.smtp.tls.minimum_version: '{other}' is not allowed; use TLS1.2 or TLS1.3"));
        }
    };
    match tls.maximum_version.as_str() {
        "" | "TLS1.3" => {}
        "TLS1.2" => {
            return Err("notifier.smtp.tls.maximum_version: capping SMTP at TLS1.2 is not supported; remove it".into());
        }
        other => return Err(format!("notifier.smtp.tls.maximum_version: '{other}' is not allowed; use TLS1.3")),
    }
    if !tls.certificate_chain.is_empty() || !tls.private_key.is_empty() {
        return Err("notifier.smtp.tls: client certificates are not supported".into());
    }
    TlsParameters::builder(name)
        .set_min_tls_version(minimum)
        .dangerous_accept_invalid_certs(tls.skip_verify)
        .build()
        .map_err(|e| format!("notifier.smtp.tls: {}", reason(&e)))
}

/// The EHLO argument: an address literal for an IP, else the name (default `localhost`).
fn client_id(identifier: &str) -> ClientId {
    match identifier.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) if identifier.is_empty() => ClientId::Domain("localhost".into()),
        Err(_) => ClientId::Domain(identifier.to_string()),
    }
}

/// lettre's error with its cause, on one line.
fn reason(e: &lettre::transport::smtp::Error) -> String {
    e.to_string().replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::Secret;

    fn endpoint(text: &str) -> Endpoint {
        parse_endpoint(text).unwrap()
    }

    #[test]
    fn schemes_and_default_ports() {
        assert_eq!(
            endpoint("smtp://mail.example.com"),
            Endpoint { scheme: Scheme::Smtp, host: "mail.example.com".into(), port: 25 }
        );
        assert_eq!(endpoint("submission://mail.example.com").port, 587);
        assert_eq!(endpoint("submissions://mail.example.com").port, 465);
        assert_eq!(endpoint("submission://mail.example.com:2587").port, 2587);
        assert_eq!(endpoint("mail.example.com:26").scheme, Scheme::Smtp, "no scheme means smtp");
        assert_eq!(endpoint("smtp://127.0.0.1:2525").host, "127.0.0.1");
        assert_eq!(endpoint("smtp://[::1]:2525").host, "::1");
        assert_eq!(endpoint("smtp://[::1]:2525").display(), "[::1]:2525");
        for bad in ["http://mail.example.com", "smtp://", "smtp://u:p@mail.example.com", "smtp://mail.example.com/x"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_local() {
        for local in ["smtp://localhost", "smtp://LOCALHOST:25", "smtp://127.0.0.1", "smtp://127.8.9.1", "smtp://[::1]"]
        {
            assert!(endpoint(local).is_local(), "{local}");
        }
        for remote in ["smtp://mail.example.com", "smtp://10.0.0.1", "smtp://[2001:db8::1]", "smtp://localhost.example"]
        {
            assert!(!endpoint(remote).is_local(), "{remote}");
        }
    }

    #[test]
    fn tls_policy_by_scheme() {
        let remote = |s| endpoint(&format!("{s}://mail.example.com"));
        let local = |s| endpoint(&format!("{s}://127.0.0.1"));
        assert_eq!(security(&remote("submissions"), false, false), Ok(Security::Implicit));
        assert_eq!(security(&remote("submissions"), true, false), Ok(Security::Implicit));
        assert_eq!(security(&remote("submission"), false, false), Ok(Security::RequireStarttls));
        assert!(security(&remote("submission"), true, true).is_err());
        // smtp:// to a remote server: STARTTLS is required unless clear text is allowed.
        assert_eq!(security(&remote("smtp"), false, false), Ok(Security::RequireStarttls));
        assert_eq!(security(&remote("smtp"), false, true), Ok(Security::Opportunistic));
        assert_eq!(security(&local("smtp"), false, false), Ok(Security::Opportunistic));
        assert_eq!(security(&local("smtp"), true, false), Ok(Security::Plain));
        assert_eq!(security(&remote("smtp"), true, true), Ok(Security::Plain));
    }

    #[test]
    fn clear_text_to_a_remote_server_is_refused() {
        let e = security(&endpoint("smtp://mail.example.com"), true, false).unwrap_err();
        assert!(e.starts_with("notifier.smtp.disable_starttls:") && e.contains("clear text"), "{e}");

        let config = SmtpNotifier {
            address: Some("smtp://mail.example.com:25".into()),
            sender: Some("Portcullis <auth@example.com>".into()),
            disable_starttls: true,
            ..Default::default()
        };
        let e = SmtpSender::from_config(&config).err().unwrap();
        assert!(e.contains("clear text"), "{e}");
        let allowed = SmtpNotifier { disable_require_tls: true, ..config.clone() };
        assert!(matches!(SmtpSender::from_config(&allowed).unwrap().tls, Tls::None));
        let starttls = SmtpNotifier { disable_starttls: false, ..config };
        assert!(matches!(SmtpSender::from_config(&starttls).unwrap().tls, Tls::Required(_)));
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let good = SmtpNotifier {
            address: Some("submission://mail.example.com".into()),
            sender: Some("Portcullis <auth@example.com>".into()),
            username: "portcullis".into(),
            password: Secret::new("hunter2-secret"),
            ..Default::default()
        };
        let sender = SmtpSender::from_config(&good).unwrap();
        assert!(sender.credentials.is_some());
        assert!(matches!(sender.hello, ClientId::Domain(ref d) if d == "localhost"));

        let cases: [(SmtpNotifier, &str); 6] = [
            (SmtpNotifier { address: None, ..good.clone() }, "notifier.smtp.address:"),
            (SmtpNotifier { address: Some("ftp://x.example".into()), ..good.clone() }, "notifier.smtp.address:"),
            (SmtpNotifier { sender: Some("not a mailbox".into()), ..good.clone() }, "notifier.smtp.sender:"),
            (
                SmtpNotifier { startup_check_address: "nobody".into(), ..good.clone() },
                "notifier.smtp.startup_check_address:",
            ),
            (
                SmtpNotifier {
                    tls: Some(crate::config::schema::Tls { maximum_version: "TLS1.2".into(), ..Default::default() }),
                    ..good.clone()
                },
                "notifier.smtp.tls.maximum_version:",
            ),
            (SmtpNotifier { disable_starttls: true, ..good.clone() }, "notifier.smtp.disable_starttls:"),
        ];
        for (config, key) in cases {
            let e = SmtpSender::from_config(&config).err().unwrap();
            assert!(e.starts_with(key), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn ehlo_names() {
        assert!(matches!(client_id("mx.example.com"), ClientId::Domain(ref d) if d == "mx.example.com"));
        assert!(matches!(client_id("192.0.2.1"), ClientId::Ipv4(_)));
        assert!(matches!(client_id("2001:db8::1"), ClientId::Ipv6(_)));
        assert!(matches!(client_id(""), ClientId::Domain(ref d) if d == "localhost"));
    }
}
