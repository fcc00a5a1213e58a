//! The listening sockets: which ones the configuration asks for, binding them, accepting on
//! all of them at once, and what an accepted connection tells about its client.
//!
//! A listener kind is one row of [`configured`]: a protocol, how its connections start, and
//! the `[server]` key that places it.

use super::ServerError;
use crate::config::ServerConfig;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use tokio::net::{TcpListener, TcpStream};

/// Which protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// IMAP (handed to [`crate::imap::serve`]).
    Imap,
    /// SMTP submission (handed to [`crate::smtp::serve`]).
    Smtp,
}

impl Proto {
    /// The `protocol` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Smtp => "smtp",
        }
    }
}

/// How a listener's connections start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// Plaintext, upgraded when the client asks for STARTTLS.
    Plain,
    /// TLS from the first byte.
    Implicit,
}

/// A listener the configuration asks for, before it is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The protocol it speaks.
    pub proto: Proto,
    /// How its connections start.
    pub tls: Tls,
    /// Its `[server]` key, named in errors; without `_listen`, its name in the log.
    pub key: &'static str,
    /// Where it binds.
    pub addr: SocketAddr,
}

/// The listeners `server` asks for, in the order they are logged (the test support waits for
/// the IMAP and SMTP lines, in that order, before the others).
pub fn configured(server: &ServerConfig) -> Vec<Spec> {
    let rows = [
        (
            Proto::Imap,
            Tls::Plain,
            "imap_listen",
            Some(server.imap_listen),
        ),
        (
            Proto::Smtp,
            Tls::Plain,
            "smtp_listen",
            Some(server.smtp_listen),
        ),
        (
            Proto::Imap,
            Tls::Implicit,
            "imaps_listen",
            server.imaps_listen,
        ),
        (
            Proto::Smtp,
            Tls::Implicit,
            "smtps_listen",
            server.smtps_listen,
        ),
    ];
    rows.into_iter()
        .filter_map(|(proto, tls, key, addr)| {
            addr.map(|addr| Spec {
                proto,
                tls,
                key,
                addr,
            })
        })
        .collect()
}

/// A bound listener.
pub struct Listener {
    /// What it was bound for.
    pub spec: Spec,
    socket: TcpListener,
}

/// Where an accepted client comes from, as far as the gateway may trust it.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client counts as local: only a local client may log in without TLS.
    pub local: bool,
    /// The port the client connected to.
    pub local_port: u16,
}

impl Listener {
    /// Binds `spec`.
    pub async fn bind(spec: Spec) -> Result<Listener, ServerError> {
        let socket = TcpListener::bind(spec.addr)
            .await
            .map_err(|error| ServerError::Bind {
                addr: spec.addr,
                what: spec.key,
                error,
            })?;
        Ok(Listener { spec, socket })
    }

    /// Its name in the log (`imap`, `smtps`, …).
    pub fn name(&self) -> &'static str {
        self.spec
            .key
            .strip_suffix("_listen")
            .unwrap_or(self.spec.key)
    }

    /// The address it is bound to (the port chosen by the system for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Who an accepted connection's client is. A plain TCP listener knows only the socket's
    /// two ends; a listener behind a proxy would take both from the proxy's header instead.
    pub fn client(&self, stream: &TcpStream, peer: SocketAddr) -> Client {
        client(peer, stream.local_addr().ok())
    }
}

/// The one place that decides whether a client is local: it reached us on a loopback address,
/// so nothing it sends crosses a network (local clients often cannot do TLS to localhost).
pub fn client(peer: SocketAddr, local: Option<SocketAddr>) -> Client {
    Client {
        peer,
        local: local.is_some_and(|a| a.ip().is_loopback()),
        local_port: local.map_or(0, |a| a.port()),
    }
}

/// The next connection on any of `listeners`, with the index of the one it came on. The
/// listeners are asked in turn from `*next` on, so a busy one cannot starve the others.
pub async fn accept_any(
    listeners: &[Listener],
    next: &mut usize,
) -> (usize, io::Result<(TcpStream, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        let n = listeners.len();
        for k in 0..n {
            let i = (*next + k) % n;
            if let Poll::Ready(r) = listeners[i].socket.poll_accept(cx) {
                *next = (i + 1) % n;
                return Poll::Ready((i, r));
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_destination_is_local() {
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let c = client(peer, Some("127.0.0.1:1143".parse().unwrap()));
        assert!(c.local);
        assert_eq!(c.local_port, 1143);
        assert!(client(peer, Some("[::1]:1587".parse().unwrap())).local);
        let remote = client(peer, Some("192.0.2.1:1143".parse().unwrap()));
        assert!(!remote.local);
        assert!(!client(peer, None).local);
        assert_eq!(client(peer, None).local_port, 0);
    }

    #[test]
    fn listeners_come_in_log_order_and_only_when_configured() {
        let text = "[server]\nimap_listen = \"127.0.0.1:1143\"\nsmtp_listen = \"127.0.0.1:1587\"\n";
        let mut server =
            crate::config::Config::parse_server(text, std::path::Path::new("t.toml")).unwrap();
        let kinds = |s: &ServerConfig| {
            configured(s)
                .iter()
                .map(|l| (l.proto, l.tls, l.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&server),
            [
                (Proto::Imap, Tls::Plain, "imap_listen"),
                (Proto::Smtp, Tls::Plain, "smtp_listen")
            ]
        );
        server.smtps_listen = Some("127.0.0.1:1465".parse().unwrap());
        server.imaps_listen = Some("127.0.0.1:1993".parse().unwrap());
        let all = kinds(&server);
        assert_eq!(all[2], (Proto::Imap, Tls::Implicit, "imaps_listen"));
        assert_eq!(all[3], (Proto::Smtp, Tls::Implicit, "smtps_listen"));
    }
}
