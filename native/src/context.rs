//! Request context across batches: request_id -> the first user_id and session_id it named.
//!
//! Bounded both ways: when the map grows past `max_entries`, entries first seen more than
//! `max_age_us` ago go, then the oldest until three quarters of `max_entries` remain.

use rustc_hash::FxHashMap as HashMap;

/// What a request named, in one allocation: `text` is the user id followed by the session id.
pub struct Entry {
    text: Box<str>,
    user_len: u32,
    has_user: bool,
    has_session: bool,
    seen_us: i64,
}

impl Entry {
    pub fn user_id(&self) -> Option<&str> {
        self.has_user.then(|| &self.text[..self.user_len as usize])
    }

    pub fn session_id(&self) -> Option<&str> {
        self.has_session.then(|| &self.text[self.user_len as usize..])
    }
}

pub struct ContextMap {
    entries: HashMap<Box<str>, Entry>,
    pub max_entries: usize,
    pub max_age_us: i64,
}

impl ContextMap {
    pub fn new(max_entries: usize, max_age_us: i64) -> Self {
        ContextMap { entries: HashMap::default(), max_entries, max_age_us }
    }

    pub fn get(&self, request_id: &str) -> Option<&Entry> {
        self.entries.get(request_id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries = HashMap::default();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Remember a request the map lacks; a request already known keeps what it first named.
    pub fn remember(&mut self, request_id: &str, user_id: Option<&str>, session_id: Option<&str>, seen_us: i64) {
        if user_id.is_none() && session_id.is_none() || self.entries.contains_key(request_id) {
            return;
        }
        let user = user_id.unwrap_or("");
        let Ok(user_len) = u32::try_from(user.len()) else { return };
        let text = [user, session_id.unwrap_or("")].concat().into_boxed_str();
        let entry = Entry { text, user_len, has_user: user_id.is_some(), has_session: session_id.is_some(), seen_us };
        self.entries.insert(request_id.into(), entry);
    }

    /// Apply the bounds after a batch was remembered.
    pub fn evict(&mut self, now_us: i64) {
        if self.entries.len() <= self.max_entries {
            return;
        }
        let cutoff = now_us - self.max_age_us;
        self.entries.retain(|_, e| e.seen_us >= cutoff);
        let keep = self.max_entries * 3 / 4;
        if keep == 0 {
            self.entries.clear();
            return;
        }
        if self.entries.len() > keep {
            let mut seen: Vec<i64> = self.entries.values().map(|e| e.seen_us).collect();
            let nth = seen.len() - keep;
            seen.select_nth_unstable(nth);
            let threshold = seen[nth];
            // Entries strictly older than the threshold go; ties at it are trimmed to `keep`.
            self.entries.retain(|_, e| e.seen_us >= threshold);
            let mut excess = self.entries.len().saturating_sub(keep);
            if excess > 0 {
                self.entries.retain(|_, e| {
                    if excess > 0 && e.seen_us == threshold {
                        excess -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_naming_wins_and_bounds_hold() {
        let mut m = ContextMap::new(4, 1_000);
        m.remember("r1", Some("u1"), None, 0);
        m.remember("r1", Some("u2"), Some("s"), 1);
        assert_eq!(m.get("r1").unwrap().user_id(), Some("u1"));
        assert_eq!(m.get("r1").unwrap().session_id(), None);
        m.remember("r0", None, Some("s0"), 0);
        assert_eq!((m.get("r0").unwrap().user_id(), m.get("r0").unwrap().session_id()), (None, Some("s0")));
        for i in 2..8 {
            m.remember(&format!("r{i}"), Some("u"), None, i);
        }
        m.evict(8);
        assert_eq!(m.len(), 3);
        assert!(m.get("r7").is_some() && m.get("r1").is_none() && m.get("r0").is_none());
    }

    #[test]
    fn a_tiny_bound_still_holds() {
        let mut m = ContextMap::new(1, 1_000);
        m.remember("a", Some("u"), None, 0);
        m.remember("b", Some("u"), None, 0);
        m.evict(0);
        assert!(m.len() <= 1);
    }
}
