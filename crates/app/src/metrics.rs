//! Prometheus metrics in the text exposition format: request latency
//! histograms per route, decision latency, job counts and durations,
//! training throughput. Plain atomics and a mutex-guarded map, no
//! registry crate: the format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds, so it can be an integer atomic.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Counts one duration in every bucket it fits.
    pub fn observe(&self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Every metric the server exports.
#[derive(Default)]
pub struct Metrics {
    /// By (method, route template, status class).
    requests: Mutex<BTreeMap<(String, String, u16), std::sync::Arc<Histogram>>>,
    /// Latency of the decision endpoint's model and risk layer.
    pub decisions: Histogram,
    /// By (kind, outcome).
    jobs: Mutex<BTreeMap<(String, String), std::sync::Arc<Histogram>>>,
}

/// What the database says about jobs when /metrics is read: counts by
/// status (all workers, every machine) and each running training job's
/// latest throughput.
#[derive(Default)]
pub struct JobFacts {
    /// Jobs by status, from the store.
    pub counts: Vec<(String, i64)>,
    /// (job id, steps per second).
    pub training_steps_per_second: Vec<(String, f64)>,
    /// (session id, last checkpoint) of each live trading session, run by
    /// any process: equity, P&L, latency, breakers, correlations and
    /// volatility contributions.
    pub trading_sessions: Vec<(String, serde_json::Value)>,
}

/// Instruments up to which a session's correlation pairs are exported
/// (n(n-1)/2 series each).
const CORRELATION_PAIRS_UP_TO: usize = 20;

/// The trading sessions' gauges.
fn render_trading(out: &mut String, sessions: &[(String, serde_json::Value)]) {
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}
# TYPE {name} gauge"
        );
    };
    let f = |v: &serde_json::Value| v.as_f64().filter(|x| x.is_finite());
    gauge(
        out,
        "tradelab_trading_equity",
        "Equity of each live trading session at its last checkpoint.",
    );
    for (id, cp) in sessions {
        if let Some(e) = f(&cp["equity"]) {
            let _ = writeln!(out, "tradelab_trading_equity{{session=\"{}\"}} {e}", escape(id));
        }
    }
    gauge(
        out,
        "tradelab_trading_decision_p99_seconds",
        "Bar in to order out, 99th percentile, of each live trading session.",
    );
    for (id, cp) in sessions {
        if let Some(us) = f(&cp["latency_us"][1]) {
            let _ = writeln!(
                out,
                "tradelab_trading_decision_p99_seconds{{session=\"{}\"}} {}",
                escape(id),
                us / 1e6
            );
        }
    }
    gauge(
        out,
        "tradelab_trading_breaker_state",
        "Each circuit breaker: 0 closed, 1 half-open (probation), 2 open.",
    );
    for (id, cp) in sessions {
        let states = cp["breakers"]["states"].as_array().cloned().unwrap_or_default();
        for (kind, st) in tradelab_trade::BreakerKind::ALL.iter().zip(&states) {
            let v = match st["state"].as_str() {
                Some("open") => 2,
                Some("half_open") => 1,
                _ => 0,
            };
            let _ = writeln!(
                out,
                "tradelab_trading_breaker_state{{session=\"{}\",breaker=\"{}\"}} {v}",
                escape(id),
                kind.name()
            );
        }
    }
    gauge(
        out,
        "tradelab_trading_portfolio_volatility",
        "Portfolio volatility per bar over the correlation window.",
    );
    gauge(
        out,
        "tradelab_trading_volatility_contribution",
        "Each instrument's share of the portfolio volatility per bar (they add up to it).",
    );
    gauge(
        out,
        "tradelab_trading_correlation",
        "Rolling correlation of two instruments' returns (sessions of up to 20 instruments).",
    );
    for (id, cp) in sessions {
        let risk = &cp["risk"];
        let symbols = cp["symbols"].as_array().cloned().unwrap_or_default();
        let name = |i: usize| escape(symbols.get(i).and_then(|v| v.as_str()).unwrap_or("?"));
        if let Some(v) = f(&risk["volatility"]) {
            let _ = writeln!(
                out,
                "tradelab_trading_portfolio_volatility{{session=\"{}\"}} {v}",
                escape(id)
            );
        }
        for (i, c) in risk["contributions"].as_array().into_iter().flatten().enumerate() {
            if let Some(c) = f(c) {
                let _ = writeln!(
                    out,
                    "tradelab_trading_volatility_contribution{{session=\"{}\",instrument=\"{}\"}} {c}",
                    escape(id),
                    name(i)
                );
            }
        }
        let rows = risk["correlation"].as_array().cloned().unwrap_or_default();
        if rows.len() <= CORRELATION_PAIRS_UP_TO {
            for (i, row) in rows.iter().enumerate() {
                for (j, c) in row.as_array().into_iter().flatten().enumerate().skip(i + 1) {
                    if let Some(c) = f(c) {
                        let _ = writeln!(
                            out,
                            "tradelab_trading_correlation{{session=\"{}\",a=\"{}\",b=\"{}\"}} {c}",
                            escape(id),
                            name(i),
                            name(j)
                        );
                    }
                }
            }
        }
    }
}

