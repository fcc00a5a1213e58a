//! Questions at the terminal (the prompts go to stderr, so stdout stays the result).

use anyhow::{bail, Result};
use std::io::BufRead;

/// One line typed on the terminal (the prompt goes to stderr, so stdout stays the result).
pub fn ask(prompt: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("no answer (end of input)");
    }
    Ok(line.trim().to_owned())
}

/// How many times a question is asked again after an answer it cannot use.
pub const ASK_TRIES: usize = 5;

/// Asks `question` until `parse` takes the answer (at most [`ASK_TRIES`] times); the reason
/// an answer is refused is shown before the question comes again.
pub fn ask_until<T>(question: &str, parse: impl Fn(&str) -> Result<T>) -> Result<T> {
    for _ in 1..ASK_TRIES {
        match parse(&ask(question)?) {
            Ok(v) => return Ok(v),
            Err(e) => eprintln!("{e:#}"),
        }
    }
    parse(&ask(question)?)
}
