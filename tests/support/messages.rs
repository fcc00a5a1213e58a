//! Deterministic test messages: CRLF line endings, 8-bit bytes, and lines that look like
//! IMAP protocol (tagged completions, literal announcements) to trip any relay that
//! interprets literal content.

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A small plain message.
pub fn simple(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Kari Nordmann <kari@example.org>\r\n\
         To: Ola Nordmann <ola@example.no>\r\n\
         Subject: {subject}\r\n\
         Date: Mon, 3 Mar 2025 10:00:00 +0100\r\n\
         Message-ID: <{}@mailgate.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// Body lines that look like protocol. A line ending in `{5}` is the nastiest one: a relay
/// that scans literal bytes for literal announcements would then swallow 5 bytes too many.
const TRAPS: &[&str] = &[
    "a1 OK Fetch completed (0.001 + 0.000 secs).",
    "f1 OK done",
    "* 3 EXISTS",
    "* BYE server shutting down",
    "{5}",
    "a2 APPEND INBOX {5}",
    "* 1 FETCH (BODY[] {12}",
    ")",
    "+ Ready for literal data",
    "x LOGIN ola secret",
    "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN]",
    "~{7}",
    "{0}",
    ".",
    "",
];

fn eight_bit_line(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| loop {
            let b = rng.below(256) as u8;
            // No CR, LF or NUL: Dovecot would rewrite NUL, and bare CR/LF change framing.
            if b != b'\r' && b != b'\n' && b != 0 {
                break b;
            }
        })
        .collect()
}

fn word_line(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "post",
        "brev",
        "melding",
        "hei",
        "fra",
        "til",
        "kontor",
        "mailgate",
        "Dovecot",
        "blåbær",
        "smørbrød",
        "Ærlig",
        "øl",
        "år",
        "ΑΒΓ",
        "データ",
        "literal",
        "OK",
        "NO",
        "BAD",
        "FETCH",
        "UID",
        "(",
        ")",
        "\"quoted\"",
        "\\Seen",
        "[]",
        "<>",
        "{}",
    ];
    let mut line = Vec::with_capacity(len + 16);
    while line.len() < len {
        if !line.is_empty() {
            line.push(b' ');
        }
        line.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
    }
    line
}

/// One message of about `target` bytes (CRLF endings throughout) with varied content.
pub fn varied(index: usize, target: usize, rng: &mut Rng) -> Vec<u8> {
    let mut m = Vec::with_capacity(target + 1024);
    m.extend_from_slice(
        format!(
            "From: sender{index}@example.org\r\n\
             To: ola@example.no\r\n\
             Subject: message {index} {{5}}\r\n\
             Date: Tue, 4 Mar 2025 12:{:02}:{:02} +0100\r\n\
             Message-ID: <m{index}@mailgate.test>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n",
            index / 60 % 60,
            index % 60
        )
        .as_bytes(),
    );
    while m.len() < target {
        let line = match rng.below(10) {
            0..=1 => TRAPS[rng.below(TRAPS.len() as u64) as usize]
                .as_bytes()
                .to_vec(),
            2..=3 => {
                let len = 1 + rng.below(120) as usize;
                eight_bit_line(rng, len)
            }
            4 => {
                // A long line (under the 998 octets RFC 5322 allows).
                let len = 500 + rng.below(490) as usize;
                word_line(rng, len)
            }
            _ => {
                let len = 10 + rng.below(70) as usize;
                word_line(rng, len)
            }
        };
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    // End on a trap line, so the literal's last bytes look like a literal announcement.
    m.extend_from_slice(b"a1 OK {5}\r\n");
    m
}

/// The corpus for the byte-identical FETCH test: `big` messages of a little over 5 MiB
/// spread through the mailbox, the rest small (200 bytes to ~24 KiB).
pub fn corpus(count: usize, big: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let big_every = count.checked_div(big).unwrap_or(usize::MAX);
    (0..count)
        .map(|i| {
            let target = if big > 0 && i % big_every == big_every / 2 && i / big_every < big {
                5 * 1024 * 1024 + 1 + rng.below(700 * 1024) as usize
            } else if rng.below(20) == 0 {
                8 * 1024 + rng.below(16 * 1024) as usize
            } else {
                200 + rng.below(6 * 1024) as usize
            };
            varied(i, target, &mut rng)
        })
        .collect()
}
