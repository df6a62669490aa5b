//! Deterministic noise (xorshift) shared by the benchmarks, so every run
//! sees the same data.

pub struct Noise(pub u64);

impl Noise {
    /// The next value, uniform in [-1, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}
