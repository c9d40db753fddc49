//! The reply to an authorization request, as a pure function of who the request turned
//! out to be, what the access rule requires, and what kind of request it is. No I/O: the
//! whole matrix (levels × policies × implementations × request kinds) is table-tested
//! here; the HTTP adapter only gathers the inputs and renders the [`Reply`].

use super::{Implementation, Strategy};
use crate::access_control::{Decision, Policy};
use crate::session::AuthLevel;

/// How the request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The portal's session cookie.
    Session,
    /// Basic credentials in the header of this strategy.
    Header(Strategy),
}

/// What the proxy's request looks like, beyond its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestKind {
    /// The endpoint's implementation.
    pub implementation: Implementation,
    /// The target request's method is GET, HEAD or OPTIONS (a redirect may follow it).
    pub safe_method: bool,
    /// The client asked with `X-Requested-With: XMLHttpRequest`.
    pub xhr: bool,
    /// The client accepts HTML (`text/html`, or `*/*` first).
    pub accepts_html: bool,
}

/// How to tell the client to log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStatus {
    /// 302 to the portal.
    Found,
    /// 303 to the portal (the target request was not a GET).
    SeeOther,
    /// 401 with the portal in `Location` (AuthRequest, scripts, non-HTML clients).
    Unauthorized,
}

/// The reply, before rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Let the request through (with the identity's headers, if there is one).
    Allow,
    /// 403: this user may not, whoever logs in.
    Forbidden,
    /// Ask for Basic credentials again in this strategy's header (401 or 407).
    Challenge(Strategy),
    /// Send the user to the portal.
    Login(LoginStatus),
}

/// Everything the reply depends on.
#[derive(Clone, Copy, Debug)]
pub struct Situation {
    /// The identity's level (anonymous when nobody was identified) and how it was proven.
    pub identity: Option<(AuthLevel, Via)>,
    /// A header strategy found credentials that did not pass.
    pub failed_header: Option<Strategy>,
    /// The first header strategy of the endpoint, if it has one.
    pub header_strategy: Option<Strategy>,
    /// What the access rules require.
    pub decision: Decision,
    /// The request's kind.
    pub kind: RequestKind,
}

/// The reply for `s`.
pub fn reply(s: &Situation) -> Reply {
    let policy = s.decision.policy;
    if let Some(strategy) = s.failed_header
        && policy != Policy::Bypass
    {
        return Reply::Challenge(strategy);
    }
    let level = s.identity.map_or(AuthLevel::Anonymous, |(level, _)| level);
    let authorized = match policy {
        Policy::Bypass => true,
        Policy::OneFactor => level >= AuthLevel::OneFactor,
        Policy::TwoFactor => level >= AuthLevel::TwoFactor,
        Policy::Deny => false,
    };
    if authorized {
        return Reply::Allow;
    }
    // Denied outright, unless the rule is about who the user is and nobody logged in yet.
    if policy == Policy::Deny && (level != AuthLevel::Anonymous || !s.decision.has_subjects) {
        return Reply::Forbidden;
    }
    // Not enough: a Basic-authenticated request is challenged again; otherwise log in.
    if let (Some((_, Via::Header(_))), Some(strategy)) = (s.identity, s.header_strategy) {
        return Reply::Challenge(strategy);
    }
    Reply::Login(login_status(&s.kind))
}

