//! The limits on clients that have not logged in: connections per IP address (nginx's
//! `limit_conn`, Postfix's `smtpd_client_connection_count_limit`; they count after login
//! too), the share of slots pre-login clients may take (`max_preauth_sessions`), and how long
//! a read may wait before login (the silence time-out within the whole-phase deadline).
//!
//! Pre-login clients never take every slot: when `max_preauth_sessions` of them are waiting
//! and another connects, the oldest is told to leave, as Dovecot's login processes close the
//! oldest unauthenticated client when their connection queue is full. So a flood of idle
//! connections can delay a real client's login only by pushing it out before it logs in,
//! never lock out everyone, and the `max_sessions - max_preauth_sessions` slots beyond it stay
//! for clients that have logged in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Which pre-login limit bounds the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `preauth_timeout_secs`: silence between two reads.
    Silence,
    /// `preauth_deadline_secs`: the whole pre-login phase.
    Deadline,
}

/// How long the next pre-login read may wait (`silence`, unless the deadline is nearer) and
/// which limit that is.
pub fn wait(silence: Duration, deadline: Instant) -> (Duration, Limit) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < silence {
        (left, Limit::Deadline)
    } else {
        (silence, Limit::Silence)
    }
}

/// The counts shared by the accept loop and every session.
pub struct Admission {
    max_preauth: usize,
    max_per_ip: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    per_ip: HashMap<IpAddr, usize>,
    /// Sessions not logged in yet, by session id (ids grow, so the first is the oldest), with
    /// the signal that tells one to make room.
    preauth: BTreeMap<u64, Arc<Notify>>,
    /// Sessions told to leave that have not ended yet: their slots are on their way.
    leaving: HashSet<u64>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max_connections_per_ip` connections from this address are open.
    #[error("too many connections from this address")]
    PerIp,
}

impl Admission {
    /// Limits from `[server]`; `max_per_ip == 0` means no per-address limit.
    pub fn new(max_preauth: usize, max_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_preauth: max_preauth.max(1),
            max_per_ip,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is counts only, consistent after every statement: a panic elsewhere while
        // it was held cannot have left it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits session `id` from `ip` as a pre-login client, telling the oldest pre-login
    /// client to leave if they are at `max_preauth_sessions`.
    pub fn admit(self: &Arc<Self>, id: u64, ip: IpAddr) -> Result<Ticket, Refused> {
        let mut state = self.state();
        let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip > 0 && from_ip >= self.max_per_ip {
            return Err(Refused::PerIp);
        }
        state.per_ip.insert(ip, from_ip + 1);
        while state.preauth.len() >= self.max_preauth {
            let Some(oldest) = state.preauth.keys().next().copied() else {
                break;
            };
            state.evict(oldest);
        }
        let evict = Arc::new(Notify::new());
        state.preauth.insert(id, evict.clone());
        Ok(Ticket {
            admission: self.clone(),
            id,
            ip,
            evict,
        })
    }

    /// Every slot is taken and session `id` needs one: unless a session already told to
    /// leave will free one, tells the oldest pre-login session other than `id` to leave.
    /// `false` when no slot is coming, every other session having logged in.
    pub fn make_room(&self, id: u64) -> bool {
        let mut state = self.state();
        if !state.leaving.is_empty() {
            return true;
        }
        let Some(oldest) = state.preauth.keys().copied().find(|&k| k != id) else {
            return false;
        };
        state.evict(oldest);
        true
    }

    /// Connections open from `ip` (for tests and logs).
    pub fn from_ip(&self, ip: IpAddr) -> usize {
        self.state().per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Sessions not logged in yet.
    pub fn preauth(&self) -> usize {
        self.state().preauth.len()
    }
}

impl State {
    /// Tells pre-login session `id` to leave; it no longer counts as pre-login.
    fn evict(&mut self, id: u64) {
        if let Some(notify) = self.preauth.remove(&id) {
            // Stored if the session is not waiting right now: it sees it at its next wait.
            notify.notify_one();
            self.leaving.insert(id);
        }
    }
}

/// One admitted connection; dropping it gives its place back.
pub struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    ip: IpAddr,
    evict: Arc<Notify>,
}

impl Ticket {
    /// The client has logged in: it no longer counts against `max_preauth_sessions`.
    pub fn logged_in(&self) {
        let mut state = self.admission.state();
        state.preauth.remove(&self.id);
        // Told to leave while its login was under way, it stays: no slot is coming from it.
        state.leaving.remove(&self.id);
    }

    /// Resolves when a newer pre-login client needs this one's place. Cancel-safe.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// [`Ticket::evicted`] for a session that may not be counted: without a ticket, never.
pub async fn evicted(ticket: &Option<Ticket>) {
    match ticket {
        Some(t) => t.evicted().await,
        None => std::future::pending().await,
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.state();
        state.preauth.remove(&self.id);
        state.leaving.remove(&self.id);
        if let Some(n) = state.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn per_ip_limit_counts_open_connections() {
        let adm = Admission::new(10, 2);
        let a1 = adm.admit(1, A).expect("first");
        let _a2 = adm.admit(2, A).expect("second");
        assert_eq!(adm.admit(3, A).err(), Some(Refused::PerIp));
        let _b = adm.admit(4, B).expect("another address");
        // Logging in keeps the connection counted against its address.
        a1.logged_in();
        assert_eq!(adm.admit(5, A).err(), Some(Refused::PerIp));
        drop(a1);
        let _a3 = adm.admit(6, A).expect("a place was given back");
        assert_eq!(adm.from_ip(A), 2);
    }

    #[tokio::test]
    async fn a_full_preauth_queue_evicts_the_oldest_only() {
        let adm = Admission::new(2, 0);
        let t1 = adm.admit(1, A).expect("1");
        let t2 = adm.admit(2, A).expect("2");
        let t3 = adm.admit(3, B).expect("3");
        assert_eq!(adm.preauth(), 2);
        // The oldest was told (the notice waits for it); the others were not.
        t1.evicted().await;
        tokio::select! {
            biased;
            _ = t2.evicted() => panic!("a newer session was evicted"),
            _ = std::future::ready(()) => {}
        }
        // A logged-in session is out of the queue and never evicted.
        t2.logged_in();
        let _t4 = adm.admit(4, B).expect("4");
        assert_eq!(adm.preauth(), 2);
        drop(t3);
        assert_eq!(adm.preauth(), 1);
        // Session 1 was told to leave and has not yet: its slot is awaited, no one else is
        // pushed out.
        assert!(adm.make_room(4));
        assert_eq!(adm.preauth(), 1);
        drop(t1);
        // Now no one else waits to log in.
        assert!(!adm.make_room(4));
    }
}
