//! argon2 runs on a fixed set of verifier threads, one per core, each keeping one memory block
//! for its whole life.
//!
//! Why not the blocking pool. argon2's working memory (19 MiB with the default parameters) freed
//! on whichever of tokio's up to 512 blocking threads ran it stays in that thread's malloc arena:
//! a burst of logins left hundreds of MB resident for good. Here the memory is allocated once
//! per verifier thread and reused, so it is bounded by the number of cores by construction.
//! A hash whose parameters need more than the default block gets a temporary one for that run
//! (only an administrator can put such a hash in the config).
//!
//! The slots ([`slot`]) are as many as the threads: a login holds one while its job runs, so
//! jobs never pile up in the channel, and the caller can look at the login cache and the
//! throttle once more after waiting for its turn.

use crate::secret::Secret;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{oneshot, Semaphore, SemaphorePermit};
use tracing::{debug, error};

/// What a verifier thread is asked to do.
enum Task {
    /// Check the password against this PHC string.
    Check(String),
    /// Run argon2 with the default parameters and throw the result away: an unknown user must
    /// cost what a wrong password costs.
    Burn,
}

struct Job {
    task: Task,
    password: Secret,
    reply: oneshot::Sender<bool>,
}

struct Pool {
    jobs: mpsc::Sender<Job>,
    slots: Semaphore,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The pool, started on first use; `None` if not one thread could be started.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads() {
            let rx = rx.clone();
            match std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx))
            {
                Ok(_) => started += 1,
                Err(e) => error!(error = %e, "cannot start a password verifier thread"),
            }
        }
        (started > 0).then(|| Pool {
            jobs: tx,
            slots: Semaphore::new(started),
        })
    })
    .as_ref()
}

/// A verifier thread: takes jobs until the process ends, always with the same memory.
fn work(rx: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = vec![Block::new(); Params::DEFAULT.block_count()];
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let ok = run(&job.task, &job.password, &mut memory);
        // The login may have been given up meanwhile; nobody to tell then.
        let _ = job.reply.send(ok);
    }
}

/// A random salt made once, for [`Task::Burn`].
fn burn_salt() -> &'static [u8; 16] {
    static SALT: OnceLock<[u8; 16]> = OnceLock::new();
    SALT.get_or_init(rand::random)
}

fn run(task: &Task, password: &Secret, memory: &mut [Block]) -> bool {
    let pwd = password.expose().as_bytes();
    match task {
        Task::Burn => {
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            let _ = Argon2::default().hash_password_into_with_memory(
                pwd,
                burn_salt(),
                &mut out,
                &mut *memory,
            );
            debug!("argon2 run (unknown user)");
            false
        }
        Task::Check(hash) => {
            let ok = check(hash, pwd, memory);
            debug!(ok, "argon2 run");
            ok
        }
    }
}

/// Whether `pwd` matches the PHC string `hash`, computed in `memory` when it is large enough.
fn check(hash: &str, pwd: &[u8], memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let done = if needed <= memory.len() {
        argon.hash_password_into_with_memory(pwd, salt, &mut out, &mut *memory)
    } else {
        argon.hash_password_into(pwd, salt, &mut out)
    };
    // `Output`'s equality is constant-time.
    done.is_ok()
        && argon2::password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A turn at the verifiers (one per verifier thread); `None` without verifier threads.
pub async fn slot() -> Option<SemaphorePermit<'static>> {
    pool()?.slots.acquire().await.ok()
}

async fn submit(task: Task, password: Secret) -> bool {
    let Some(pool) = pool() else {
        // No thread could be started: refuse rather than run argon2 somewhere unbounded.
        return false;
    };
    let (reply, answer) = oneshot::channel();
    let job = Job {
        task,
        password,
        reply,
    };
    pool.jobs.send(job).is_ok() && answer.await.unwrap_or(false)
}

/// Whether `password` matches the argon2 PHC string `hash`. Call while holding a [`slot`].
pub async fn verify(hash: &str, password: Secret) -> bool {
    submit(Task::Check(hash.to_owned()), password).await
}

/// Costs one default argon2 run and fails: for unknown users. Call while holding a [`slot`].
pub async fn burn(password: Secret) -> bool {
    submit(Task::Burn, password).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_like_the_argon2_crate() {
        let hash = crate::account::hash_password(&Secret::from("pässword")).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let mut memory = vec![Block::new(); Params::DEFAULT.block_count()];
        assert!(check(&hash, "pässword".as_bytes(), &mut memory));
        assert!(!check(&hash, b"password", &mut memory));
        assert!(!check("garbage", b"x", &mut memory));
        // Other parameters than the default: a bigger one gets its own memory, a smaller one
        // uses the front of the block.
        for m in [Params::DEFAULT_M_COST * 2, 64] {
            let params = Params::new(m, 1, 1, None).unwrap();
            let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
            let h = argon2::PasswordHasher::hash_password(
                &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
                b"pw",
                &salt,
            )
            .unwrap()
            .to_string();
            assert!(check(&h, b"pw", &mut memory), "m={m}");
            assert!(!check(&h, b"pX", &mut memory), "m={m}");
        }
    }

    #[tokio::test]
    async fn threads_answer() {
        let hash = crate::account::hash_password(&Secret::from("one")).unwrap();
        let _slot = slot().await;
        assert!(verify(&hash, Secret::from("one")).await);
        assert!(!verify(&hash, Secret::from("two")).await);
        assert!(!burn(Secret::from("one")).await);
    }
}
