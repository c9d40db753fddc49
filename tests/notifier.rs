//! The notifier against a real SMTP server (aiosmtpd, see integration/smtp_capture.py) and
//! against a file: what arrives, with which headers and bodies, over which protection, and
//! how failures are reported.

mod common;

use std::time::Duration;

use common::smtp::{CaptureTls, SmtpCapture, parse_mail};
use portcullis::config::schema;
use portcullis::notifier::{CodePurpose, Message, Notifier, NotifyError, Recipient};
use regex::Regex;

const WAIT: Duration = Duration::from_secs(10);

/// `notifier` configuration from YAML, as an operator would write it.
fn config(yaml: &str) -> schema::Notifier {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"))
}

/// An SMTP notifier for the capture on `port`, with `extra` keys under `smtp`.
fn smtp_notifier(address: &str, extra: &str) -> Notifier {
    let yaml = format!(
        "smtp:\n  address: '{address}'\n  sender: 'Portcullis <auth@example.com>'\n  identifier: 'portcullis.test'\n{extra}"
    );
    Notifier::from_config(&config(&yaml)).unwrap()
}

fn jane() -> Recipient {
    Recipient { name: "Jane Doe".into(), address: "jane@example.com".into() }
}

fn reset(link: &str) -> Message {
    Message::ResetPassword {
        display_name: "Jane".into(),
        link: link.into(),
        expires_in: Duration::from_secs(900),
        remote_ip: "198.51.100.23".into(),
        revoke_link: None,
    }
}

fn code(code: &str, purpose: CodePurpose, revoke_link: Option<&str>) -> Message {
    Message::OneTimeCode {
        display_name: "Jane".into(),
        code: code.into(),
        purpose,
        expires_in: Duration::from_secs(300),
        remote_ip: "198.51.100.23".into(),
        revoke_link: revoke_link.map(Into::into),
    }
}

/// The only match of `pattern` in `text` (what a user, or a test, would copy out).
fn extract(pattern: &str, text: &str) -> String {
    let found: Vec<_> = Regex::new(pattern).unwrap().find_iter(text).map(|m| m.as_str().to_string()).collect();
    let mut unique = found.clone();
    unique.dedup();
    assert_eq!(unique.len(), 1, "expected one distinct match of {pattern} in:\n{text}");
    found[0].clone()
}

