//! DATA and BDAT: the message body, streamed upstream as it arrives, and the provider's
//! verdict on it as the client's reply. A message that is aborted (client gone mid-data, size
//! limit) never gets its end marker upstream, so the upstream discards it.

use super::data::Unstuffer;
use super::limits::DATA_TIMEOUT;
use super::reply::{deferred_or_rejected, relay_reply, upstream_failure};
use super::sent_copy::Capture;
use super::session::{Next, Smtp};
use super::state::{closed, AfterChunk, Body, Envelope, Flow, NEED_MAIL};
use super::{command, submit::reply_text};
use crate::metrics;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<'_, S> {
    /// Checks common to DATA and BDAT before the body; `Some(reply)` refuses it. A refusal
    /// that ends the transaction (no recipient, the provider gone) is its message's outcome.
    fn body_refusal(&mut self, bdat: bool) -> Option<&'static str> {
        let (reply, ends) = self.state.body_refusal(bdat, self.upstream.is_some())?;
        if ends {
            self.count_refused(reply);
        }
        Some(reply)
    }

    /// A new body, flowing unless `refused`; a flowing one captures what the Sent copy needs.
    fn new_body(&self, refused: Option<String>) -> Body {
        let flowing = refused.is_none();
        let mut body = Body::new(refused);
        if flowing {
            body.capture = self
                .state
                .account()
                .map(|a| Capture::new(a.folders.sent_copy_effective));
        }
        body
    }

    /// Sends DATA upstream without waiting for its reply (see
    /// [`super::submit::Upstream::send_data`]): the client may be told 354 at once. Otherwise
    /// the reply for the client.
    async fn open_body(&mut self) -> Result<(), String> {
        let Some(up) = self.upstream.as_mut() else {
            return Err(closed().into());
        };
        match up.send_data().await {
            Ok(()) => Ok(()),
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, "upstream failed at DATA");
                self.upstream = None;
                Err(upstream_failure(&e).into())
            }
        }
    }

    /// Forwards the message bytes in `self.msg` (then empties it), minding the size limit.
    async fn forward(&mut self) {
        let max = self.session.config.server.max_message_size;
        let Some((_, body)) = self.state.body_mut() else {
            self.msg.clear();
            return;
        };
        body.size += self.msg.len() as u64;
        if body.size > max {
            if !matches!(body.flow, Flow::Over) {
                body.flow = Flow::Over;
                // No end marker will follow: the upstream discards what it got.
                self.upstream = None;
            }
        } else if matches!(body.flow, Flow::Flowing) {
            if let Some(capture) = body.capture.as_mut() {
                capture.feed(&self.msg);
            }
            if let Some(up) = self.upstream.as_mut() {
                match up.write_body(&self.msg).await {
                    // Counted by the upstream when the bytes are written.
                    Ok(None) => {}
                    Ok(Some(r)) => {
                        // DATA itself was refused: the rest of the body is dropped and the
                        // client hears the refusal after its end marker.
                        info!(reply = %reply_text(&r), "upstream refused DATA");
                        if r.code == 421 {
                            self.upstream = None;
                        }
                        body.flow = Flow::Refused(relay_reply(&r));
                    }
                    Err(e) => {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed during the message data");
                        body.flow = Flow::Failed(e);
                        self.upstream = None;
                    }
                }
            }
        }
        self.msg.clear();
    }

    /// The client's reply at the end of the body; ends the transaction.
    async fn finish_body(&mut self) -> String {
        let Some((env, body)) = self.state.end_transaction() else {
            return NEED_MAIL.into();
        };
        let body = body.unwrap_or_else(|| Body::new(None));
        let size = body.size;
        let (reply, result) = self.verdict(&env, body).await;
        if !env.counted {
            metrics::smtp_message(result, size);
        }
        reply
    }

    /// The reply for the ended message and its outcome label.
    async fn verdict(&mut self, env: &Envelope, body: Body) -> (String, &'static str) {
        let max = self.session.config.server.max_message_size;
        match body.flow {
            Flow::Over => {
                info!(
                    size = body.size,
                    max, "message over the size limit; not sent"
                );
                let reply = format!(
                    "552 5.3.4 Message size exceeds fixed maximum message size ({max} bytes)"
                );
                (reply, "too_big")
            }
            Flow::Refused(refused) => {
                let result = deferred_or_rejected(&refused);
                (refused, result)
            }
            Flow::Failed(e) => {
                metrics::upstream_error("smtp", e.kind().label());
                (upstream_failure(&e).into(), "deferred")
            }
            Flow::Flowing => self.end_upstream(env, body.size, body.capture).await,
        }
    }

    /// Sends the message's end upstream; the provider's verdict as the client's reply. After
    /// a 2xx, the Sent copy is seen to (`capture`).
    async fn end_upstream(
        &mut self,
        env: &Envelope,
        size: u64,
        capture: Option<Capture>,
    ) -> (String, &'static str) {
        let Some(up) = self.upstream.as_mut() else {
            return (closed().into(), "deferred");
        };
        match up.finish_data().await {
            Ok(r) => {
                let ok = (200..300).contains(&r.code);
                if ok {
                    self.accepted += 1;
                    info!(from = %env.from, rcpts = env.rcpts, size, reply = %reply_text(&r), "message accepted by the upstream");
                    if let (Some(capture), Some(account)) = (capture, self.state.account()) {
                        capture.accepted(account, &self.session.config);
                    }
                } else {
                    info!(from = %env.from, size, reply = %reply_text(&r), "upstream refused the message");
                }
                if r.code == 421 {
                    self.upstream = None;
                }
                let reply = relay_reply(&r);
                let result = if ok {
                    "ok"
                } else {
                    deferred_or_rejected(&reply)
                };
                (reply, result)
            }
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, size, "upstream failed at the end of the message");
                metrics::upstream_error("smtp", e.kind().label());
                self.upstream = None;
                (upstream_failure(&e).into(), "deferred")
            }
        }
    }

    /// Makes sure message bytes are buffered. `Ok(Err(why))` when the client is gone: the
    /// upstream is then dropped without the end marker, which aborts the message there.
    async fn need_data(&mut self, what: &str) -> io::Result<Result<(), &'static str>> {
        if self.start < self.end {
            return Ok(Ok(()));
        }
        match self.fill(DATA_TIMEOUT, false).await? {
            Ok(()) => Ok(Ok(())),
            Err(gone) => {
                self.upstream = None;
                self.state.end_transaction();
                warn!(
                    "{} in the middle of {what}; message aborted upstream",
                    gone.as_str()
                );
                Ok(Err(gone.as_str()))
            }
        }
    }

    pub(super) async fn data(&mut self, args: &str) -> io::Result<Next> {
        if !args.is_empty() {
            self.reply("501 5.5.4 DATA takes no arguments");
            return Ok(self.error());
        }
        if let Some(refusal) = self.body_refusal(false) {
            self.reply(refusal);
            return Ok(Next::Continue);
        }
        if let Err(reply) = self.open_body().await {
            // The message was refused before its data (as BDAT's path counts it too).
            self.count_refused(&reply);
            self.reset().await;
            self.reply(&reply);
            return Ok(Next::Continue);
        }
        self.state.start_body(false, self.new_body(None));
        self.reply("354 End data with <CR><LF>.<CR><LF>");
        self.flush().await?;
        let mut unstuffer = Unstuffer::new();
        loop {
            if let Err(why) = self.need_data("DATA").await? {
                return Ok(Next::Close(why));
            }
            let done = unstuffer.feed(&self.buf[self.start..self.end], &mut self.msg);
            self.start = done.map_or(self.end, |n| self.start + n);
            self.forward().await;
            if done.is_some() {
                break;
            }
        }
        let reply = self.finish_body().await;
        self.reply(&reply);
        Ok(Next::Continue)
    }

    pub(super) async fn bdat(&mut self, args: &str) -> io::Result<Next> {
        let Ok((size, last)) = command::parse_bdat(args) else {
            // Without a size the chunk cannot be skipped; its bytes will read as commands.
            self.reply("501 5.5.4 Syntax: BDAT size [LAST]");
            return Ok(self.error());
        };
        // Decide before reading the chunk; the chunk is read (and maybe discarded) either way.
        let mut refusal = None;
        if !self.state.mid_body() {
            refusal = self.body_refusal(true);
            if refusal.is_none() {
                let opened = self.open_body().await;
                let body = self.new_body(opened.err());
                self.state.start_body(true, body);
            }
        }
        let mut left = size;
        while left > 0 {
            if let Err(why) = self.need_data("BDAT").await? {
                return Ok(Next::Close(why));
            }
            let take = (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX));
            if refusal.is_none() {
                self.msg
                    .extend_from_slice(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            left -= take as u64;
            if refusal.is_none() {
                self.forward().await;
            }
        }
        if let Some(refusal) = refusal {
            self.reply(refusal);
            return Ok(Next::Continue);
        }
        let after = match self.state.body_mut() {
            Some((_, body)) => body.after_chunk(last),
            None if last => AfterChunk::Finish,
            None => AfterChunk::More,
        };
        match after {
            // RFC 3030: a failed chunk fails the transaction; the client will stop sending.
            AfterChunk::Finish => {
                let reply = self.finish_body().await;
                self.reply(&reply);
            }
            AfterChunk::More => self.reply(&format!("250 2.0.0 {size} octets received")),
        }
        Ok(Next::Continue)
    }
}
