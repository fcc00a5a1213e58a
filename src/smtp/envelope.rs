//! MAIL FROM and RCPT TO: the envelope, checked here and passed upstream step by step. MAIL
//! FROM opens (or reuses) the upstream connection; with a provider that offers PIPELINING it
//! goes upstream in one write with the first RCPT.

use super::command::{self, Dsn};
use super::reply::{
    dsn_syntax, refused_outcome, relay_reply, upstream_failure, DSN_NOT_OFFERED, NO_OUTGOING_SERVER,
};
use super::session::Smtp;
use super::state::{closed, Envelope, Sender};
use super::submit::{reply_text, Reply, Upstream};
use crate::config::Account;
use crate::diagnosis::{self, Protocol};
use crate::metrics;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

/// Why MAIL FROM's parameters are refused: `counted` when the refusal is the message's
/// outcome (its size), else a plain syntax refusal.
struct BadParams {
    reply: String,
    counted: bool,
}

/// Checks MAIL FROM's ESMTP parameters; returns the DSN parameters among them.
fn mail_params(params: &str, max: u64) -> Result<Vec<Dsn>, BadParams> {
    let syntax = |reply: String| BadParams {
        reply,
        counted: false,
    };
    let mut dsn = Vec::new();
    for param in params.split_ascii_whitespace() {
        let Ok((key, value)) = command::parse_param(param) else {
            return Err(syntax("501 5.5.4 Syntax error in parameters".into()));
        };
        match command::dsn_param(key, value, true) {
            Some(Ok(kind)) if !dsn.contains(&kind) => {
                dsn.push(kind);
                continue;
            }
            Some(_) => return Err(syntax(dsn_syntax(param))),
            None => {}
        }
        let ok = match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => match v.parse::<u64>() {
                Ok(size) if size > max => {
                    return Err(BadParams {
                        reply: format!(
                        "552 5.3.4 Message size exceeds fixed maximum message size ({max} bytes)"
                    ),
                        counted: true,
                    })
                }
                Ok(_) => true,
                Err(_) => false,
            },
            ("BODY", Some(v)) => {
                v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME")
            }
            ("SMTPUTF8", None) => true,
            _ => false,
        };
        if !ok {
            return Err(syntax(format!("555 5.5.4 Unsupported parameter {param}")));
        }
    }
    Ok(dsn)
}

/// `Err(reply)` when `account` may not send as `sender` (its address or an alias).
fn sender_allowed(account: &Account, sender: &str) -> Result<(), String> {
    let sender = sender.to_lowercase();
    let allowed = std::iter::once(&account.email)
        .chain(account.aliases.iter())
        .any(|a| a.to_lowercase() == sender);
    if allowed {
        return Ok(());
    }
    let aliases = if account.aliases.is_empty() {
        String::new()
    } else {
        format!(" or one of its aliases ({})", account.aliases.join(", "))
    };
    Err(format!(
        "553 5.7.1 Sender address rejected: this account may send only as <{}>{aliases}",
        account.email
    ))
}

