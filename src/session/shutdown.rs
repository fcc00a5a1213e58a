//! The gateway-wide "stop now" signal every session listens to.

use tokio::sync::watch;

/// The sending half, held by the server: [`Trigger::fire`] tells every session to end.
pub struct Trigger(watch::Sender<bool>);

/// The receiving half, one clone per session. It fires once the server fires the trigger or
/// drops it, so a session never waits on a server that is gone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and its first receiver.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Tells every session to end.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Waits until shutdown is asked for (or the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|&s| s).await;
    }

    /// Whether the trigger fired or went away since this receiver last saw its value: an
    /// atomic read, without the lock a poll of [`Shutdown::wait`] takes. Asking this never
    /// marks the value seen, so once true it stays true.
    pub fn may_have_fired(&self) -> bool {
        self.0.has_changed().unwrap_or(true)
    }

    /// Whether shutdown has been asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_on_trigger_and_on_drop() {
        let (trigger, mut rx) = channel();
        let mut other = rx.clone();
        assert!(!rx.is_set());
        assert!(!other.may_have_fired());
        trigger.fire();
        assert!(other.may_have_fired());
        rx.wait().await;
        assert!(other.is_set());
        other.wait().await;

        let (trigger, mut rx) = channel();
        let watcher = rx.clone();
        assert!(!watcher.may_have_fired());
        drop(trigger);
        assert!(watcher.may_have_fired());
        rx.wait().await;
        assert!(
            watcher.may_have_fired(),
            "waiting on another receiver marks nothing here"
        );
    }
}
