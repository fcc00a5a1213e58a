//! The listening sockets: which ones the configuration asks for, binding them, accepting on
//! all of them at once, and what an accepted connection tells about its client (from the
//! socket, or behind a proxy from its PROXY header: [`client`]).
//!
//! A listener kind is one row of [`configured`]: a protocol, how its connections start, and
//! the `[server]` key that places it.

use super::ServerError;
use crate::config::ServerConfig;
use crate::net::proxy_header::Addresses;
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

impl Spec {
    /// Its name in the log and in `[server.proxy_protocol] listeners` (`imap`, `smtps`, …).
    pub fn name(&self) -> &'static str {
        self.key.strip_suffix("_listen").unwrap_or(self.key)
    }
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
    /// The client's address: the socket's peer, or behind a proxy the address its PROXY
    /// header names (used for throttling, the per-address limit, logs and metrics).
    pub peer: SocketAddr,
    /// Whether the client counts as local: only a local client may log in without TLS.
    pub local: bool,
    /// The port the client connected to (behind a proxy, the proxy's port).
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
        self.spec.name()
    }

    /// The address it is bound to (the port chosen by the system for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Who an accepted connection's client is: `peer` is the socket's other end, `proxied`
    /// what the PROXY header said (on a listener behind a proxy; see [`client`]).
    pub fn client(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
        proxied: Option<&Addresses>,
    ) -> Client {
        client(peer, stream.local_addr().ok(), proxied)
    }
}

/// The one place that decides who the client is and whether it is local, from the socket's
/// two ends (`peer`, `local`) and, behind a proxy, the PROXY header's addresses.
///
/// Without a proxy, a client is local when it reached us on a loopback address: nothing it
/// sends crosses a network (local clients often cannot do TLS to localhost). Behind a proxy
/// the socket is the proxy's, so its loopback end says nothing of the client: the client is
/// local only when the header's source is a loopback address *and* the proxy reached us on
/// loopback (the password crosses no network on either hop). A header that names no client
/// (`LOCAL`, `UNKNOWN`) is the proxy's own connection, served as coming from the proxy and
/// never local.
pub fn client(peer: SocketAddr, local: Option<SocketAddr>, proxied: Option<&Addresses>) -> Client {
    let on_loopback = local.is_some_and(|a| a.ip().is_loopback());
    let local_port = local.map_or(0, |a| a.port());
    match proxied {
        None => Client {
            peer,
            local: on_loopback,
            local_port,
        },
        Some(Addresses::Unknown) => Client {
            peer: canonical(peer),
            local: false,
            local_port,
        },
        Some(&Addresses::Tcp {
            source,
            destination,
        }) => {
            let source = canonical(source);
            Client {
                peer: source,
                local: on_loopback && source.ip().is_loopback(),
                local_port: destination.port(),
            }
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) written as IPv4, so that it
/// is throttled, logged and judged loopback as the IPv4 client it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
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

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn tcp(source: &str, destination: &str) -> Addresses {
        Addresses::Tcp {
            source: addr(source),
            destination: addr(destination),
        }
    }

    #[test]
    fn only_a_loopback_destination_is_local() {
        let peer = addr("192.0.2.7:40000");
        let c = client(peer, Some(addr("127.0.0.1:1143")), None);
        assert!(c.local);
        assert_eq!(c.local_port, 1143);
        assert!(client(peer, Some(addr("[::1]:1587")), None).local);
        let remote = client(peer, Some(addr("192.0.2.1:1143")), None);
        assert!(!remote.local);
        assert!(!client(peer, None, None).local);
        assert_eq!(client(peer, None, None).local_port, 0);
    }

    /// A proxy on loopback connects over loopback for every client: only the header's source
    /// decides, and then only when the proxy's hop is loopback too.
    #[test]
    fn behind_a_proxy_the_header_source_decides() {
        let proxy = addr("127.0.0.1:50000");
        let on_loopback = Some(addr("127.0.0.1:1143"));
        let remote = tcp("192.0.2.7:40000", "127.0.0.1:143");
        let c = client(proxy, on_loopback, Some(&remote));
        assert!(!c.local);
        assert_eq!((c.peer, c.local_port), (addr("192.0.2.7:40000"), 143));
        let here = tcp("127.0.0.3:40001", "127.0.0.1:143");
        let c = client(proxy, on_loopback, Some(&here));
        assert!(c.local);
        assert_eq!(c.peer, addr("127.0.0.3:40001"));
        let six = tcp("[::1]:40002", "[::1]:143");
        assert!(client(proxy, on_loopback, Some(&six)).local);
        // The proxy on another machine: its client's loopback is not ours.
        let lan_proxy = addr("10.0.0.4:50000");
        let c = client(lan_proxy, Some(addr("10.0.0.5:1143")), Some(&here));
        assert!(!c.local);
        assert_eq!(c.peer, addr("127.0.0.3:40001"));
        // An IPv4 client written as IPv6 is the IPv4 client.
        let mapped = tcp("[::ffff:127.0.0.2]:40003", "[::ffff:127.0.0.1]:143");
        let c = client(proxy, on_loopback, Some(&mapped));
        assert_eq!(c.peer, addr("127.0.0.2:40003"));
        assert!(c.local);
        let mapped_remote = tcp("[::ffff:192.0.2.7]:40004", "[::1]:143");
        assert!(!client(proxy, on_loopback, Some(&mapped_remote)).local);
    }

    /// LOCAL and UNKNOWN headers (health checks): served as the proxy, never local.
    #[test]
    fn a_header_without_a_client_is_the_proxy_and_never_local() {
        let proxy = addr("127.0.0.1:50000");
        let c = client(
            proxy,
            Some(addr("127.0.0.1:1143")),
            Some(&Addresses::Unknown),
        );
        assert!(!c.local);
        assert_eq!((c.peer, c.local_port), (proxy, 1143));
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
        // `[server.proxy_protocol] listeners` takes exactly these names.
        let names: Vec<_> = configured(&server).iter().map(Spec::name).collect();
        assert_eq!(names, crate::config::PROXY_LISTENER_NAMES);
    }
}
