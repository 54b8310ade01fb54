//! Probabilistic early refresh (XFetch: Vattani, Chierichetti and Lowenstein,
//! "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015).
//!
//! Each fresh hit refreshes in the background with a chance that grows as expiry
//! nears: it is due when `gap <= delta * beta * -ln(u)`, with `gap` the time left,
//! `delta` how long loads of this cache take (a moving average of its recent loads,
//! where the paper keeps one per entry) and `u` uniform in (0, 1]. Each process
//! draws its own `u`, so a fleet's refreshes spread over the last few `delta`s
//! before expiry instead of all starting at one fraction of the ttl, and a slow
//! loader starts earlier than a fast one.
//!
//! `-ln(u)` above [`HORIZON`] (a chance under 1 in 20,000 per hit) is treated as
//! never, so a hit far from expiry costs a division and no random draw.

use std::cell::Cell;

/// Past `HORIZON` times `delta * beta` before expiry, no refresh starts.
pub(crate) const HORIZON: f64 = 10.0;

/// Whether a hit `gap_ms` before expiry starts a refresh, for loads taking
/// `delta_micros` and this `beta`; `draw` gives `u` in (0, 1] when needed.
pub(crate) fn due(gap_ms: u64, delta_micros: u64, beta: f64, draw: impl FnOnce() -> f64) -> bool {
    let scale_ms = delta_micros as f64 / 1_000.0 * beta;
    if scale_ms <= 0.0 {
        return false;
    }
    let ratio = gap_ms as f64 / scale_ms;
    ratio <= HORIZON && -draw().ln() >= ratio
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    // Threads and processes started in the same nanosecond still differ by stack.
    (time ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// Uniform in (0, 1]: xorshift64*, per thread.
pub(crate) fn draw() -> f64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded source, so the distribution below replays.
    struct Seeded(u64);
    impl Seeded {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        }
    }

    /// Where each of `processes` reading one key every `every_ms` starts its
    /// refresh, in ms before expiry.
    fn start_points(source: &mut Seeded, processes: usize, every_ms: u64, beta: f64) -> Vec<f64> {
        let (ttl_ms, delta_micros) = (60_000u64, 200_000u64);
        (0..processes)
            .map(|_| {
                (0..ttl_ms)
                    .step_by(every_ms as usize)
                    .map(|read_at| ttl_ms - read_at)
                    .find(|&gap| due(gap, delta_micros, beta, || source.next()))
                    .unwrap_or(0) as f64
            })
            .collect()
    }

    fn mean_and_deviation(points: &[f64]) -> (f64, f64) {
        let mean = points.iter().sum::<f64>() / points.len() as f64;
        let variance = points.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / points.len() as f64;
        (mean, variance.sqrt())
    }

    /// 2,000 processes each read one key every 10 ms over a 60 s ttl, with loads of
    /// 200 ms. Read `n` times per `s = delta * beta`, the first due read is the
    /// largest of `n` exponential draws of scale `s`: a Gumbel law, of mean
    /// `s (ln n + 0.577)` and deviation `s π / √6`. The refreshes spread over the
    /// last second or so before expiry, never earlier than `HORIZON * s`, and a
    /// larger beta starts them earlier.
    #[test]
    fn refresh_start_points_follow_the_xfetch_law() {
        let mut source = Seeded(0x5eed_1234_abcd_0042);
        for beta in [1.0, 2.0] {
            let points = start_points(&mut source, 2_000, 10, beta);
            let scale = 200.0 * beta;
            let reads_per_scale = scale / 10.0;
            let expected_mean = scale * (reads_per_scale.ln() + 0.5772);
            let expected_deviation = scale * std::f64::consts::PI / 6f64.sqrt();
            let (mean, deviation) = mean_and_deviation(&points);
            assert!(
                (mean / expected_mean - 1.0).abs() < 0.1,
                "beta {beta}: mean {mean:.0} ms before expiry, expected {expected_mean:.0}"
            );
            assert!(
                (deviation / expected_deviation - 1.0).abs() < 0.2,
                "beta {beta}: deviation {deviation:.0} ms, expected {expected_deviation:.0}"
            );
            let earliest = points.iter().copied().fold(0.0, f64::max);
            assert!(
                earliest <= HORIZON * scale,
                "started {earliest} ms before expiry"
            );
            assert!(
                points.iter().all(|p| *p > 0.0),
                "every one refreshed before expiry"
            );
        }
    }

    #[test]
    fn far_from_expiry_no_draw_is_made_and_without_a_load_time_nothing_is_due() {
        assert!(!due(60_000, 200_000, 1.0, || panic!(
            "drew far from expiry"
        )));
        assert!(!due(10, 0, 1.0, || 1e-9));
        assert!(due(0, 200_000, 1.0, || 1.0), "at expiry it is always due");
        let draws: Vec<f64> = (0..1_000).map(|_| draw()).collect();
        assert!(draws.iter().all(|u| *u > 0.0 && *u <= 1.0));
        let mean = draws.iter().sum::<f64>() / 1_000.0;
        assert!((0.45..0.55).contains(&mean), "uniform: mean {mean}");
    }
}