/// `MAIL FROM:<address> params` / `RCPT TO:<address> params` as sent upstream.
fn envelope_line(verb: &str, address: &str, params: &str) -> String {
    if params.is_empty() {
        format!("{verb}:<{address}>")
    } else {
        format!("{verb}:<{address}> {params}")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<'_, S> {
    /// Replies to a MAIL FROM that starts no transaction and counts the refused message.
    fn refuse_mail(&mut self, reply: &str) {
        metrics::smtp_message(refused_outcome(reply), 0);
        self.reply(reply);
    }

    /// Counts the current transaction's message as refused with `reply`, once.
    pub(super) fn count_refused(&mut self, reply: &str) {
        if let Some(env) = self.state.envelope_mut().filter(|e| !e.counted) {
            env.counted = true;
            metrics::smtp_message(refused_outcome(reply), 0);
        }
    }

    pub(super) async fn mail(&mut self, args: &str) {
        let Some(account) = self.state.account().cloned() else {
            return;
        };
        if let Err(reply) = self.state.may_mail() {
            return self.reply(reply);
        }
        let path = match command::parse_path(args, "FROM:") {
            Ok(p) => p,
            Err(e) => return self.reply(&format!("501 5.5.4 {e}")),
        };
        let dsn = match mail_params(path.params, self.session.config.server.max_message_size) {
            Ok(dsn) => dsn,
            Err(BadParams { reply, counted }) if counted => return self.refuse_mail(&reply),
            Err(BadParams { reply, .. }) => return self.reply(&reply),
        };
        if let Err(reply) = sender_allowed(&account, path.address) {
            return self.refuse_mail(&reply);
        }
        if account.smtp.is_none() {
            return self.refuse_mail(NO_OUTGOING_SERVER);
        }
        let line = envelope_line("MAIL FROM", path.address, path.params);
        self.mail_upstream(path.address, line, !dsn.is_empty())
            .await;
    }

    /// Opens the transaction upstream (or defers MAIL FROM to the first RCPT).
    async fn mail_upstream(&mut self, from: &str, line: String, dsn: bool) {
        // A kept connection may have been closed by the server meanwhile: one fresh try.
        for attempt in 0..2 {
            let reused = match self.connect_upstream().await {
                Ok(reused) => reused,
                Err(reply) => return self.refuse_mail(&reply),
            };
            let Some(up) = self.upstream.as_mut() else {
                return;
            };
            if dsn && !up.dsn() {
                return self.reply(DSN_NOT_OFFERED);
            }
            if up.pipelining() {
                // Deferred: MAIL goes upstream in one write with the first RCPT, which saves
                // the provider a round trip per message. A sender the provider refuses is
                // then refused at RCPT — where Postfix's default smtpd_delay_reject reports
                // sender refusals too, so clients handle it.
                self.state
                    .mail(Envelope::new(from, Sender::Deferred { line, reused }));
                return self.reply("250 2.1.0 Sender OK");
            }
            match up.command(&line, "MAIL FROM").await {
                Ok(r) => return self.mail_answered(from, &r),
                Err(e) => {
                    self.upstream = None;
                    if !(reused && attempt == 0) {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed at MAIL FROM");
                        metrics::upstream_error("smtp", e.kind().label());
                        return self.refuse_mail(upstream_failure(&e));
                    }
                }
            }
        }
    }

    /// The provider's reply to a MAIL FROM sent at once; the client hears it.
    fn mail_answered(&mut self, from: &str, r: &Reply) {
        let ok = (200..300).contains(&r.code);
        if ok {
            self.state.mail(Envelope::new(from, Sender::Sent));
        }
        if r.code == 421 {
            self.upstream = None;
        }
        let reply = relay_reply(r);
        if ok {
            return self.reply(&reply);
        }
        let advice = self.send_as_advice();
        info!(reply = %reply_text(r), advice, "upstream refused MAIL FROM");
        self.refuse_mail(&reply);
    }

    /// For a refused sender when the account sends as another user (a shared mailbox's
    /// delegate): that user needs the right to send as the account's address.
    fn send_as_advice(&self) -> Option<String> {
        let account = self.state.account()?;
        let user = &account.smtp.as_ref()?.username;
        let delegate = account.imap.credential.oauth()?;
        let delegated = !delegate.identity.eq_ignore_ascii_case(&account.email)
            && delegate.identity.eq_ignore_ascii_case(user);
        delegated.then(|| {
            format!(
                "the provider authenticated {user}, which needs the right to send as {} (Microsoft 365: Add-RecipientPermission {} -AccessRights SendAs -Trustee {user})",
                account.email, account.email
            )
        })
    }

    /// Connects and logs in upstream unless a connection is kept; `Ok(true)` when the kept
    /// one is used, `Err(reply)` with the client's reply when the provider cannot be reached.
    async fn connect_upstream(&mut self) -> Result<bool, String> {
        if self.upstream.is_some() {
            return Ok(true);
        }
        // The account is an Arc: a cheap clone that frees `self` for the connection.
        let account = self.state.account().cloned();
        let Some(endpoint) = account.as_ref().and_then(|a| a.smtp.as_ref()) else {
            return Err(NO_OUTGOING_SERVER.into());
        };
        let email = account.as_ref().map_or("", |a| a.email.as_str());
        let started = std::time::Instant::now();
        // Boxed: the connect's state (DNS, TLS handshake, EHLO, AUTH, an OAuth refresh) is
        // large and short-lived; inline it would be part of every session's future.
        match Box::pin(Upstream::connect(endpoint, &self.session.config.server)).await {
            Ok(mut up) => {
                metrics::upstream_connected("smtp", started.elapsed().as_secs_f64());
                info!(upstream = %up.address(), "upstream connected");
                up.count_bytes_for(email);
                self.upstream = Some(up);
                self.count_login("ok");
                Ok(false)
            }
            Err(e) => {
                let advice = diagnosis::log_advice(&e, Protocol::Smtp, email);
                warn!(upstream = %endpoint.address(), kind = e.kind().label(), error = %e, advice, "upstream connection failed");
                metrics::upstream_error("smtp", e.kind().label());
                self.count_login(diagnosis::login_result(&e));
                Err(super::reply::connect_failure(&e).into_owned())
            }
        }
    }

    /// Marks the transaction's upstream connection gone.
    fn break_envelope(&mut self) {
        if let Some(env) = self.state.envelope_mut() {
            env.set_broken();
        }
    }

    /// Sends the deferred MAIL FROM and the first RCPT TO in one write; the reply for the
    /// client's RCPT. A kept connection found dead gets one fresh try, as at MAIL FROM.
    async fn mail_and_first_rcpt(&mut self, mail: String, rcpt: &str, reused: bool) -> String {
        let mut reused = reused;
        for attempt in 0..2 {
            if attempt > 0 {
                if let Err(reply) = self.connect_upstream().await {
                    self.break_envelope();
                    return reply;
                }
            }
            let Some(up) = self.upstream.as_mut() else {
                break;
            };
            match up.pipeline(&[&mail, rcpt], "MAIL FROM and RCPT TO").await {
                Ok(replies) => {
                    let (Some(m), Some(r)) = (replies.first(), replies.get(1)) else {
                        break;
                    };
                    if (200..300).contains(&m.code) {
                        return self.rcpt_result(r);
                    }
                    return self.mail_refused(m);
                }
                Err(e) => {
                    self.upstream = None;
                    if !(reused && attempt == 0) {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed at MAIL FROM / RCPT TO");
                        metrics::upstream_error("smtp", e.kind().label());
                        self.break_envelope();
                        return upstream_failure(&e).into();
                    }
                    reused = false;
                }
            }
        }
        self.break_envelope();
        closed().into()
    }

    /// The provider refused the deferred MAIL FROM with `m`: the reply to this RCPT and to
    /// every one after it.
    fn mail_refused(&mut self, m: &Reply) -> String {
        let advice = self.send_as_advice();
        info!(reply = %reply_text(m), advice, "upstream refused MAIL FROM");
        let reply = relay_reply(m);
        let closed = m.code == 421;
        if closed {
            self.upstream = None;
        }
        if let Some(env) = self.state.envelope_mut() {
            env.sender = Sender::Refused {
                reply: reply.clone(),
                closed,
            };
        }
        reply
    }

    /// Books an upstream RCPT reply into the transaction; the reply for the client.
    fn rcpt_result(&mut self, r: &Reply) -> String {
        if !(200..300).contains(&r.code) {
            info!(reply = %reply_text(r), "upstream refused a recipient");
        }
        if let Some(env) = self.state.envelope_mut() {
            env.rcpt_answered(r.code);
            if r.code == 421 {
                self.upstream = None;
            }
        }
        relay_reply(r)
    }

    pub(super) async fn rcpt(&mut self, args: &str) {
        let reply = self.rcpt_reply(args).await;
        if self.state.envelope().is_some_and(Envelope::ended) {
            // The transaction can carry no message any more: this reply is its outcome.
            self.count_refused(&reply);
        }
        self.reply(&reply);
    }

    /// Checks RCPT TO's parameters (DSN only, and only if the provider offers DSN).
    fn rcpt_params(&self, params: &str) -> Result<(), String> {
        let mut dsn = Vec::new();
        for param in params.split_ascii_whitespace() {
            let Ok((key, value)) = command::parse_param(param) else {
                return Err("501 5.5.4 Syntax error in parameters".into());
            };
            match command::dsn_param(key, value, false) {
                Some(Ok(kind)) if !dsn.contains(&kind) => dsn.push(kind),
                Some(_) => return Err(dsn_syntax(param)),
                None => return Err(format!("555 5.5.4 Unsupported parameter {param}")),
            }
        }
        if !dsn.is_empty() && self.upstream.as_ref().is_some_and(|u| !u.dsn()) {
            return Err(DSN_NOT_OFFERED.into());
        }
        Ok(())
    }

    async fn rcpt_reply(&mut self, args: &str) -> String {
        if let Err(reply) = self.state.rcpt() {
            return reply.into();
        }
        let path = match command::parse_path(args, "TO:") {
            Ok(p) if !p.address.is_empty() => p,
            Ok(_) => return "501 5.1.3 A recipient address is required".into(),
            Err(e) => return format!("501 5.5.4 {e}"),
        };
        if let Err(reply) = self.rcpt_params(path.params) {
            return reply;
        }
        let Ok(env) = self.state.rcpt() else {
            return closed().into();
        };
        if let Err(reply) = env.take_rcpt() {
            return reply.into();
        }
        let rcpt = envelope_line("RCPT TO", path.address, path.params);
        if let Sender::Refused { reply, .. } = &env.sender {
            // The provider refused the (deferred) sender: every recipient hears why.
            return reply.clone();
        }
        if let Some((mail, reused)) = env.take_deferred() {
            return self.mail_and_first_rcpt(mail, &rcpt, reused).await;
        }
        let broken = env.broken();
        let Some(up) = self.upstream.as_mut().filter(|_| !broken) else {
            self.break_envelope();
            return closed().into();
        };
        match up.command(&rcpt, "RCPT TO").await {
            Ok(r) => self.rcpt_result(&r),
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, "upstream failed at RCPT TO");
                self.break_envelope();
                self.upstream = None;
                upstream_failure(&e).into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_parameters() {
        assert_eq!(
            mail_params("SIZE=10 BODY=8BITMIME SMTPUTF8", 100).ok(),
            Some(vec![])
        );
        let big = mail_params("SIZE=101", 100).err().unwrap();
        assert!(big.counted && big.reply.starts_with("552 5.3.4 "));
        let odd = mail_params("FOO=1", 100).err().unwrap();
        assert_eq!(
            (odd.reply.as_str(), odd.counted),
            ("555 5.5.4 Unsupported parameter FOO=1", false)
        );
        assert_eq!(envelope_line("RCPT TO", "a@b", ""), "RCPT TO:<a@b>");
        assert_eq!(
            envelope_line("MAIL FROM", "a@b", "SIZE=1"),
            "MAIL FROM:<a@b> SIZE=1"
        );
    }
}
