//! Delivery over SMTP. `submissions://` wraps the connection in TLS from the start,
//! `submission://` requires STARTTLS, `smtp://` upgrades with STARTTLS when the server
//! offers it. Plain text is refused for remote servers unless
//! `disable_require_tls` says otherwise, so credentials and reset links do not cross a
//! network in the clear by accident.

use std::net::IpAddr;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{NotifyError, Recipient, Rendered};
use crate::config::schema::SmtpNotifier;
use crate::config::validate::parse_service_address;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS, required.
    StartTls,
    /// STARTTLS when offered, else plain text.
    Opportunistic,
    /// No TLS at all.
    Plain,
}

/// The transport settings an address and the options select: host, port, security.
fn plan(config: &SmtpNotifier) -> Result<(String, u16, Security), String> {
    let address = config.address.as_deref().unwrap_or_default();
    let url = parse_service_address(address, &["smtp", "submission", "submissions"])
        .map_err(|e| format!("notifier.smtp.address: {e}"))?;
    let host = url.host_str().ok_or("notifier.smtp.address: a host is required")?.trim_matches(['[', ']']).to_string();
    let (default_port, security) = match url.scheme() {
        "submissions" => (465, Security::Implicit),
        "submission" => (587, Security::StartTls),
        _ if config.disable_starttls => (25, Security::Plain),
        _ => (25, Security::Opportunistic),
    };
    let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if matches!(security, Security::Plain | Security::Opportunistic) && !local && !config.disable_require_tls {
        return Err(format!(
            "notifier.smtp.address: '{address}' may send mail in plain text to a remote server; use submission:// \
             (STARTTLS) or submissions:// (TLS), or set notifier.smtp.disable_require_tls"
        ));
    }
    Ok((host, url.port().unwrap_or(default_port), security))
}

/// Sends through one SMTP server.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    html: bool,
    check_address: String,
    /// Bound on a whole exchange: lettre's own timeout does not cover every read.
    deadline: std::time::Duration,
}

impl SmtpSender {
    /// The sender `config` describes.
    pub fn new(config: &SmtpNotifier) -> Result<Self, String> {
        let (host, port, security) = plan(config)?;
        let tls_name =
            config.tls.as_ref().map(|t| t.server_name.clone()).filter(|n| !n.is_empty()).unwrap_or(host.clone());
        let skip_verify = config.tls.as_ref().is_some_and(|t| t.skip_verify);
        let parameters = || {
            TlsParameters::builder(tls_name.clone())
                .dangerous_accept_invalid_certs(skip_verify)
                .dangerous_accept_invalid_hostnames(skip_verify)
                .build_rustls()
                .map_err(|e| format!("notifier.smtp.tls: {e}"))
        };
        let tls = match security {
            Security::Implicit => Tls::Wrapper(parameters()?),
            Security::StartTls => Tls::Required(parameters()?),
            Security::Opportunistic => Tls::Opportunistic(parameters()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout.get()))
            .hello_name(ClientId::Domain(config.identifier.clone()));
        if !config.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(config.username.clone(), config.password.expose().to_string()));
        }
        let from = config
            .sender
            .as_deref()
            .unwrap_or_default()
            .parse::<Mailbox>()
            .map_err(|e| format!("notifier.smtp.sender: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            html: !config.disable_html_emails,
            check_address: config.startup_check_address.clone(),
            deadline: config.timeout.get() * 3,
        })
    }

    /// Connects, negotiates TLS and authenticates, then quits.
    pub async fn check(&self) -> Result<(), NotifyError> {
        let tested = tokio::time::timeout(self.deadline, self.transport.test_connection())
            .await
            .map_err(|_| NotifyError::Smtp("the server did not answer in time".into()))?;
        match tested {
            Ok(true) => {
                tracing::debug!(recipient = %self.check_address, "SMTP server reachable");
                Ok(())
            }
            Ok(false) => Err(NotifyError::Smtp("the server did not answer".into())),
            Err(e) => Err(NotifyError::Smtp(e.to_string())),
        }
    }

    /// Sends `rendered` to `to`: multipart text + HTML, or text only.
    pub async fn send(&self, to: &Recipient, rendered: &Rendered) -> Result<(), NotifyError> {
        let mailbox = Mailbox::new(
            (!to.name.is_empty()).then(|| to.name.clone()),
            to.address.parse().map_err(|e| NotifyError::Message(format!("recipient: {e}")))?,
        );
        let builder = lettre::Message::builder().from(self.from.clone()).to(mailbox).subject(rendered.subject.clone());
        let message = if self.html {
            builder.multipart(MultiPart::alternative_plain_html(rendered.text.clone(), rendered.html.clone()))
        } else {
            builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(rendered.text.clone()))
        }
        .map_err(|e| NotifyError::Message(e.to_string()))?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| NotifyError::Smtp(e.to_string())),
            Err(_) => Err(NotifyError::Smtp("the server did not answer in time".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address: &str) -> SmtpNotifier {
        SmtpNotifier {
            address: Some(address.into()),
            sender: Some("Auth <auth@example.com>".into()),
            ..Default::default()
        }
    }

    #[test]
    fn schemes_pick_ports_and_security() {
        assert_eq!(
            plan(&config("submissions://mail.example.com")).unwrap(),
            ("mail.example.com".into(), 465, Security::Implicit)
        );
        assert_eq!(
            plan(&config("submission://mail.example.com")).unwrap(),
            ("mail.example.com".into(), 587, Security::StartTls)
        );
        assert_eq!(
            plan(&config("smtp://127.0.0.1:2525")).unwrap(),
            ("127.0.0.1".into(), 2525, Security::Opportunistic)
        );
        let mut plain = config("smtp://localhost");
        plain.disable_starttls = true;
        assert_eq!(plan(&plain).unwrap(), ("localhost".into(), 25, Security::Plain));
    }

    #[test]
    fn plain_text_to_remote_servers_is_refused_unless_allowed() {
        let err = plan(&config("smtp://mail.example.com")).unwrap_err();
        assert!(err.contains("plain text") && err.contains("disable_require_tls"), "{err}");
        let mut allowed = config("smtp://mail.example.com");
        allowed.disable_require_tls = true;
        assert!(plan(&allowed).is_ok());
    }
}
