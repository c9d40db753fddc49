//! `notifier`: exactly one of filesystem or SMTP.

use super::*;

impl Validator {
    pub(super) fn notifier(&mut self, n: &Notifier) {
        match (&n.filesystem, &n.smtp) {
            (None, None) => self.err("notifier", "one of notifier.filesystem or notifier.smtp is required"),
            (Some(_), Some(_)) => self.err("notifier", "configure only one of notifier.filesystem and notifier.smtp"),
            _ => {}
        }
        if let Some(fs) = &n.filesystem
            && fs.filename.as_deref().is_none_or(str::is_empty)
        {
            self.err("notifier.filesystem.filename", "required");
        }
        if let Some(smtp) = &n.smtp {
            match &smtp.address {
                None => self.err("notifier.smtp.address", "required, e.g. 'submission://smtp.example.com:587'"),
                Some(a) => {
                    if let Err(e) = parse_service_address(a, &["smtp", "submission", "submissions"]) {
                        self.err("notifier.smtp.address", e);
                    }
                }
            }
            match smtp.sender.as_deref() {
                None | Some("") => self.err("notifier.smtp.sender", "required, e.g. 'Portcullis <auth@example.com>'"),
                Some(sender) if !looks_like_mailbox(sender) => {
                    self.err("notifier.smtp.sender", format!("'{sender}' is not an email address"))
                }
                Some(_) => {}
            }
            self.positive("notifier.smtp.timeout", smtp.timeout);
            if let Some(tls) = &smtp.tls {
                self.tls("notifier.smtp.tls", tls);
                self.no_client_certificate("notifier.smtp.tls", tls);
            }
        }
    }
}

fn looks_like_mailbox(sender: &str) -> bool {
    let address = match (sender.rfind('<'), sender.rfind('>')) {
        (Some(start), Some(end)) if start < end => &sender[start + 1..end],
        _ => sender,
    };
    let mut parts = address.trim().splitn(2, '@');
    matches!((parts.next(), parts.next()), (Some(local), Some(host)) if !local.is_empty() && !host.is_empty() && !host.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;

    #[test]
    fn mailboxes() {
        assert!(looks_like_mailbox("Portcullis <auth@example.com>"));
        assert!(looks_like_mailbox("auth@example.com"));
        assert!(!looks_like_mailbox("nobody"));
        // Authelia accepts a host without a dot (its test suites send as admin@localhost).
        assert!(looks_like_mailbox("admin@localhost"));
    }

    #[test]
    fn exactly_one_notifier() {
        assert!(problem_paths("{}").contains(&"notifier".to_string()));
        let both = "notifier: {filesystem: {filename: /tmp/n}, smtp: {address: 'smtp://mail.example.com:25'}}";
        assert!(problem_paths(both).contains(&"notifier".to_string()));
        assert!(!problem_paths("notifier: {filesystem: {filename: /tmp/n}}").contains(&"notifier".to_string()));
    }
}
