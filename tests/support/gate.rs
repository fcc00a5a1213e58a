//! The usual set-up of a test: a real Dovecot upstream and the real mailgate in front of it,
//! started from a [`GateConfig`]. Tests add what they need to it in their own `impl Gate`
//! blocks (a test binary compiles this module as its own, so it may).

use std::any::Any;
use std::net::SocketAddr;

use super::config::GateConfig;
use super::imap_client::{quote, tagged_status, ImapClient};
use super::scrape::{fetch, Scrape};
use super::{Dovecot, Mailgate, Pki};

pub struct Gate {
    /// First, so it stops before its upstream does.
    pub mailgate: Mailgate,
    pub dovecot: Dovecot,
    /// The test PKI, when the config points at its files.
    pub pki: Option<Pki>,
    /// Whatever else must live as long as the gate (e.g. a port that refuses connections).
    pub held: Vec<Box<dyn Any + Send + Sync>>,
}

impl Gate {
    /// Starts mailgate on `config` in front of `dovecot`.
    pub fn start(dovecot: Dovecot, config: &GateConfig) -> Gate {
        Gate::start_with_env(dovecot, config, &[])
    }

    pub fn start_with_env(dovecot: Dovecot, config: &GateConfig, env: &[(&str, &str)]) -> Gate {
        let mailgate = config.start_with_env(env);
        Gate {
            mailgate,
            dovecot,
            pki: None,
            held: Vec::new(),
        }
    }

    /// Keeps the PKI whose files the config names.
    pub fn with_pki(mut self, pki: Pki) -> Gate {
        self.pki = Some(pki);
        self
    }

    /// Keeps `thing` alive as long as the gate.
    pub fn hold(mut self, thing: impl Any + Send + Sync) -> Gate {
        self.held.push(Box::new(thing));
        self
    }

    /// A client connection to mailgate (greeting read).
    pub fn connect(&self) -> ImapClient {
        self.mailgate.connect()
    }

    /// A client logged in through mailgate (`L1 LOGIN "email" "password"`, asserted OK).
    pub fn login_as(&self, email: &str, password: &str) -> ImapClient {
        let mut c = self.connect();
        let r = c.command("L1", &format!("LOGIN {} {}", quote(email), quote(password)));
        assert!(
            tagged_status(&r, "L1").starts_with("OK"),
            "{}",
            String::from_utf8_lossy(&r)
        );
        c
    }

    /// A direct connection to Dovecot, logged in.
    pub fn direct_as(&self, user: &str, password: &str) -> ImapClient {
        self.dovecot.login(user, password)
    }

    /// The `/metrics` listener (the config has a `[metrics]` table).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.mailgate
            .metrics_addr
            .expect("mailgate has a metrics listener")
    }

    /// One scrape of `/metrics`, or `None` if it could not be fetched or parsed.
    pub fn try_scrape(&self) -> Option<Scrape> {
        Scrape::parse(fetch(self.mailgate.metrics_addr?).ok()?).ok()
    }
}
