//! After login: byte-exact relay of responses and literals, IDLE, mailbox operations, commands
//! imap-codec cannot parse, pipelining, and clients that vanish mid-command.

use super::*;

/// 1000 messages (5 of them over 5 MiB; 8-bit bytes; lines that look like IMAP responses and
/// literal announcements): `UID FETCH 1:* (BODY.PEEK[])` gives the same bytes through
/// mailgate as directly from Dovecot (Dovecot's timing in the tagged line aside).
#[test]
fn fetch_whole_mailbox_is_byte_identical() {
    let messages = corpus(1000, 5, 2025);
    let g = gate_with(Mode::Implicit, &messages);
    fetch_all_direct_and_through(&g, &messages);
    drop(messages);
    g.finish();
}

/// `UID FETCH 1:* (BODY.PEEK[])` directly (which must return `messages`) and through mailgate,
/// each in a session of its own; asserts both give the same bytes and returns them.
fn fetch_all_direct_and_through(g: &Gate, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut direct = g.direct();
    direct.ok("s1", "SELECT INBOX");
    let want = direct.ok("f1", "UID FETCH 1:* (BODY.PEEK[])");
    direct.ok("z1", "LOGOUT");
    assert!(
        fetch_literals(&want) == messages,
        "direct FETCH does not return the stored messages"
    );

    let mut via = g.login();
    via.ok("s1", "SELECT INBOX");
    let got = via.ok("f1", "UID FETCH 1:* (BODY.PEEK[])");
    via.ok("z1", "LOGOUT");

    let want = normalize_timing(&want);
    let got = normalize_timing(&got);
    assert!(
        got == want,
        "FETCH through mailgate differs from direct: {}",
        describe_difference(&got, &want)
    );
    got
}

#[test]
fn append_with_sync_and_nonsync_literals_lands_exact_bytes() {
    let g = gate(Mode::Implicit);
    let mut rng = Rng::new(7);
    let sync_msg = varied(1, 300 * 1024, &mut rng);
    let nonsync_msg = varied(2, 40 * 1024, &mut rng);
    let python_msg = varied(3, 3000, &mut rng);
    // Larger than any sensible buffer: the literal has to be streamed upstream.
    let big_msg = varied(4, 6 * 1024 * 1024, &mut rng);

    let mut c = g.login();
    let r1 = c.append_sync("a1", "INBOX", &sync_msg);
    assert_status_prefix(&r1, "a1", "OK");
    let r2 = c.append_nonsync("a2", "INBOX", &nonsync_msg);
    assert_status_prefix(&r2, "a2", "OK");
    let r3 = c.append_sync("a3", "INBOX", &big_msg);
    assert_status_prefix(&r3, "a3", "OK");
    c.ok("a4", "LOGOUT");

    // A real client's APPEND (imaplib sends a synchronizing literal).
    let file = g.mailgate.dir().join("python-message.eml");
    fs::write(&file, &python_msg).unwrap();
    let port = g.mailgate.imap_addr.port().to_string();
    let stdout = python_ok(&[
        "append",
        "--port",
        &port,
        "--user",
        EMAIL,
        "--password",
        LOCAL_PW,
        "--file",
        &file.display().to_string(),
    ]);
    assert!(stdout.contains("\nappend OK"), "{stdout}");

    let mut direct = g.direct();
    direct.ok("s", "SELECT INBOX");
    let fetch = direct.ok("f", "UID FETCH 1:* (BODY.PEEK[])");
    let stored = fetch_literals(&fetch);
    assert_stored(
        &stored,
        &[
            ("sync literal", &sync_msg),
            ("non-sync literal", &nonsync_msg),
            ("6 MiB literal", &big_msg),
            ("imaplib APPEND", &python_msg),
        ],
    );
    let files: Vec<Vec<u8>> = g
        .dovecot
        .maildir_messages(UPSTREAM_USER)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    for m in [&sync_msg, &nonsync_msg, &big_msg, &python_msg] {
        assert!(
            files.contains(m),
            "maildir file with the exact bytes is missing"
        );
    }
    g.finish();
}

