//! Content-defined chunking: FastCDC (2020 variant, normalization level 1) with a gear table
//! seeded from the master key. Parameters are recorded in the repository config.

use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Always "fastcdc-2020" in format v1.
    pub algorithm: String,
    /// FastCDC normalization level (1 in format v1).
    pub normalization: u8,
    /// Whether the gear table is seeded from the master key (always true in format v1).
    pub seeded: bool,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// The measured default (repo-format.md §Chunking explains the choice).
    fn default() -> Self {
        ChunkerParams::with_avg(DEFAULT_AVG)
    }
}

/// Average chunk size chosen by measurement (see `benches/chunk_size.rs` and repo-format.md).
pub const DEFAULT_AVG: u32 = 256 * 1024;

impl ChunkerParams {
    /// min = avg/4, max = avg*4, the FastCDC paper's recommendation.
    pub fn with_avg(avg: u32) -> ChunkerParams {
        ChunkerParams {
            algorithm: "fastcdc-2020".into(),
            normalization: 1,
            seeded: true,
            min_size: avg / 4,
            avg_size: avg,
            max_size: avg * 4,
        }
    }

    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = self.algorithm == "fastcdc-2020"
            && self.normalization <= 3
            && (MINIMUM_MIN..=MINIMUM_MAX).contains(&(self.min_size as usize))
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&(self.avg_size as usize))
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&(self.max_size as usize))
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size;
        if ok {
            Ok(())
        } else {
            Err(Error::corrupt(
                "config",
                format!("unsupported chunker parameters {self:?}"),
            ))
        }
    }

    fn level(&self) -> Normalization {
        match self.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }
}

/// A configured chunker: parameters plus the key-derived seed.
#[derive(Debug, Clone)]
pub struct Chunker {
    params: ChunkerParams,
    seed: u64,
}

impl Chunker {
    pub fn new(params: ChunkerParams, seed: u64) -> Chunker {
        let seed = if params.seeded { seed } else { 0 };
        Chunker { params, seed }
    }

    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// Chunks of a byte stream, each an owned buffer. Read errors end the stream with an error.
    pub fn stream<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        let p = &self.params;
        StreamCDC::with_level_and_seed(
            reader,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            p.level(),
            self.seed,
        )
        .map(|r| r.map(|c| c.data).map_err(std::io::Error::from))
    }

    /// Cut points of an in-memory buffer: `(offset, length)` pairs covering it.
    pub fn cut(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let p = &self.params;
        FastCDC::with_level_and_seed(
            data,
            p.min_size as usize,
            p.avg_size as usize,
            p.max_size as usize,
            p.level(),
            self.seed,
        )
        .map(|c| (c.offset, c.length))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn small() -> Chunker {
        Chunker::new(ChunkerParams::with_avg(4096), 42)
    }

    #[test]
    fn stream_and_slice_agree_and_cover() {
        let data = pseudo_random(300_000, 1);
        let c = small();
        let streamed: Vec<Vec<u8>> = c.stream(&data[..]).map(|r| r.unwrap()).collect();
        assert_eq!(streamed.concat(), data);
        let cuts = c.cut(&data);
        assert_eq!(cuts.len(), streamed.len());
        for ((o, l), s) in cuts.iter().zip(&streamed) {
            assert_eq!(&data[*o..o + l], &s[..]);
        }
        for (_, l) in &cuts[..cuts.len() - 1] {
            assert!(*l >= 1024 && *l <= 16384);
        }
    }

    #[test]
    fn seed_changes_boundaries() {
        let data = pseudo_random(200_000, 2);
        let a = Chunker::new(ChunkerParams::with_avg(4096), 1).cut(&data);
        let b = Chunker::new(ChunkerParams::with_avg(4096), 2).cut(&data);
        assert_ne!(a, b);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Inserting bytes in the middle changes only chunks near the insertion: every chunk
        /// that ends before it is found again (FastCDC-2020 examines bytes in pairs, so a cut
        /// right at the insertion point may see one inserted byte: "before" means at least two
        /// bytes before), and the chunker resynchronises within a few chunks after it.
        #[test]
        fn boundaries_stable_under_insert(seed in any::<u64>(), at_frac in 0.1f64..0.9, ins in proptest::collection::vec(any::<u8>(), 1..2000)) {
            let data = pseudo_random(200_000, seed);
            let at = (data.len() as f64 * at_frac) as usize;
            let mut edited = data[..at].to_vec();
            edited.extend_from_slice(&ins);
            edited.extend_from_slice(&data[at..]);
            let c = small();
            let after: std::collections::HashSet<Vec<u8>> =
                c.cut(&edited).into_iter().map(|(o, l)| edited[o..o + l].to_vec()).collect();
            let before = c.cut(&data);
            let mut lost = 0;
            for &(o, l) in &before {
                if !after.contains(&data[o..o + l]) {
                    prop_assert!(o + l + 2 > at, "chunk at {} ending before the insert at {} changed", o, at);
                    lost += 1;
                }
            }
            // Resynchronisation usually takes one to three chunks but can take more (a cut must
            // land on the same content in both streams); a chunker that does not resynchronise
            // loses every chunk after the insert (about half of them here).
            prop_assert!(lost <= 12, "lost {} of {} chunks", lost, before.len());
        }
    }
}
