//! Bans set by hand (`storage bans user|ip add`) or carried over from Authelia's
//! `banned_user`/`banned_ip`. Regulation's own bans are derived from the authentication
//! log and end by themselves; these are rows, and hold until they expire or are revoked.
//! Both kinds are read in the same step that reserves an attempt
//! ([`Storage::reserve_attempt`]), so a ban set on one instance holds on every other.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::bans;
use super::{Storage, StorageError};

/// The end of a ban set without an expiry: 9999-12-31T23:59:59Z. A real time rather than
/// a sentinel, so that "banned until" arithmetic and display stay ordinary.
pub const PERMANENT_BAN_UNTIL: i64 = 253_402_300_799;

/// What a ban is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanTarget {
    /// A username.
    User,
    /// A client address.
    Ip,
}

impl BanTarget {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
        }
    }
}

/// A ban set by hand or imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplicitBan {
    /// Row ID.
    pub id: i32,
    /// User or address.
    pub target: BanTarget,
    /// The username or the address.
    pub subject: String,
    /// When it was set (Unix seconds).
    pub created_at: i64,
    /// When it ends; `None` until revoked.
    pub expires_at: Option<i64>,
    /// Who set it: `cli`, `admin`, `authelia` (imported).
    pub source: String,
    /// Why, as its author said.
    pub reason: Option<String>,
}

impl ExplicitBan {
    /// When the ban ends, permanent bans at [`PERMANENT_BAN_UNTIL`].
    pub fn until(&self) -> i64 {
        self.expires_at.unwrap_or(PERMANENT_BAN_UNTIL)
    }
}

type Row = (i32, String, String, i64, Option<i64>, String, Option<String>);

fn decode((id, kind, subject, created_at, expires_at, source, reason): Row) -> ExplicitBan {
    let target = if kind == BanTarget::Ip.as_str() { BanTarget::Ip } else { BanTarget::User };
    ExplicitBan { id, target, subject, created_at, expires_at, source, reason }
}

/// Loads, on the open connection `$c`, the expiry of every ban in force at `$now` on the
/// username `$username` or the address `$ip` (`Vec<Option<i64>>`, `None` for a permanent
/// ban). A macro because the reservation runs it inside its transaction on whichever
/// backend's connection it holds.
macro_rules! explicit_ban_expiries {
    ($c:expr, $username:expr, $ip:expr, $now:expr) => {{
        use $crate::storage::schema::bans;
        bans::table
            .filter(bans::revoked_at.is_null())
            .filter(bans::expires_at.is_null().or(bans::expires_at.gt($now)))
            .filter(
                (bans::kind.eq("user").and(bans::subject.eq($username)))
                    .or(bans::kind.eq("ip").and(bans::subject.eq($ip))),
            )
            .select(bans::expires_at)
            .load::<Option<i64>>($c)
    }};
}
pub(super) use explicit_ban_expiries;

/// The end of the longest of the bans whose expiries are `expiries`.
pub(super) fn longest(expiries: &[Option<i64>]) -> Option<i64> {
    expiries.iter().map(|e| e.unwrap_or(PERMANENT_BAN_UNTIL)).max()
}

impl Storage {
    /// The end of the longest ban in force at `now` on `username` or `ip` (either may be
    /// empty: an empty subject matches no ban).
    pub async fn explicit_ban_until(&self, username: &str, ip: &str, now: i64) -> Result<Option<i64>, StorageError> {
        let (username, ip) = (username.to_string(), ip.to_string());
        self.run(move |conn| {
            async move {
                let expiries: Vec<Option<i64>> =
                    per_backend!(conn, |c| explicit_ban_expiries!(c, &username, &ip, now).await)?;
                Ok(longest(&expiries))
            }
            .boxed()
        })
        .await
    }

    /// Sets a ban.
    pub async fn ban_add(
        &self,
        target: BanTarget,
        subject: &str,
        expires_at: Option<i64>,
        source: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StorageError> {
        let values = (
            bans::kind.eq(target.as_str()),
            bans::subject.eq(truncate(subject, 100)),
            bans::created_at.eq(now),
            bans::expires_at.eq(expires_at),
            bans::source.eq(truncate(source, 16)),
            bans::reason.eq(reason.map(|r| truncate(r, 100))),
        );
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(bans::table).values(values.clone());
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Every ban in force at `now`, oldest first.
    pub async fn bans_in_force(&self, now: i64) -> Result<Vec<ExplicitBan>, StorageError> {
        self.run(move |conn| {
            async move {
                let query = bans::table
                    .filter(bans::revoked_at.is_null())
                    .filter(bans::expires_at.is_null().or(bans::expires_at.gt(now)))
                    .order(bans::id.asc())
                    .select((
                        bans::id,
                        bans::kind,
                        bans::subject,
                        bans::created_at,
                        bans::expires_at,
                        bans::source,
                        bans::reason,
                    ));
                let rows: Vec<Row> = per_backend!(conn, |c| query.load(c).await)?;
                Ok(rows.into_iter().map(decode).collect())
            }
            .boxed()
        })
        .await
    }

    /// Revokes every ban in force on `target` = `subject`; returns how many.
    pub async fn ban_revoke(&self, target: BanTarget, subject: &str, now: i64) -> Result<usize, StorageError> {
        let subject = subject.to_string();
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    bans::table
                        .filter(bans::kind.eq(target.as_str()))
                        .filter(bans::subject.eq(subject))
                        .filter(bans::revoked_at.is_null()),
                )
                .set(bans::revoked_at.eq(now));
                Ok(per_backend!(conn, |c| update.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