/// The messages FETCHed from a mailbox are exactly `want` (name, bytes), in order.
fn assert_stored(stored: &[Vec<u8>], want: &[(&str, &Vec<u8>)]) {
    assert_eq!(stored.len(), want.len(), "messages in the mailbox");
    for (got, (what, want)) in stored.iter().zip(want) {
        assert!(got == *want, "{what}: {}", describe_difference(got, want));
    }
}

/// Synchronizing literals the server refuses. A small one is converted (the server offers
/// LITERAL+): the gateway gives the `+`, the data goes to the server, which answers NO — the
/// same NO a direct client gets, only after the data. A large one keeps the round trip: the
/// server refuses before its `+`, the client never sends the data, and the stream stays framed.
#[test]
fn refused_sync_literals_small_converted_large_kept() {
    let g = gate(Mode::Implicit);
    let small = simple("small", "converted to LITERAL+");
    let mut c = g.login();
    c.ok("s0", "SELECT INBOX");

    c.send(format!("a1 APPEND nosuchbox {{{}}}\r\n", small.len()).as_bytes());
    let plus = c.read_continuation();
    assert!(
        plus.starts_with(b"+ "),
        "{}",
        String::from_utf8_lossy(&plus)
    );
    c.send(&small);
    c.send(b"\r\n");
    let r = c.read_until_tagged("a1");
    assert_tagged(&r, "a1", "NO");
    assert!(
        contains(&r, b"[TRYCREATE]"),
        "{}",
        String::from_utf8_lossy(&r)
    );

    // Over the conversion limit: Dovecot's own refusal arrives instead of a `+`.
    let big = 2 * 1024 * 1024;
    c.send(format!("a2 APPEND nosuchbox {{{big}}}\r\n").as_bytes());
    let r = c.read_until_tagged("a2");
    assert_tagged(&r, "a2", "NO");
    assert!(!r.starts_with(b"+"), "{}", String::from_utf8_lossy(&r));

    // Both sides still agree on the framing, and the accepted ones land exactly.
    let r = c.append_sync("a3", "INBOX", &small);
    assert_tagged(&r, "a3", "OK");
    let big_msg = varied(9, big, &mut Rng::new(9));
    let r = c.append_sync("a4", "INBOX", &big_msg);
    assert_tagged(&r, "a4", "OK");
    let r = c.ok("f1", "UID FETCH 1:* (BODY.PEEK[])");
    assert!(
        fetch_literals(&r) == vec![small, big_msg],
        "stored messages differ"
    );
    c.ok("z1", "LOGOUT");
    g.finish();
}

/// An APPEND whose arguments the server cannot read (here a mailbox name with a space, not
/// quoted — what python's imaplib sends when the caller forgets the quotes) keeps its round
/// trip: the server's refusal comes instead of a `+`, so the message is never sent and its
/// lines can never run as commands (Dovecot refuses such an APPEND before its literal and
/// reads whatever follows as commands).
#[test]
fn a_broken_append_keeps_its_round_trip() {
    let g = gate(Mode::Plain);
    let mut c = g.login();
    let message = b"To: x@example.no\r\nSubject: a1 DELETE INBOX\r\n\r\nz9 LOGOUT\r\n";
    c.send(format!("a1 APPEND Deleted items (\\Seen) {{{}}}\r\n", message.len()).as_bytes());
    let r = c.read_until_tagged("a1");
    assert!(!r.starts_with(b"+"), "{}", String::from_utf8_lossy(&r));
    let status = tagged_status(&r, "a1");
    assert!(
        status.starts_with("NO") || status.starts_with("BAD"),
        "{status}"
    );
    // The session goes on, with nothing of the message run as a command. (Dovecot takes the
    // line after a broken APPEND as the rest of it, directly as through mailgate: hence two.)
    c.send(b"n1 NOOP\r\nn2 NOOP\r\n");
    let r = c.read_until_tagged("n2");
    assert_tagged(&r, "n2", "OK");
    assert!(!contains(&r, b"z9 "), "{}", String::from_utf8_lossy(&r));
    c.ok("z1", "LOGOUT");
    g.finish();
}

