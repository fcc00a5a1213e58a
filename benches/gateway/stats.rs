//! Statistics and the report's rows.

pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

pub fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}

/// One row of the report.
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub direct: f64,
    pub gate: f64,
    /// How the row is judged, e.g. "ratio >= 0.90" or "diff <= 1.0".
    pub target: Target,
}

pub enum Target {
    RatioAtLeast(f64),
    /// For times: mailgate's at most this fraction of direct's.
    RatioAtMost(f64),
    DiffAtMost(f64),
    ValueAtMost(f64),
    None,
}

impl Row {
    pub fn verdict(&self) -> (String, String) {
        let ratio = self.gate / self.direct;
        match self.target {
            Target::RatioAtLeast(t) => (format!("≥ {t:.2}×"), pass(ratio >= t)),
            Target::RatioAtMost(t) => (format!("≤ {t:.1}×"), pass(ratio <= t)),
            Target::DiffAtMost(t) => (
                format!("≤ direct + {t}"),
                pass(self.gate - self.direct <= t),
            ),
            Target::ValueAtMost(t) => (format!("≤ {t}"), pass(self.gate <= t)),
            Target::None => (String::new(), String::new()),
        }
    }
}

pub fn pass(ok: bool) -> String {
    if ok { "yes" } else { "NO" }.to_string()
}