/// Observes into the histogram for `key`, created on first use; the map's
/// lock is held only to find it.
fn observe<K: Ord>(map: &Mutex<BTreeMap<K, std::sync::Arc<Histogram>>>, key: K, seconds: f64) {
    let h = map
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .clone();
    h.observe(seconds);
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Records a request by its route template (`/v1/models/{name}`), never
    /// its raw path, and by its method among the standard ones (any other
    /// is `OTHER`), so no client can grow the label set: each new series
    /// is memory held until the process ends.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
        let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("OTHER");
        observe(&self.requests, (method.to_string(), route.to_string(), status), seconds);
    }

    /// Counts a finished job by kind and outcome, with its duration.
    pub fn observe_job(&self, kind: &str, outcome: &str, seconds: f64) {
        observe(&self.jobs, (kind.to_string(), outcome.to_string()), seconds);
    }

    /// The Prometheus text exposition of every metric, with the store's job counts.
    pub fn render(&self, facts: &JobFacts) -> String {
        let mut out = String::new();
        out.push_str("# HELP tradelab_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE tradelab_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            );
            h.render(&mut out, "tradelab_http_request_duration_seconds", &labels);
        }
        out.push_str(
            "# HELP tradelab_decision_duration_seconds Model decision latency, risk checks and audit write included.\n",
        );
        out.push_str("# TYPE tradelab_decision_duration_seconds histogram\n");
        self.decisions
            .render(&mut out, "tradelab_decision_duration_seconds", "");
        out.push_str("# HELP tradelab_job_duration_seconds Background job duration by kind and outcome.\n");
        out.push_str("# TYPE tradelab_job_duration_seconds histogram\n");
        for ((kind, outcome), h) in self.jobs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels = format!("kind=\"{}\",outcome=\"{}\"", escape(kind), escape(outcome));
            h.render(&mut out, "tradelab_job_duration_seconds", &labels);
        }
        out.push_str("# HELP tradelab_jobs Jobs by status, across every worker.\n");
        out.push_str("# TYPE tradelab_jobs gauge\n");
        for (status, n) in &facts.counts {
            let _ = writeln!(out, "tradelab_jobs{{status=\"{}\"}} {n}", escape(status));
        }
        out.push_str("# HELP tradelab_training_steps_per_second Environment steps per second of each running training job's latest update.\n");
        out.push_str("# TYPE tradelab_training_steps_per_second gauge\n");
        for (job, sps) in &facts.training_steps_per_second {
            let _ = writeln!(
                out,
                "tradelab_training_steps_per_second{{job=\"{}\"}} {sps}",
                escape(job)
            );
        }
        render_trading(&mut out, &facts.trading_sessions);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labelled_by_route() {
        let m = Metrics::default();
        m.observe_request("GET", "/v1/models/{name}", 200, 0.003);
        m.observe_request("GET", "/v1/models/{name}", 200, 0.2);
        m.decisions.observe(0.0004);
        m.observe_job("train", "finished", 12.0);
        let checkpoint = serde_json::json!({
            "equity": 101_000.0, "latency_us": [1.0, 420.0], "symbols": ["a", "b"],
            "breakers": {"states": [{"state": "open", "since": 3, "cooldown": 5}, {"state": "closed"}, {"state": "half_open", "since": 1, "cooldown": 5}]},
            "risk": {"volatility": 0.01, "contributions": [0.004, 0.006], "correlation": [[1.0, -0.3], [-0.3, 1.0]]},
        });
        let facts = JobFacts {
            counts: vec![("queued".into(), 2)],
            training_steps_per_second: vec![("j1".into(), 1500.0)],
            trading_sessions: vec![("s1".into(), checkpoint)],
        };
        let text = m.render(&facts);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle}: {text}"))
        };
        let labels = "method=\"GET\",route=\"/v1/models/{name}\",status=\"200\"";
        assert!(line(&format!(
            "tradelab_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}}"
        ))
        .ends_with(" 1"));
        assert!(line(&format!(
            "tradelab_http_request_duration_seconds_bucket{{{labels},le=\"0.25\"}}"
        ))
        .ends_with(" 2"));
        assert!(line(&format!("tradelab_http_request_duration_seconds_count{{{labels}}}")).ends_with(" 2"));
        assert!(line("tradelab_decision_duration_seconds_bucket{le=\"0.0005\"}").ends_with(" 1"));
        assert!(line("tradelab_decision_duration_seconds_count").ends_with(" 1"));
        assert!(line("tradelab_job_duration_seconds_count{kind=\"train\",outcome=\"finished\"}").ends_with(" 1"));
        assert!(line("tradelab_jobs{status=\"queued\"}").ends_with(" 2"));
        assert!(line("tradelab_training_steps_per_second{job=\"j1\"}").ends_with(" 1500"));
        assert!(line("tradelab_trading_equity{session=\"s1\"}").ends_with(" 101000"));
        assert!(line("tradelab_trading_decision_p99_seconds{session=\"s1\"}").ends_with(" 0.00042"));
        assert!(line("tradelab_trading_breaker_state{session=\"s1\",breaker=\"stale_feed\"}").ends_with(" 2"));
        assert!(line("tradelab_trading_breaker_state{session=\"s1\",breaker=\"data_gap\"}").ends_with(" 0"));
        assert!(line("tradelab_trading_breaker_state{session=\"s1\",breaker=\"bad_bar\"}").ends_with(" 1"));
        assert!(line("tradelab_trading_portfolio_volatility{session=\"s1\"}").ends_with(" 0.01"));
        assert!(line("tradelab_trading_volatility_contribution{session=\"s1\",instrument=\"b\"}").ends_with(" 0.006"));
        assert!(line("tradelab_trading_correlation{session=\"s1\",a=\"a\",b=\"b\"}").ends_with(" -0.3"));
        assert!(!text.contains("a=\"b\",b=\"a\""), "each pair once");
    }

    #[test]
    fn invented_methods_share_one_series() {
        // Issue 19 finding 3: each new method name was a permanent series.
        let m = Metrics::default();
        for i in 0..300 {
            m.observe_request(&format!("X{i}"), "unmatched", 405, 0.001);
        }
        m.observe_request("DELETE", "unmatched", 405, 0.001);
        let text = m.render(&JobFacts::default());
        let counts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tradelab_http_request_duration_seconds_count"))
            .collect();
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert!(
            counts
                .iter()
                .any(|l| l.contains("method=\"OTHER\"") && l.ends_with(" 300")),
            "{counts:?}"
        );
    }
}
