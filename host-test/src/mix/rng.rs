//! The mixes' deterministic random source: xorshift64* (Vigna, "An experimental
//! exploration of Marsaglia's xorshift generators", 2016), seeded through
//! SplitMix64. Small, fast and plenty for workload shapes; not cryptographic.

/// A seeded pseudo-random generator; the same seed gives the same mix.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        // SplitMix64 spreads nearby seeds apart; `| 1` keeps the state non-zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng { state: (z ^ (z >> 31)) | 1 }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        let span = hi.saturating_sub(lo) as u64 + 1;
        lo + self.below(span) as usize
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A Pareto-distributed size: at least `min`, tail index `alpha` (smaller is
    /// heavier), clamped to `max`.
    pub fn pareto(&mut self, min: usize, alpha: f64, max: usize) -> usize {
        // Inverse transform: min / U^(1/alpha) with U in (0, 1].
        let u = 1.0 - self.unit();
        let x = min as f64 / u.powf(1.0 / alpha);
        if x >= max as f64 { max } else { (x as usize).max(min) }
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = tail.len();
        tail.copy_from_slice(&last[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_seeds_differ() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn ranges_stay_in_bounds_and_reach_both_ends() {
        let mut rng = Rng::new(1);
        let draws: Vec<usize> = (0..10_000).map(|_| rng.range(50, 53)).collect();
        assert!(draws.iter().all(|d| (50..=53).contains(d)));
        assert!(draws.contains(&50) && draws.contains(&53));
        let sizes: Vec<usize> = (0..10_000).map(|_| rng.pareto(100, 1.1, 1 << 20)).collect();
        assert!(sizes.iter().all(|s| (100..=1 << 20).contains(s)));
        // Heavy tail: the median stays small while some draws are 100x larger.
        let mut sorted = sizes.clone();
        sorted.sort_unstable();
        assert!(sorted[5_000] < 300, "median {}", sorted[5_000]);
        assert!(sorted[9_990] > 10_000, "p99.9 {}", sorted[9_990]);
    }

    #[test]
    fn fill_covers_odd_lengths() {
        let mut rng = Rng::new(3);
        let mut buf = [0u8; 13];
        rng.fill(&mut buf);
        assert!(buf[8..].iter().any(|&b| b != 0));
    }
}
