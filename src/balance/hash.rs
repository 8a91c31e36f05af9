//! Stable, seeded hashing for the hash-based balancers.
//!
//! The hash must map a key to the same value in every worker, after every restart and on every
//! machine, so it cannot be std's randomly keyed `DefaultHasher`. This is 64-bit FNV-1a with a
//! fixed seed, finished with a 64-bit mixer (splitmix64's) so that keys differing in one byte
//! (consecutive client addresses) spread over the whole range.

/// The fixed seed mixed into every hash.
pub const SEED: u64 = 0x7079_6c6f_6e00_0001;

/// The stable hash of `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ SEED;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_across_runs() {
        // Fixed values: a change here changes which server every client is sent to.
        assert_eq!(hash(&[127, 0, 0, 1]), 0x1119_be3e_f888_f9e9);
        assert_ne!(hash(&[127, 0, 0, 1]), hash(&[127, 0, 0, 2]));
    }
}
