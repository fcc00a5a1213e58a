//! One accepted connection: its session slot (making room among pre-login sessions when
//! every slot is taken), its session, or its refusal.

use super::listener::{Client, Proto, Tls};
use super::ROOM_WAIT;
use crate::config::Config;
use crate::imap;
use crate::preauth::{Admission, Ticket};
use crate::session::Session;
use crate::smtp;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// Which limit refused a connection.
#[derive(Clone, Copy)]
pub enum Refusal {
    /// `max_sessions`.
    Full,
    /// `max_connections_per_ip`.
    PerIp,
}

/// One accepted connection, admitted against `max_connections_per_ip`, before it has a slot.
pub struct Conn {
    pub proto: Proto,
    pub tls: Tls,
    pub stream: TcpStream,
    pub client: Client,
    pub id: u64,
    pub ticket: Ticket,
    pub config: Arc<Config>,
    pub shutdown: crate::session::Shutdown,
    pub limit: Arc<Semaphore>,
    pub admission: Arc<Admission>,
}

/// Takes a session slot for `c` and serves it. With every slot taken, the oldest pre-login
/// session is told to leave and its slot is awaited (bounded), so that clients which have not
/// logged in never keep a new one out; only when every session has logged in is it refused.
pub async fn connection(c: Conn) {
    let permit = match c.limit.clone().try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) if c.admission.make_room(c.id) => {
            tokio::select! {
                p = tokio::time::timeout(ROOM_WAIT, c.limit.clone().acquire_owned()) => {
                    p.ok().and_then(Result::ok)
                }
                _ = c.ticket.evicted() => None,
            }
        }
        Err(_) => None,
    };
    let Some(permit) = permit else {
        let max = c.config.server.max_sessions;
        warn!(peer = %c.client.peer, max, "session limit reached; connection refused");
        crate::metrics::session_refused(c.proto.label());
        refuse(c.stream, c.proto, c.tls, Refusal::Full).await;
        return;
    };
    serve(c, permit).await;
}

/// Runs the session of an admitted connection that holds a slot.
async fn serve(c: Conn, permit: OwnedSemaphorePermit) {
    let active = crate::metrics::ActiveSession::new(c.proto.label());
    let session = Session {
        id: c.id,
        peer: c.client.peer,
        loopback: c.client.local,
        tls: c.tls == Tls::Implicit,
        config: c.config,
        shutdown: c.shutdown,
        ticket: Some(c.ticket),
        accepted: std::time::Instant::now(),
        local_port: c.client.local_port,
    };
    // The task's future is as large as its largest branch, and an idle IMAP session lives for
    // hours: SMTP's larger, short-lived session future goes on the heap, so IMAP sessions do
    // not carry its size.
    match c.proto {
        Proto::Imap => imap::serve(c.stream, session).await,
        Proto::Smtp => Box::pin(smtp::serve(c.stream, session)).await,
    }
    drop(active);
    drop(permit);
}

/// [`refuse`] in its own task, so the accept loop never waits on a refused client.
pub fn refuse_later(stream: TcpStream, proto: Proto, tls: Tls, why: Refusal) {
    tokio::spawn(refuse(stream, proto, tls, why));
}

/// Greets a connection over a limit with BYE (IMAP) or 421 (SMTP) and closes it. A TLS client
/// cannot read a plaintext answer, and a handshake just to refuse would cost more than the
/// refusal saves: it is closed without a word.
async fn refuse(mut stream: TcpStream, proto: Proto, tls: Tls, why: Refusal) {
    if tls == Tls::Implicit {
        return;
    }
    let text: &[u8] = match (proto, why) {
        (Proto::Imap, Refusal::Full) => b"* BYE Too many connections, try again later.\r\n",
        (Proto::Smtp, Refusal::Full) => b"421 4.3.2 Too many connections, try again later\r\n",
        (Proto::Imap, Refusal::PerIp) => {
            b"* BYE Too many connections from your address, try again later.\r\n"
        }
        (Proto::Smtp, Refusal::PerIp) => {
            b"421 4.7.0 Too many connections from your address, try again later\r\n"
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(text)).await;
    let _ = stream.shutdown().await;
}