#[tokio::test]
async fn every_message_kind_arrives_as_text_and_html_with_the_secret_verbatim() {
    let capture = SmtpCapture::start(None);
    let notifier = smtp_notifier(&format!("smtp://127.0.0.1:{}", capture.port()), "");
    let link = "https://auth.example.com/reset-password/step2?token=eyJhbGciOi.J9x_Y-z";
    let revoke = "https://auth.example.com/revoke/one-time-code?id=5f0c2a";
    let messages = [
        (reset(link), "Reset your password", Some(r"https://auth\.example\.com/reset-password/\S+token=[\w.-]+")),
        (code("7Q4KX2PM", CodePurpose::SignIn, None), "Your sign-in code", Some(r"\b[0-9A-Z]{8}\b")),
        (code("K9D3RW5T", CodePurpose::Elevation, Some(revoke)), "Confirm it is you", Some(r"\b[0-9A-Z]{8}\b")),
        (
            Message::PasswordChanged { display_name: "Jane".into(), remote_ip: "198.51.100.23".into() },
            "Your password was changed",
            None,
        ),
        (
            Message::SecurityEvent {
                display_name: "Jane".into(),
                detail: "A security key named 'YubiKey' was added".into(),
                remote_ip: "198.51.100.23".into(),
            },
            "Your security settings changed",
            None,
        ),
    ];
    for (message, _, _) in &messages {
        notifier.send(&jane(), message).await.unwrap();
    }
    let raw = capture.wait_for(messages.len(), WAIT);
    assert_eq!(raw.len(), messages.len());
    let envelopes = capture.envelopes();
    let date = Regex::new(r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$").unwrap();
    let message_id = Regex::new(r"^<[^@<>\s]+@example\.com>$").unwrap();
    let mut message_ids = std::collections::HashSet::new();
    for ((message, title, secret), (raw, envelope)) in messages.iter().zip(raw.iter().zip(&envelopes)) {
        assert_eq!(envelope["mail_from"], "auth@example.com");
        assert_eq!(envelope["rcpt_tos"], serde_json::json!(["jane@example.com"]));
        assert_eq!(envelope["tls"], false, "the capture offers no STARTTLS");
        let mail = parse_mail(raw);
        assert_eq!(mail.header("From"), "Portcullis <auth@example.com>");
        assert_eq!(mail.header("To"), "Jane Doe <jane@example.com>");
        assert_eq!(mail.header("Subject"), format!("[Portcullis] {title}"));
        assert_eq!(mail.header("Auto-Submitted"), "auto-generated");
        assert!(date.is_match(mail.header("Date")), "Date: {}", mail.header("Date"));
        assert!(message_id.is_match(mail.header("Message-ID")), "Message-ID: {}", mail.header("Message-ID"));
        assert!(message_ids.insert(mail.header("Message-ID").to_string()), "Message-IDs repeat");
        assert_eq!(mail.content_type, "multipart/alternative");
        assert_eq!(mail.parts.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["text/plain", "text/html"]);
        let (text, html) = (mail.part("text/plain"), mail.part("text/html"));
        assert!(text.contains("Hi Jane,") && html.contains("Hi Jane,"), "{text}\n{html}");
        assert!(text.contains("198.51.100.23") && html.contains("198.51.100.23"));
        assert!(html.contains("<html lang=\"en\">") && html.contains(&format!("<title>{title}</title>")), "{html}");
        assert!(!text.contains('<'), "the text body has no markup:\n{text}");
        match message {
            Message::ResetPassword { link, .. } => {
                for body in [text, html] {
                    assert_eq!(&extract(secret.unwrap(), body), link);
                }
                assert!(text.contains("15 minutes"));
            }
            Message::OneTimeCode { code, revoke_link, .. } => {
                for body in [text, html] {
                    assert_eq!(&extract(secret.unwrap(), body), code);
                    if let Some(revoke) = revoke_link {
                        assert!(body.contains(revoke.as_str()), "{body}");
                    }
                }
                assert!(text.contains("5 minutes"));
            }
            Message::SecurityEvent { detail, .. } => {
                assert!(text.contains(&format!("{detail}.")), "{text}");
                assert!(html.contains("A security key named &#x27;YubiKey&#x27; was added."), "{html}");
            }
            Message::PasswordChanged { .. } => assert!(text.contains("has just been changed")),
        }
    }
}

#[tokio::test]
async fn subject_template_and_non_ascii_names_are_encoded_properly() {
    let capture = SmtpCapture::start(None);
    let yaml = format!(
        "smtp:\n  address: 'smtp://localhost:{}'\n  sender: 'Pörtcullis <auth@example.com>'\n  \
         subject: 'Sécurité – {{title}} ({{title}})'\n",
        capture.port()
    );
    let notifier = Notifier::from_config(&config(&yaml)).unwrap();
    let to = Recipient { name: "José Müller".into(), address: "jose@example.com".into() };
    let message = Message::PasswordChanged { display_name: "José".into(), remote_ip: "2001:db8::7".into() };
    notifier.send(&to, &message).await.unwrap();
    let mail = parse_mail(&capture.wait_for(1, WAIT)[0]);
    assert_eq!(mail.header("Subject"), "Sécurité – Your password was changed (Your password was changed)");
    assert_eq!(mail.header("To"), "José Müller <jose@example.com>");
    assert_eq!(mail.header("From"), "Pörtcullis <auth@example.com>");
    assert!(mail.part("text/plain").contains("Hi José,"));
    assert!(mail.part("text/html").contains("Hi José,") && mail.part("text/html").contains("2001:db8::7"));
}

#[tokio::test]
async fn disable_html_emails_sends_plain_text_only() {
    let capture = SmtpCapture::start(None);
    let notifier = smtp_notifier(&format!("smtp://127.0.0.1:{}", capture.port()), "  disable_html_emails: true\n");
    notifier.send(&jane(), &code("M2N4P6Q8", CodePurpose::SignIn, None)).await.unwrap();
    let raw = &capture.wait_for(1, WAIT)[0];
    let mail = parse_mail(raw);
    assert_eq!(mail.content_type, "text/plain");
    assert_eq!(mail.parts.len(), 1, "{:?}", mail.parts);
    assert_eq!(mail.parts[0].1.as_deref(), Some("utf-8"));
    assert_eq!(extract(r"\b[0-9A-Z]{8}\b", mail.part("text/plain")), "M2N4P6Q8");
    assert!(!raw.contains("<html"), "{raw}");
}

#[tokio::test]
async fn authentication_with_the_right_credentials_delivers() {
    let capture = SmtpCapture::start(Some(("mailer", "c0rrect horse")));
    let address = format!("smtp://127.0.0.1:{}", capture.port());
    let notifier = smtp_notifier(&address, "  username: mailer\n  password: 'c0rrect horse'\n");
    notifier.startup_check().await.unwrap();
    notifier.send(&jane(), &reset("https://auth.example.com/r?token=abc")).await.unwrap();
    capture.wait_for(1, WAIT);
    assert_eq!(capture.envelopes()[0]["login"], "mailer");

    // The server really insists: without credentials it takes nothing.
    let anonymous = smtp_notifier(&address, "");
    let e = anonymous.send(&jane(), &reset("https://auth.example.com/r?token=def")).await.unwrap_err();
    assert!(matches!(e, NotifyError::Rejected { .. }), "{e:?}");
    assert_eq!(capture.messages().len(), 1);
}

#[tokio::test]
async fn wrong_credentials_fail_without_revealing_the_password() {
    let capture = SmtpCapture::start(Some(("mailer", "c0rrect horse")));
    let notifier = smtp_notifier(
        &format!("smtp://127.0.0.1:{}", capture.port()),
        "  username: mailer\n  password: 'Wr0ng-Pa55word'\n",
    );
    for e in [
        notifier.startup_check().await.unwrap_err(),
        notifier.send(&jane(), &reset("https://auth.example.com/r?token=abc")).await.unwrap_err(),
    ] {
        assert!(matches!(e, NotifyError::Auth { .. }), "{e:?}");
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(shown.contains("mailer") && shown.contains("535"), "{shown}");
        for text in [&shown, &debug] {
            assert!(!text.contains("Wr0ng-Pa55word") && !text.contains("c0rrect"), "{text}");
        }
    }
    assert!(capture.messages().is_empty());
}

#[tokio::test]
async fn submission_uses_starttls_and_verifies_the_certificate_unless_told_not_to() {
    let capture = SmtpCapture::start_with(Some(("mailer", "tls-only")), CaptureTls::Starttls, &[]);
    let address = format!("submission://127.0.0.1:{}", capture.port());
    let credentials = "  username: mailer\n  password: tls-only\n";

    // A self-signed certificate is not trusted...
    let strict = smtp_notifier(&address, credentials);
    let e = strict.send(&jane(), &reset("https://auth.example.com/r?token=1")).await.unwrap_err();
    assert!(matches!(e, NotifyError::Tls { .. }), "{e:?}");
    let e = strict.startup_check().await.unwrap_err();
    assert!(matches!(e, NotifyError::Tls { .. }), "{e:?}");

    // ...unless verification is skipped; AUTH then happens inside TLS (the capture refuses
    // it in clear text).
    let lax = smtp_notifier(&address, &format!("{credentials}  tls:\n    skip_verify: true\n"));
    lax.startup_check().await.unwrap();
    lax.send(&jane(), &reset("https://auth.example.com/r?token=2")).await.unwrap();
    capture.wait_for(1, WAIT);
    let envelope = &capture.envelopes()[0];
    assert_eq!((envelope["tls"].as_bool(), envelope["login"].as_str()), (Some(true), Some("mailer")));
}

#[tokio::test]
async fn submission_fails_when_the_server_offers_no_starttls() {
    let capture = SmtpCapture::start(None);
    let notifier = smtp_notifier(&format!("submission://127.0.0.1:{}", capture.port()), "");
    let e = notifier.send(&jane(), &reset("https://auth.example.com/r?token=1")).await.unwrap_err();
    assert!(matches!(e, NotifyError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert!(matches!(notifier.startup_check().await.unwrap_err(), NotifyError::Tls { .. }));
    assert!(capture.messages().is_empty());
}

#[tokio::test]
async fn smtp_to_loopback_upgrades_when_offered_unless_starttls_is_disabled() {
    let capture = SmtpCapture::start_with(None, CaptureTls::Starttls, &[]);
    let address = format!("smtp://127.0.0.1:{}", capture.port());
    let opportunistic = smtp_notifier(&address, "  tls:\n    skip_verify: true\n");
    opportunistic.send(&jane(), &reset("https://auth.example.com/r?token=1")).await.unwrap();
    let plain = smtp_notifier(&address, "  disable_starttls: true\n");
    plain.send(&jane(), &reset("https://auth.example.com/r?token=2")).await.unwrap();
    capture.wait_for(2, WAIT);
    let tls: Vec<_> = capture.envelopes().iter().map(|e| e["tls"].as_bool().unwrap()).collect();
    assert_eq!(tls, [true, false]);
}

#[tokio::test]
async fn submissions_speaks_tls_from_the_first_byte() {
    let capture = SmtpCapture::start_with(Some(("mailer", "implicit")), CaptureTls::Implicit, &[]);
    let address = format!("submissions://127.0.0.1:{}", capture.port());
    let notifier = smtp_notifier(&address, "  username: mailer\n  password: implicit\n  tls:\n    skip_verify: true\n");
    notifier.startup_check().await.unwrap();
    notifier.send(&jane(), &code("Z8Y7X6W5", CodePurpose::Elevation, None)).await.unwrap();
    capture.wait_for(1, WAIT);
    let envelope = &capture.envelopes()[0];
    assert_eq!((envelope["tls"].as_bool(), envelope["login"].as_str()), (Some(true), Some("mailer")));

    // A clear-text notifier cannot talk to it.
    let plain = smtp_notifier(&format!("smtp://127.0.0.1:{}", capture.port()), "  timeout: 2s\n");
    assert!(plain.startup_check().await.is_err());
}

#[tokio::test]
async fn startup_check_sends_nothing_and_reports_refusals() {
    let capture = SmtpCapture::start_with(None, CaptureTls::None, &["nobody@example.com"]);
    let address = format!("smtp://127.0.0.1:{}", capture.port());
    smtp_notifier(&address, "").startup_check().await.unwrap();
    smtp_notifier(&address, "  startup_check_address: ops@example.com\n").startup_check().await.unwrap();

    let refused = smtp_notifier(&address, "  startup_check_address: nobody@example.com\n");
    let e = refused.startup_check().await.unwrap_err();
    assert!(matches!(e, NotifyError::Rejected { .. }), "{e:?}");
    assert!(e.to_string().contains("nobody@example.com") && e.to_string().contains("550"), "{e}");

    // A recipient refused while sending is reported the same way.
    let nobody = Recipient { name: String::new(), address: "nobody@example.com".into() };
    let e = refused.send(&nobody, &reset("https://auth.example.com/r?token=1")).await.unwrap_err();
    assert!(matches!(e, NotifyError::Rejected { .. }), "{e:?}");

    // The check took no mail.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(capture.messages().is_empty(), "{:?}", capture.messages());
}

#[tokio::test]
async fn startup_check_fails_clearly_when_nothing_listens() {
    let port = common::free_port();
    let notifier = smtp_notifier(&format!("smtp://127.0.0.1:{port}"), "");
    let e = notifier.startup_check().await.unwrap_err();
    assert!(matches!(e, NotifyError::Connection { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(shown.contains(&format!("127.0.0.1:{port}")) && shown.to_lowercase().contains("refused"), "{shown}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts the connection but never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let notifier = smtp_notifier(&format!("smtp://127.0.0.1:{port}"), "  timeout: 1s\n");
    let started = std::time::Instant::now();
    let e = notifier.startup_check().await.unwrap_err();
    assert!(matches!(e, NotifyError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn filesystem_appends_each_message_as_a_block() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notifications.txt");
    let notifier = Notifier::from_config(&config(&format!("filesystem:\n  filename: '{}'\n", path.display()))).unwrap();
    notifier.startup_check().await.unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (0, 0o600));

    let link = "https://auth.example.com/reset-password?token=fs.token-1";
    notifier.send(&jane(), &reset(link)).await.unwrap();
    notifier.send(&jane(), &code("F5G6H7J8", CodePurpose::SignIn, None)).await.unwrap();
    let content = std::fs::read_to_string(&path).unwrap();

    let block = Regex::new(
        r"(?s)\ADate: [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\nTo: Jane Doe <jane@example.com>\nSubject: (.+?)\n\n(.+?)\n-{40}\n\n",
    )
    .unwrap();
    let mut rest = content.as_str();
    let mut seen = Vec::new();
    while let Some(c) = block.captures(rest) {
        seen.push((c[1].to_string(), c[2].to_string()));
        rest = &rest[c[0].len()..];
    }
    assert_eq!(rest, "", "unparsed tail; whole file:\n{content}");
    assert_eq!(seen.len(), 2, "{content}");
    assert_eq!(seen[0].0, "[Portcullis] Reset your password");
    assert_eq!(extract(r"https://\S+", &seen[0].1), link);
    assert_eq!(seen[1].0, "[Portcullis] Your sign-in code");
    assert_eq!(extract(r"\b[0-9A-Z]{8}\b", &seen[1].1), "F5G6H7J8");
    assert!(!content.contains("<html"), "plain text only");
}

#[tokio::test]
async fn filesystem_messages_sent_together_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.txt");
    let notifier = Notifier::from_config(&config(&format!("filesystem:\n  filename: '{}'\n", path.display()))).unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let notifier = notifier.clone();
            tokio::spawn(async move {
                let detail = format!("Device number {i} was added");
                let message =
                    Message::SecurityEvent { display_name: "J".into(), detail, remote_ip: "192.0.2.1".into() };
                notifier.send(&jane(), &message).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let content = std::fs::read_to_string(&path).unwrap();
    let blocks: Vec<_> = content.split_terminator("----------------------------------------\n\n").collect();
    assert_eq!(blocks.len(), 40);
    let mut numbers: Vec<u32> = blocks
        .iter()
        .map(|b| {
            assert!(b.starts_with("Date: ") && b.matches("Date: ").count() == 1, "interleaved block:\n{b}");
            extract(r"Device number \d+", b).trim_start_matches("Device number ").parse().unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
}

#[tokio::test]
async fn filesystem_startup_check_needs_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir/n.txt");
    let notifier = Notifier::from_config(&config(&format!("filesystem:\n  filename: '{}'\n", path.display()))).unwrap();
    let e = notifier.startup_check().await.unwrap_err();
    assert!(matches!(e, NotifyError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("missing-dir"), "{e}");
}

#[tokio::test]
async fn template_path_overrides_are_used() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join("reset_password.txt"), "CUSTOM TEXT for {{ display_name }}: {{ link }}\n")
        .unwrap();
    std::fs::write(
        templates.path().join("reset_password.html"),
        "<p>CUSTOM HTML {{ title }}: <a href=\"{{ link }}\">{{ display_name }}</a></p>\n",
    )
    .unwrap();
    let capture = SmtpCapture::start(None);
    let yaml = format!(
        "template_path: '{}'\nsmtp:\n  address: 'smtp://127.0.0.1:{}'\n  sender: 'auth@example.com'\n",
        templates.path().display(),
        capture.port()
    );
    let notifier = Notifier::from_config(&config(&yaml)).unwrap();
    let link = "https://auth.example.com/reset-password?token=override";
    let to = Recipient { name: "Jane Doe".into(), address: "jane@example.com".into() };
    let message = Message::ResetPassword {
        display_name: "<Jane>".into(),
        link: link.into(),
        expires_in: Duration::from_secs(60),
        remote_ip: "192.0.2.1".into(),
        revoke_link: None,
    };
    notifier.send(&to, &message).await.unwrap();
    notifier.send(&to, &code("A1B2C3D4", CodePurpose::SignIn, None)).await.unwrap();
    let raw = capture.wait_for(2, WAIT);
    let custom = parse_mail(&raw[0]);
    assert_eq!(custom.header("From"), "auth@example.com");
    assert_eq!(custom.part("text/plain").trim_end(), format!("CUSTOM TEXT for <Jane>: {link}"));
    assert_eq!(
        custom.part("text/html").trim_end(),
        format!("<p>CUSTOM HTML Reset your password: <a href=\"{link}\">&lt;Jane&gt;</a></p>")
    );
    // Kinds without an override keep the embedded templates.
    assert!(parse_mail(&raw[1]).part("text/plain").contains("finish signing in"));

    // A template that does not parse stops the notifier from being built.
    std::fs::write(templates.path().join("one_time_code.txt"), "{% if code %}unterminated").unwrap();
    let e = Notifier::from_config(&config(&yaml)).unwrap_err();
    assert!(e.starts_with("notifier.template_path:") && e.contains("one_time_code.txt"), "{e}");
}