fn login_status(kind: &RequestKind) -> LoginStatus {
    match kind.implementation {
        Implementation::AuthRequest => LoginStatus::Unauthorized,
        _ if kind.xhr || !kind.accepts_html => LoginStatus::Unauthorized,
        _ if kind.safe_method => LoginStatus::Found,
        _ => LoginStatus::SeeOther,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthLevel::{Anonymous, OneFactor, TwoFactor};
    use Implementation::{AuthRequest, ExtAuthz, ExtAuthzGRPC, ForwardAuth, Legacy};
    use Policy::{Bypass, Deny};

    const BASIC: Strategy = Strategy::HeaderAuthorization;

    fn browser(implementation: Implementation) -> RequestKind {
        RequestKind { implementation, safe_method: true, xhr: false, accepts_html: true }
    }

    fn situation(level: AuthLevel, via: Via, policy: Policy, kind: RequestKind) -> Situation {
        Situation {
            identity: (level != Anonymous).then_some((level, via)),
            failed_header: None,
            header_strategy: Some(BASIC),
            decision: Decision { policy, rule: None, has_subjects: false },
            kind,
        }
    }

    /// Levels against policies, for a browser GET through ForwardAuth with a session.
    #[test]
    fn levels_against_policies() {
        let login = Reply::Login(LoginStatus::Found);
        let table = [
            (Anonymous, Bypass, Reply::Allow),
            (Anonymous, Policy::OneFactor, login),
            (Anonymous, Policy::TwoFactor, login),
            (Anonymous, Deny, Reply::Forbidden),
            (OneFactor, Bypass, Reply::Allow),
            (OneFactor, Policy::OneFactor, Reply::Allow),
            (OneFactor, Policy::TwoFactor, login),
            (OneFactor, Deny, Reply::Forbidden),
            (TwoFactor, Policy::OneFactor, Reply::Allow),
            (TwoFactor, Policy::TwoFactor, Reply::Allow),
            (TwoFactor, Deny, Reply::Forbidden),
        ];
        for (level, policy, expected) in table {
            let s = situation(level, Via::Session, policy, browser(ForwardAuth));
            assert_eq!(reply(&s), expected, "{level:?} {policy:?}");
        }
    }

    /// How each implementation asks for a login, by request kind.
    #[test]
    fn login_replies_by_implementation_and_kind() {
        use LoginStatus::{Found, SeeOther, Unauthorized};
        let kind = |implementation, safe_method, xhr, accepts_html| RequestKind {
            implementation,
            safe_method,
            xhr,
            accepts_html,
        };
        let table = [
            (kind(ForwardAuth, true, false, true), Found),
            (kind(ForwardAuth, false, false, true), SeeOther),
            (kind(ForwardAuth, true, true, true), Unauthorized),
            (kind(ForwardAuth, true, false, false), Unauthorized),
            (kind(AuthRequest, true, false, true), Unauthorized),
            (kind(AuthRequest, false, false, true), Unauthorized),
            (kind(ExtAuthz, true, false, true), Found),
            (kind(ExtAuthz, false, false, true), SeeOther),
            (kind(ExtAuthzGRPC, true, false, true), Found),
            (kind(ExtAuthzGRPC, false, false, true), SeeOther),
            (kind(ExtAuthzGRPC, true, true, true), Unauthorized),
            (kind(ExtAuthzGRPC, true, false, false), Unauthorized),
            (kind(Legacy, true, false, true), Found),
            (kind(Legacy, true, true, true), Unauthorized),
        ];
        for (kind, expected) in table {
            let s = situation(Anonymous, Via::Session, Policy::OneFactor, kind);
            assert_eq!(reply(&s), Reply::Login(expected), "{kind:?}");
        }
    }

    #[test]
    fn basic_credentials() {
        // Wrong credentials are challenged again, except where nothing is required.
        let mut s = situation(Anonymous, Via::Session, Policy::OneFactor, browser(ForwardAuth));
        s.failed_header = Some(Strategy::HeaderProxyAuthorization);
        assert_eq!(reply(&s), Reply::Challenge(Strategy::HeaderProxyAuthorization));
        s.decision.policy = Bypass;
        assert_eq!(reply(&s), Reply::Allow);
        // One factor by Basic is not enough for a two-factor rule: challenged, not sent
        // to a portal the client cannot use.
        let s = situation(OneFactor, Via::Header(BASIC), Policy::TwoFactor, browser(ForwardAuth));
        assert_eq!(reply(&s), Reply::Challenge(BASIC));
        let s = situation(OneFactor, Via::Header(BASIC), Policy::OneFactor, browser(AuthRequest));
        assert_eq!(reply(&s), Reply::Allow);
    }

    #[test]
    fn deny_rules_about_subjects_ask_anonymous_users_to_log_in() {
        let mut s = situation(Anonymous, Via::Session, Deny, browser(ForwardAuth));
        s.decision.has_subjects = true;
        assert_eq!(reply(&s), Reply::Login(LoginStatus::Found));
        let mut s = situation(OneFactor, Via::Session, Deny, browser(ForwardAuth));
        s.decision.has_subjects = true;
        assert_eq!(reply(&s), Reply::Forbidden);
    }
}
