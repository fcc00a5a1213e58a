//! The least an *event-loop* relay can do, beside [`super::minimal_relay`]'s blocking one: the
//! same process (this binary again, with `--event-loop`), the same sockets (TCP_NODELAY, TLS
//! towards a TLS upstream with the same rustls config), but tokio's multi-threaded runtime with
//! its default workers, as mailgate runs, and `tokio::io::copy_bidirectional` per connection:
//! no parsing, no time-outs, no rules. What it adds over the blocking relay is the price of
//! the event loop itself on this machine (an `epoll_wait` before each read, the scheduler's
//! wake-up of the task); mailgate's figures beside it show what its own work costs on top.

use std::net::SocketAddr;
use std::sync::Arc;

/// Serves like [`super::minimal_relay::serve`] (address on stdout, up to 10,000 connections,
/// ends when stdin closes), on a tokio runtime.
pub fn serve(target: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the event-loop relay's runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        super::minimal_relay::announce(listener.local_addr().expect("addr"));
        let tls = tls.map(tokio_rustls::TlsConnector::from);
        for _ in 0..10_000 {
            let Ok((client, _)) = listener.accept().await else {
                break;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                for s in [&client, &server] {
                    let _ = s.set_nodelay(true);
                }
                let mut client = client;
                match tls {
                    None => {
                        let mut server = server;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    Some(tls) => {
                        let Ok(name) = rustls::pki_types::ServerName::try_from("localhost") else {
                            return;
                        };
                        let Ok(mut server) = tls.connect(name, server).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }
            });
        }
    });
}
