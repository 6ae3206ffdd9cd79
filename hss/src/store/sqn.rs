//! SQN allocation: no two vectors ever carry the same SQN, without a DB write per vector.
//!
//! # Design
//!
//! SQN = SEQ ‖ IND with a 5-bit IND (TS 33.102 Annex C.3.2); the HSS steps SEQ, so
//! consecutive vectors differ by [`SQN_STEP`] = 32 and IND stays 0.
//!
//! The `sqn` column of a subscriber is a **reservation ceiling**: every SQN ever handed
//! out is ≤ it. The HSS keeps, per subscriber and in memory, a block `(next, limit]`
//! that it has already reserved in the DB. Handing out an SQN is `next += 32` under a
//! per-subscriber lock, with no I/O. When the block runs out, the HSS reserves the next
//! one with a single atomic statement,
//! `UPDATE subscribers SET sqn = sqn + <block> WHERE id = ? RETURNING sqn`,
//! and only then hands out SQNs from it. Hence:
//!
//! - **Uniqueness under concurrency**: one lock per subscriber in the process, and the
//!   atomic `UPDATE … RETURNING` between processes (two HSS processes on one DB take
//!   disjoint blocks).
//! - **Durability**: a restart loses only the unused rest of the block; the new process
//!   starts above the ceiling, so new SQNs are higher than every SQN handed out before.
//!   The gap (at most [`BLOCK_VECTORS`] × 32) is harmless: the USIM accepts any higher
//!   SQN within Δ = 2^28 SEQ steps (TS 33.102 Annex C.2.1).
//! - **Provisioning changes** (`hss subscriber …`, REST) that set the SQN or replace the
//!   subscriber evict the in-memory block (see [`crate::store::cache`]); the next MAR
//!   reserves afresh from the DB.
//! - **Re-synchronisation** (TS 33.102 §6.3.5): if the next SQN the HSS would send is
//!   acceptable to a USIM holding SQN_MS (above it and within Δ) nothing changes;
//!   otherwise the ceiling is set to SQN_MS and the block dropped, so the next vector
//!   carries SQN_MS + 32.

/// Distance between consecutive SQNs (IND is 5 bits, TS 33.102 Annex C.3.2).
pub const SQN_STEP: u64 = 32;

/// Vectors reserved per DB write.
pub const BLOCK_VECTORS: u64 = 1024;

/// Δ of TS 33.102 Annex C.2.1 (2^28 SEQ steps), in SQN units.
pub const DELTA: u64 = (1 << 28) * SQN_STEP;

/// The in-memory block of reserved SQNs for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqnBlock {
    /// The last SQN handed out (or the block start).
    pub last: u64,
    /// The reserved ceiling: SQNs up to and including it may be handed out.
    pub limit: u64,
}

impl SqnBlock {
    /// A block that holds nothing yet (forces a reservation on first use).
    pub fn empty() -> Self {
        Self { last: 0, limit: 0 }
    }

    /// Takes up to `n` SQNs from the block; returns fewer if it runs out.
    pub fn take(&mut self, n: usize, out: &mut Vec<u64>) -> usize {
        let mut taken = 0;
        while taken < n && self.limit >= SQN_STEP && self.last <= self.limit - SQN_STEP {
            self.last += SQN_STEP;
            out.push(self.last);
            taken += 1;
        }
        taken
    }

    /// Installs a freshly reserved range `(old_ceiling, new_ceiling]`.
    pub fn refill(&mut self, old_ceiling: u64, new_ceiling: u64) {
        self.last = old_ceiling;
        self.limit = new_ceiling;
    }
}

/// How much to add to the ceiling for one reservation that must cover `n` vectors.
pub fn reservation_size(n: usize) -> u64 {
    (BLOCK_VECTORS.max(n as u64)) * SQN_STEP
}

/// Re-synchronisation decision (TS 33.102 §6.3.5): `None` when the next SQN the HSS
/// would send (`last_sent + 32`) is acceptable to a USIM at SQN_MS; otherwise the new
/// ceiling (= SQN_MS).
pub fn resync_ceiling(next_sqn: u64, sqn_ms: u64) -> Option<u64> {
    if next_sqn > sqn_ms && next_sqn - sqn_ms <= DELTA {
        None
    } else {
        Some(sqn_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_hands_out_steps_of_32_until_limit() {
        let mut b = SqnBlock::empty();
        let mut out = vec![];
        assert_eq!(b.take(1, &mut out), 0);
        b.refill(64, 64 + 3 * 32);
        assert_eq!(b.take(5, &mut out), 3);
        assert_eq!(out, vec![96, 128, 160]);
        assert_eq!(b.take(1, &mut out), 0);
    }

    #[test]
    fn resync_decision() {
        // USIM is behind what we would send next: keep going.
        assert_eq!(resync_ceiling(1000, 500), None);
        // USIM is ahead (or equal): move to SQN_MS.
        assert_eq!(resync_ceiling(1000, 1000), Some(1000));
        assert_eq!(resync_ceiling(1000, 5000), Some(5000));
        // We are too far ahead (beyond Δ): move back to SQN_MS.
        assert_eq!(resync_ceiling(DELTA + 10_000, 5000), Some(5000));
    }
}
