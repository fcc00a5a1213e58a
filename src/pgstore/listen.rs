//! LISTEN/NOTIFY: a connection of its own listens on `mailgate_accounts` (the accounts
//! table's trigger notifies on every change, whoever makes it), and each notification bumps
//! [`changes`], which the server treats as a SIGHUP: the file and the store's accounts are read
//! again and swapped in for new sessions. A lost connection is made again every second; once
//! it is back, one more bump, since notifications sent meanwhile were lost (and one at the
//! first LISTEN, for changes between reading the accounts and listening).

use super::{DbError, Shared};
use crate::config::StoreConfig;
use futures_util::future::poll_fn;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;
use tracing::{info, warn};

const CHANNEL: &str = "mailgate_accounts";
const RETRY: Duration = Duration::from_secs(1);

fn channel() -> &'static (watch::Sender<u64>, watch::Receiver<u64>) {
    static CHANNEL: OnceLock<(watch::Sender<u64>, watch::Receiver<u64>)> = OnceLock::new();
    CHANNEL.get_or_init(|| watch::channel(0))
}

/// Changes when the store's accounts may have changed: a clone of the first receiver, which
/// never marks a value seen, so a change made before the caller asked is not missed.
pub fn changes() -> watch::Receiver<u64> {
    channel().1.clone()
}

fn bump() {
    channel().0.send_modify(|n| *n = n.wrapping_add(1));
}

/// Starts listening for account changes of the store of `settings` (once per process), until
/// the process ends.
pub fn listen(settings: &StoreConfig) {
    static STARTED: OnceLock<()> = OnceLock::new();
    let settings = settings.clone();
    STARTED.get_or_init(|| {
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match listen_once(&settings, &mut first).await {
                    Ok(()) => warn!("the shared store's notification connection ended; connecting again"),
                    Err(e) => warn!(error = %e, "cannot listen for account changes in the shared store; trying again every {} s", RETRY.as_secs()),
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    });
}

/// One connection's life: LISTEN, then a bump per notification until it ends.
async fn listen_once(settings: &StoreConfig, first: &mut bool) -> Result<(), DbError> {
    let shared = Shared::open(settings).await?;
    let tls = super::tls::MakeRustls(settings.tls.clone());
    let (client, mut connection) = super::bounded("connecting", async {
        shared.pg.connect(tls).await.map_err(|e| DbError::Connect {
            at: super::place(&shared.pg),
            reason: super::reason(&e),
        })
    })
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    let listened = super::bounded("listening", async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| DbError::query("listening", &e))
    })
    .await;
    if let Err(e) = listened {
        driver.abort();
        return Err(e);
    }
    // Changes made between reading the accounts and this LISTEN (at start, or while the
    // connection was down) sent notifications nobody heard: one reload covers them.
    if std::mem::take(first) {
        info!("listening for account changes in the shared store");
    } else {
        info!("listening for account changes in the shared store again");
    }
    bump();
    while rx.recv().await.is_some() {
        bump();
    }
    drop(client);
    Ok(())
}
