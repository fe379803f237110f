//! Who is signed in. With ACL on, a change is made with the signed-in account's own ACL
//! keys, so the brokers' ACL judges it as it judges `mqadmin`; the dashboard holds no
//! power of its own. The keys live in memory only, under a random token the browser keeps
//! in an HttpOnly cookie.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore;

/// The cookie holding the session token.
pub const COOKIE: &str = "rmqrs_dashboard";
/// Sessions kept at most: a sign-in past it drops the oldest.
const MAX_SESSIONS: usize = 1024;
/// How long a session lasts without use.
const IDLE_EXPIRY: Duration = Duration::from_secs(8 * 3600);

#[derive(Clone)]
pub struct Account {
    pub access_key: String,
    pub secret_key: String,
    /// The brokers answered an admin-only request signed with these keys.
    pub admin: bool,
}

impl std::fmt::Debug for Account {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("access_key", &self.access_key)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

struct Entry {
    account: Account,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Starts a session for `account`; its token.
    pub fn sign_in(&self, account: Account) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut entries = self.entries.lock();
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.last_used) < IDLE_EXPIRY);
        if entries.len() >= MAX_SESSIONS {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(token, _)| token.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            token.clone(),
            Entry {
                account,
                last_used: now,
            },
        );
        token
    }

    /// The account of a live session.
    pub fn account(&self, token: &str) -> Option<Account> {
        let mut entries = self.entries.lock();
        let entry = entries.get_mut(token)?;
        let now = Instant::now();
        if now.duration_since(entry.last_used) >= IDLE_EXPIRY {
            entries.remove(token);
            return None;
        }
        entry.last_used = now;
        Some(entry.account.clone())
    }

    pub fn sign_out(&self, token: &str) {
        self.entries.lock().remove(token);
    }
}

/// The session token a request's `Cookie` header carries.
pub fn token_of(cookie_header: Option<&str>) -> Option<&str> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(key: &str) -> Account {
        Account {
            access_key: key.to_owned(),
            secret_key: "secret".to_owned(),
            admin: false,
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_signed_out_and_the_table_is_bounded() {
        let sessions = Sessions::default();
        let token = sessions.sign_in(account("ak"));
        assert_eq!(token.len(), 32);
        let header = format!("theme=dark; {COOKIE}={token}");
        let found = token_of(Some(&header)).and_then(|t| sessions.account(t));
        assert_eq!(found.map(|a| a.access_key), Some("ak".to_owned()));
        assert!(!format!("{:?}", sessions.account(&token)).contains("secret"));
        sessions.sign_out(&token);
        assert!(sessions.account(&token).is_none());
        assert_eq!(token_of(Some("theme=dark")), None);
        assert_eq!(token_of(None), None);

        let first = sessions.sign_in(account("first"));
        for i in 0..MAX_SESSIONS {
            sessions.sign_in(account(&format!("k{i}")));
        }
        assert!(sessions.entries.lock().len() <= MAX_SESSIONS);
        assert!(sessions.account(&first).is_none(), "the oldest made room");
    }
}