#[test]
fn idle_sees_exists_after_another_connection_appends() {
    let g = gate(Mode::Implicit);
    let mut idler = g.login();
    let sel = idler.ok("s1", "SELECT INBOX");
    assert!(
        contains(&sel, b"* 0 EXISTS"),
        "{}",
        String::from_utf8_lossy(&sel)
    );
    idler.send(b"i1 IDLE\r\n");
    idler.read_continuation();

    let mut other = g.direct();
    let r = other.append_sync("a1", "INBOX", &simple("idle", "wake up"));
    assert_tagged(&r, "a1", "OK");

    let mut seen = Vec::new();
    for _ in 0..50 {
        let resp = idler
            .read_response()
            .unwrap_or_else(|e| panic!("waiting for * 1 EXISTS during IDLE: {e}"));
        seen.extend_from_slice(&resp);
        if resp == b"* 1 EXISTS\r\n" {
            break;
        }
    }
    assert!(
        contains(&seen, b"* 1 EXISTS\r\n"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    idler.send(b"DONE\r\n");
    assert_tagged(&idler.read_until_tagged("i1"), "i1", "OK");
    idler.ok("n1", "NOOP");
    idler.ok("z1", "LOGOUT");
    g.finish();
}

#[test]
fn search_store_copy_move_expunge() {
    let messages: Vec<Vec<u8>> = ["alpha", "beta", "gamma", "delta", "epsilon"]
        .iter()
        .map(|s| simple(s, &format!("body of {s}")))
        .collect();
    let g = gate_with(Mode::Starttls, &messages);
    let mut c = g.login();
    c.ok("c0", "CREATE Archive");
    let sel = c.ok("s0", "SELECT INBOX");
    assert!(
        contains(&sel, b"* 5 EXISTS"),
        "{}",
        String::from_utf8_lossy(&sel)
    );

    let r = c.ok("s1", "UID SEARCH SUBJECT beta");
    assert!(
        contains(&r, b"* SEARCH 2\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = c.ok("s2", "UID STORE 1:2 +FLAGS (\\Flagged)");
    assert!(
        contains(&r, b"* 1 FETCH (UID 1 FLAGS (\\Flagged")
            && contains(&r, b"* 2 FETCH (UID 2 FLAGS (\\Flagged"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = c.ok("s3", "UID SEARCH FLAGGED");
    assert!(
        contains(&r, b"* SEARCH 1 2\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = c.ok("s4", "UID COPY 3 Archive");
    assert!(
        contains(&r, b"[COPYUID "),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = c.ok("s5", "UID MOVE 4 Archive");
    assert!(
        contains(&r, b"* 4 EXPUNGE\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert!(
        contains(&r, b"[COPYUID "),
        "{}",
        String::from_utf8_lossy(&r)
    );
    c.ok("s6", "UID STORE 5 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("s7", "EXPUNGE");
    assert!(
        contains(&r, b"* 4 EXPUNGE\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = c.ok("s8", "UID SEARCH ALL");
    assert!(
        contains(&r, b"* SEARCH 1 2 3\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    c.ok("z1", "LOGOUT");

    // What Dovecot holds now.
    let mut d = g.direct();
    let r = d.ok("d1", "STATUS Archive (MESSAGES)");
    assert!(
        contains(&r, b"(MESSAGES 2)"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = d.ok("d2", "STATUS INBOX (MESSAGES)");
    assert!(
        contains(&r, b"(MESSAGES 3)"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    d.ok("d3", "EXAMINE Archive");
    let r = d.ok("d4", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let text = String::from_utf8_lossy(&r);
    assert!(text.contains("gamma") && text.contains("delta"), "{text}");
    d.ok("d5", "EXAMINE INBOX");
    let r = d.ok("d6", "UID SEARCH FLAGGED");
    assert!(
        contains(&r, b"* SEARCH 1 2\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    g.finish();
}

/// Commands imap-codec cannot parse (vendor extensions, unknown FETCH items) still reach
/// Dovecot, and the client gets Dovecot's own answer.
#[test]
fn unparsable_commands_pass_through_to_dovecot() {
    let g = gate_with(Mode::Implicit, &[simple("one", "1"), simple("two", "2")]);
    let mut via = g.login();
    let mut direct = g.direct();
    via.ok("s1", "EXAMINE INBOX");
    direct.ok("s1", "EXAMINE INBOX");
    for (tag, cmd) in [
        ("x1", "XFOO bar"),
        ("x2", "X-GM-RAW \"foo\""),
        ("x3", "UID FETCH 1:* (X-GM-LABELS)"),
        ("x4", "SORT (DATE) UTF-8 ALL"),
        ("x5", "THREAD REFERENCES UTF-8 ALL"),
        ("x6", "UID SEARCH X-GM-RAW \"has:attachment\""),
        ("x7", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10>)"),
        ("x8", "NOOP"),
    ] {
        let a = normalize_timing(&via.command(tag, cmd));
        let b = normalize_timing(&direct.command(tag, cmd));
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "`{tag} {cmd}` through mailgate vs direct"
        );
    }
    // Dovecot's own wording, not a gateway's.
    let a = via.command("x9", "XFOO bar");
    assert!(
        tagged_line(&a, "x9").starts_with("x9 BAD Error in IMAP command XFOO"),
        "{}",
        String::from_utf8_lossy(&a)
    );
    via.ok("z1", "LOGOUT");
    g.finish();
}

/// The tagged lines in a block of responses, in arrival order, as text.
fn tagged_lines(block: &[u8], tags: &[&str]) -> Vec<String> {
    split_responses(block)
        .into_iter()
        .map(|r| String::from_utf8_lossy(r).trim_end().to_string())
        .filter(|l| tags.iter().any(|t| l.starts_with(&format!("{t} "))))
        .collect()
}

/// Commands in one write are all answered, in order. (Only commands Dovecot itself runs
/// strictly one after the other: Dovecot may legitimately answer e.g. STATUS before an
/// APPEND ahead of it, or an unknown command as soon as it reads it; see the next test.)
#[test]
fn pipelined_commands_are_answered_in_order() {
    let g = gate_with(Mode::Implicit, &[simple("one", "1"), simple("two", "2")]);
    let mut c = g.login();
    c.ok("s0", "SELECT INBOX");
    c.send(
        b"p1 NOOP\r\np2 UID SEARCH ALL\r\np3 UID FETCH 1 (FLAGS)\r\n\
          p4 UID FETCH 2 (BODY.PEEK[])\r\np5 NOOP\r\np6 UID SEARCH SUBJECT two\r\np7 NOOP\r\n",
    );
    let all = c.read_until_tagged("p7");
    let tags = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"];
    let tagged = tagged_lines(&all, &tags);
    let got: Vec<&str> = tagged.iter().map(|l| &l[..2]).collect();
    assert_eq!(got, tags, "{tagged:#?}");
    for line in &tagged {
        assert!(line[3..].starts_with("OK"), "{line}");
    }
    assert!(
        contains(&all, b"* SEARCH 1 2\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        contains(&all, b"* SEARCH 2\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert_eq!(fetch_literals(&all), vec![simple("two", "2")]);
    c.ok("z1", "LOGOUT");
    g.finish();
}

/// A pipeline with commands imap-codec cannot parse and a non-synchronizing APPEND literal:
/// every command is answered exactly once, and the appended message is stored exactly.
#[test]
fn pipelined_commands_with_unparsable_ones_and_a_literal_are_all_answered() {
    let g = gate_with(Mode::Implicit, &[simple("one", "1")]);
    let mut c = g.login();
    c.ok("s0", "SELECT INBOX");
    let message = simple("pipelined", "appended inside a pipeline\r\na1 OK {5}");
    let mut batch = Vec::new();
    batch.extend_from_slice(b"q1 NOOP\r\nq2 XFOO bar\r\nq3 UID SEARCH ALL\r\n");
    batch.extend_from_slice(format!("q4 APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes());
    batch.extend_from_slice(&message);
    batch.extend_from_slice(b"\r\nq5 X-GM-RAW \"x\"\r\nq6 STATUS INBOX (MESSAGES)\r\nq7 NOOP\r\n");
    c.send(&batch);
    let tags = ["q1", "q2", "q3", "q4", "q5", "q6", "q7"];
    let mut all = Vec::new();
    for _ in 0..100 {
        if tagged_lines(&all, &tags).len() >= tags.len() {
            break;
        }
        let resp = c
            .read_response()
            .unwrap_or_else(|e| panic!("{e}; so far: {}", String::from_utf8_lossy(&all)));
        all.extend_from_slice(&resp);
    }
    let tagged = tagged_lines(&all, &tags);
    let mut got: Vec<&str> = tagged.iter().map(|l| &l[..2]).collect();
    got.sort();
    assert_eq!(got, tags, "{tagged:#?}");
    for line in &tagged {
        let want = if line.starts_with("q2") || line.starts_with("q5") {
            "BAD"
        } else {
            "OK"
        };
        assert!(line[3..].starts_with(want), "{line}");
    }
    c.ok("z1", "LOGOUT");
    let mut d = g.direct();
    d.ok("d1", "EXAMINE INBOX");
    let r = d.ok("d2", "UID FETCH 2 (BODY.PEEK[])");
    assert_eq!(fetch_literals(&r), vec![message]);
    g.finish();
}

/// A client that sends LOGIN and the next commands in one write (pipelining across the
/// login) gets every command answered, in order.
#[test]
fn pipelined_login_and_select() {
    let g = gate_with(Mode::Implicit, &[simple("one", "1")]);
    let mut c = g.connect();
    c.send(
        format!(
            "a1 LOGIN {} {}\r\na2 SELECT INBOX\r\na3 UID FETCH 1 (UID)\r\n",
            quoted(EMAIL),
            quoted(LOCAL_PW)
        )
        .as_bytes(),
    );
    let all = c.read_until_tagged("a3");
    let responses = split_responses(&all);
    let tagged: Vec<String> = responses
        .iter()
        .filter(|r| r.starts_with(b"a"))
        .map(|r| String::from_utf8_lossy(r).trim_end().to_string())
        .collect();
    assert_eq!(tagged.len(), 3, "{tagged:#?}");
    assert!(tagged[0].starts_with("a1 OK"), "{tagged:#?}");
    assert!(tagged[1].starts_with("a2 OK"), "{tagged:#?}");
    assert!(tagged[2].starts_with("a3 OK"), "{tagged:#?}");
    assert!(
        contains(&all, b"* 1 EXISTS\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    g.finish();
}

#[test]
fn client_vanishing_mid_literal_leaves_the_gateway_serving() {
    let g = gate(Mode::Implicit);

    // Logged in, synchronizing APPEND literal, 10 of 100000 bytes, gone.
    let mut c = g.login();
    c.ok("s1", "SELECT INBOX");
    c.send(b"a1 APPEND INBOX {100000}\r\n");
    c.read_continuation();
    c.send(b"0123456789");
    c.shutdown();
    drop(c);

    // The same with a non-synchronizing literal.
    let mut c = g.login();
    c.send(b"a2 APPEND INBOX {100000+}\r\n0123456789");
    c.shutdown();
    drop(c);

    // Before login: a literal LOGIN argument, then gone. The gateway may refuse a large
    // pre-auth literal; either way the client leaves mid-command.
    let mut c = g.connect();
    let _ = c.try_send(b"b1 LOGIN {100000}\r\n");
    let _ = c.read_response();
    let _ = c.try_send(b"0123456789");
    c.shutdown();
    drop(c);

    // Another session is served normally, and no partial message was stored.
    let mut c = g.login();
    let sel = c.ok("s2", "SELECT INBOX");
    assert!(
        contains(&sel, b"* 0 EXISTS"),
        "{}",
        String::from_utf8_lossy(&sel)
    );
    let r = c.append_sync("a3", "INBOX", &simple("after", "still serving"));
    assert_tagged(&r, "a3", "OK");
    c.ok("z1", "LOGOUT");
    let mut g = g;
    assert!(g.mailgate.is_running());
    g.finish();
}

/// The bytes_spliced figure of each "session ended" line so far.
fn spliced_per_session(g: &Gate) -> Vec<u64> {
    g.mailgate
        .lines()
        .iter()
        .filter(|l| l.contains("session ended: "))
        .filter_map(|l| {
            l.split("bytes_spliced=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// With a plaintext upstream (and the client in plaintext) long literals go from socket to
/// socket by splice(2): FETCHed messages over 5 MiB, a 6 MiB APPEND with a synchronizing and a
/// 2 MiB one with a non-synchronizing literal all arrive byte for byte, each session's end line
/// counts spliced bytes (so this path, not the buffered one, carried them), a client that
/// vanishes in the middle of a spliced literal stores nothing, and the gateway serves on.
#[test]
fn plaintext_sessions_splice_long_literals_byte_exact() {
    let messages = corpus(40, 4, 2026);
    let g = gate_with(Mode::Plain, &messages);
    let fetched = fetch_all_direct_and_through(&g, &messages);
    let big: usize = messages
        .iter()
        .filter(|m| m.len() > 5 << 20)
        .map(Vec::len)
        .sum();
    let ended = support::proc::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let v = spliced_per_session(&g);
        (!v.is_empty()).then_some(v)
    })
    .expect("the FETCH session's end line");
    // Most of each big literal (all but what came with the line in one read) is spliced.
    assert!(
        ended[0] as usize > big / 2 && (ended[0] as usize) < fetched.len(),
        "spliced {} bytes of a FETCH with {big} bytes in messages over 5 MiB",
        ended[0]
    );

    let mut rng = Rng::new(11);
    let sync_msg = varied(1, 6 * 1024 * 1024, &mut rng);
    let nonsync_msg = varied(2, 2 * 1024 * 1024, &mut rng);
    let mut c = g.login();
    c.ok("c1", "CREATE Spliced");
    assert_status_prefix(&c.append_sync("a1", "Spliced", &sync_msg), "a1", "OK");
    assert_status_prefix(&c.append_nonsync("a2", "Spliced", &nonsync_msg), "a2", "OK");
    // Gone after 600 KiB of a 3 MiB literal: nothing may be stored.
    c.send(b"a3 APPEND Spliced {3145728+}\r\n");
    c.send(&vec![b'x'; 600 * 1024]);
    c.shutdown();
    drop(c);
    let ended = support::proc::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let v = spliced_per_session(&g);
        (v.len() >= 2).then_some(v)
    })
    .expect("the APPEND session's end line");
    assert!(
        ended[1] as usize > sync_msg.len() / 2 + nonsync_msg.len() / 2,
        "spliced {} bytes of two APPENDs of {} and {} bytes",
        ended[1],
        sync_msg.len(),
        nonsync_msg.len()
    );

    let mut check = g.direct();
    check.ok("s2", "SELECT Spliced");
    let stored = fetch_literals(&check.ok("f2", "UID FETCH 1:* (BODY.PEEK[])"));
    check.ok("z2", "LOGOUT");
    // Exactly these two: the vanished client's APPEND was not stored.
    assert_stored(
        &stored,
        &[
            ("sync literal", &sync_msg),
            ("non-sync literal", &nonsync_msg),
        ],
    );
    let mut c = g.login();
    c.ok("n1", "NOOP");
    c.ok("z3", "LOGOUT");
    g.finish();
}

/// Message data is never rewritten: subjects that contain a `[CAPABILITY …]` code (as a
/// quoted string and, with a `"` in it, as a literal) reach the client in ENVELOPE and
/// BODY[HEADER] byte for byte as Dovecot sends them; only status responses' codes and
/// `* CAPABILITY` are filtered.
#[test]
fn capability_lookalikes_in_message_data_pass_unchanged() {
    let g = gate(Mode::Plain);
    let messages = [
        simple("[CAPABILITY AUTH=PLAIN x]", "one"),
        simple("a \"quoted\" [CAPABILITY STARTTLS AUTH=PLAIN y] z", "two"),
        simple("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Ready", "three"),
    ];
    let mut direct = g.direct();
    for (i, m) in messages.iter().enumerate() {
        let r = direct.append_sync(&format!("a{i}"), "INBOX", m);
        assert_status_prefix(&r, &format!("a{i}"), "OK");
    }
    direct.ok("s1", "SELECT INBOX");
    let cmd = "UID FETCH 1:* (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])";
    let want = direct.ok("f1", cmd);
    direct.ok("z1", "LOGOUT");
    assert!(contains(&want, b"\"[CAPABILITY AUTH=PLAIN x]\""));

    let mut via = g.login();
    via.ok("s1", "SELECT INBOX");
    let got = via.ok("f1", cmd);
    via.ok("z1", "LOGOUT");
    let (want, got) = (normalize_timing(&want), normalize_timing(&got));
    assert!(
        got == want,
        "ENVELOPE through mailgate differs from direct: {}",
        describe_difference(&got, &want)
    );
    g.finish();
}
