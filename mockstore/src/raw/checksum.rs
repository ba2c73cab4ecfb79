//! CRC-64/XZ (also called CRC-64/GO-ECMA): the digest TiKV's `RawChecksum`
//! xors over `key ‖ value` of every pair (`crc64fast`, Go `crc64.ECMA`).
//!
//! Reflected polynomial `0xC96C5795D7870F42`, initial value and final xor all
//! ones. Check value: `crc64(b"123456789") == 0x995DC9BBDF1939FA`.

const POLY: u64 = 0xC96C_5795_D787_0F42;

const TABLE: [u64; 256] = build_table();

const fn build_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// An incremental CRC-64/XZ digest.
#[derive(Clone, Copy, Debug)]
pub struct Crc64 {
    state: u64,
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64 { state: u64::MAX }
    }
}

impl Crc64 {
    /// A fresh digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            let idx = ((self.state ^ u64::from(*b)) & 0xFF) as usize;
            self.state = TABLE[idx] ^ (self.state >> 8);
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.state ^ u64::MAX
    }
}

/// CRC-64/XZ of `key ‖ value`.
pub fn crc64_pair(key: &[u8], value: &[u8]) -> u64 {
    let mut d = Crc64::new();
    d.update(key);
    d.update(value);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        let mut d = Crc64::new();
        d.update(b"123456789");
        assert_eq!(d.finish(), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64_pair(b"1234", b"56789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(Crc64::new().finish(), 0);
    }
}
