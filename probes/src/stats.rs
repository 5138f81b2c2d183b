//! Sample statistics for the sampling probes (ICMP echoes, repeated TCP connects).
//!
//! Percentiles use the nearest-rank method on the received samples; jitter is the mean absolute difference of
//! consecutive received RTTs (RFC 3550's idea without its smoothing), in send order.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Round-trip (or connect) time statistics over the samples that got an answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttStats {
    #[serde(rename = "min_ms", with = "crate::ms")]
    pub min: Duration,
    #[serde(rename = "mean_ms", with = "crate::ms")]
    pub mean: Duration,
    #[serde(rename = "p50_ms", with = "crate::ms")]
    pub p50: Duration,
    #[serde(rename = "p95_ms", with = "crate::ms")]
    pub p95: Duration,
    #[serde(rename = "max_ms", with = "crate::ms")]
    pub max: Duration,
    /// Mean absolute difference of consecutive samples; zero with fewer than two samples.
    #[serde(rename = "jitter_ms", with = "crate::ms")]
    pub jitter: Duration,
}

impl RttStats {
    /// Statistics over samples in the order they were sent; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<RttStats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let total: Duration = sorted.iter().sum();
        let jitter = if n < 2 {
            Duration::ZERO
        } else {
            let diffs: Duration = samples.windows(2).map(|w| w[0].abs_diff(w[1])).sum();
            diffs / (n as u32 - 1)
        };
        Some(RttStats {
            min: sorted[0],
            mean: total / n as u32,
            p50: nearest_rank(&sorted, 50),
            p95: nearest_rank(&sorted, 95),
            max: sorted[n - 1],
            jitter,
        })
    }
}

/// Nearest-rank percentile of a sorted, non-empty slice.
fn nearest_rank(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Loss ratio in 0.0–1.0; zero when nothing was sent.
pub fn loss_ratio(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    f64::from(sent.saturating_sub(received)) / f64::from(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn empty_has_no_stats() {
        assert_eq!(RttStats::from_samples(&[]), None);
    }

    #[test]
    fn single_sample() {
        let s = RttStats::from_samples(&ms(&[7])).expect("stats");
        assert_eq!((s.min, s.p50, s.p95, s.max), (ms(&[7])[0], ms(&[7])[0], ms(&[7])[0], ms(&[7])[0]));
        assert_eq!(s.jitter, Duration::ZERO);
    }

    #[test]
    fn percentiles_nearest_rank_and_jitter_in_send_order() {
        // 20 samples 1..=20 ms, sent in order: p50 is the 10th, p95 the 19th, jitter 1 ms.
        let v: Vec<u64> = (1..=20).collect();
        let s = RttStats::from_samples(&ms(&v)).expect("stats");
        assert_eq!(s.p50, Duration::from_millis(10));
        assert_eq!(s.p95, Duration::from_millis(19));
        assert_eq!(s.jitter, Duration::from_millis(1));
        assert_eq!(s.mean, Duration::from_micros(10_500));
        // Jitter follows send order, not sorted order: 10, 20, 10 → |10|+|10| / 2 = 10 ms.
        let s = RttStats::from_samples(&ms(&[10, 20, 10])).expect("stats");
        assert_eq!(s.jitter, Duration::from_millis(10));
    }

    #[test]
    fn loss() {
        assert_eq!(loss_ratio(0, 0), 0.0);
        assert_eq!(loss_ratio(4, 3), 0.25);
        assert_eq!(loss_ratio(5, 0), 1.0);
    }
}
