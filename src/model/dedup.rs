//! Model layer: duplicated content. Pure: a content-defined chunker (a gear rolling hash, as in
//! FastCDC) that turns bytes into `(xxh3 hash, length)` chunks whose boundaries follow the
//! content, so a copy of the same bytes at another offset inside its pages — a pickled array
//! lands 48 bytes into its page where the original was at 16 — still yields the same chunks;
//! and the accounting that counts every chunk seen before as duplicated.
//!
//! Only hashes and lengths are kept, never content.

use std::collections::HashMap;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// No boundary before this many bytes of a chunk: the bytes before it are only hashed, so a
/// large minimum keeps the per-byte rolling hash to about a quarter of the content.
pub const MIN_CHUNK: usize = 6 * 1024;
/// Boundaries get likelier past this length (normalized chunking).
pub const AVG_CHUNK: usize = 8 * 1024;
/// A chunk ends here whatever its content.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Stricter before the average size, looser after it: chunk lengths cluster around AVG.
const MASK_SMALL: u64 = (1 << 15) - 1;
const MASK_LARGE: u64 = (1 << 11) - 1;
/// The gear hash of a position depends on the 64 bytes before it.
const WINDOW: usize = 64;

/// 256 pseudo-random 64-bit values (wyrand from a fixed seed): the same boundaries on every
/// run and every machine.
const GEAR: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut state: u64 = 0x6d65_6d74_7265_6764;
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (state as u128) * ((state ^ 0xe703_7ed1_a0b4_28db) as u128);
        table[i] = ((t >> 64) as u64) ^ (t as u64);
        i += 1;
    }
    table
};

/// One chunk: the xxh3 of its bytes and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    pub hash: u64,
    pub len: u32,
}

/// Streaming content-defined chunker: feed it the bytes of a contiguous region in any slices;
/// [`Chunker::finish`] ends the region.
pub struct Chunker {
    gear: u64,
    len: usize,
    /// The last scan found a content-defined boundary.
    boundary: bool,
    hasher: Xxh3,
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker { gear: 0, len: 0, boundary: false, hasher: Xxh3::new() }
    }
}

impl Chunker {
    pub fn feed(&mut self, mut data: &[u8], out: &mut impl FnMut(Chunk)) {
        while !data.is_empty() {
            // Fast path: a whole chunk inside `data` is hashed in one call, no streaming state.
            if self.len == 0 && data.len() >= MIN_CHUNK {
                let mut probe = Chunker { gear: 0, len: MIN_CHUNK - WINDOW, ..Chunker::default() };
                let from = MIN_CHUNK - WINDOW;
                if let Some(cut) = probe.scan(&data[from..]) {
                    let end = from + cut;
                    out(Chunk { hash: xxh3_64(&data[..end]), len: end as u32 });
                    data = &data[end..];
                    continue;
                }
            }
            // Bytes that cannot reach a boundary are only hashed (xxh3, at memory speed).
            let blind = (MIN_CHUNK - WINDOW).saturating_sub(self.len);
            if blind > 0 {
                let take = blind.min(data.len());
                self.hasher.update(&data[..take]);
                self.len += take;
                data = &data[take..];
                continue;
            }
            let take = match self.scan(data) {
                Some(cut) => cut,
                None => data.len(),
            };
            self.hasher.update(&data[..take]);
            let cut = self.len + take >= MAX_CHUNK || self.boundary;
            self.len += take;
            data = &data[take..];
            if cut {
                self.emit(out);
            }
        }
    }

    /// Runs the gear hash over `data` from the current chunk length; returns where the chunk
    /// ends, if it does within `data`. Three tight loops, one per stretch of the chunk (window
    /// warm-up, strict mask, loose mask), so the per-byte work is a shift, an add, a test.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        self.boundary = false;
        let mut gear = self.gear;
        let mut i = 0;
        let n = data.len();
        // Warm-up: the 64 bytes before MIN_CHUNK feed the window but cannot cut.
        let warm = MIN_CHUNK.saturating_sub(self.len).min(n);
        while i < warm {
            gear = (gear << 1).wrapping_add(GEAR[usize::from(data[i])]);
            i += 1;
        }
        let strict = AVG_CHUNK.saturating_sub(self.len).min(n);
        while i < strict {
            gear = (gear << 1).wrapping_add(GEAR[usize::from(data[i])]);
            i += 1;
            if gear & MASK_SMALL == 0 {
                self.gear = gear;
                self.boundary = true;
                return Some(i);
            }
        }
        let loose = MAX_CHUNK.saturating_sub(self.len).min(n);
        while i < loose {
            gear = (gear << 1).wrapping_add(GEAR[usize::from(data[i])]);
            i += 1;
            if gear & MASK_LARGE == 0 {
                self.gear = gear;
                self.boundary = true;
                return Some(i);
            }
        }
        self.gear = gear;
        (self.len + i >= MAX_CHUNK).then_some(i)
    }

    /// Ends the current region: what was fed since the last boundary is a chunk of its own.
    pub fn finish(&mut self, out: &mut impl FnMut(Chunk)) {
        if self.len > 0 {
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut impl FnMut(Chunk)) {
        out(Chunk { hash: self.hasher.digest(), len: self.len as u32 });
        self.hasher.reset();
        self.len = 0;
        self.gear = 0;
    }
}

/// What the content scan of one process found: its chunks (in address order, each tagged with
/// the index of its mapping), the zero-filled pages per mapping, and what could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentRaw {
    pub chunks: Vec<(Chunk, u32)>,
    /// `(mapping index, bytes)` of pages that are all zeros.
    pub zero_filled: Vec<(u32, u64)>,
    /// Bytes hashed (zero-filled pages included).
    pub scanned: u64,
    /// Bytes that vanished between the page walk and the read.
    pub unread: u64,
}

/// Duplicated and zero-filled bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duplication {
    /// Bytes of chunks whose content was already seen (in this process or an earlier one of the
    /// tree): what sharing or merging the copies could give back.
    pub duplicated: u64,
    pub zero_filled: u64,
}

/// The tree's duplication, per process (in the given order: the first holder of a content is
/// its original) and per mapping name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DedupTotals {
    pub total: Duplication,
    pub scanned: u64,
    pub unread: u64,
    /// Distinct contents seen.
    pub distinct_chunks: usize,
    pub by_name: Vec<(String, Duplication)>,
}

/// Counts duplicates over `processes` (names of their mappings, and their content).
pub fn account(processes: &[(&[String], &ContentRaw)]) -> (DedupTotals, Vec<Duplication>) {
    let mut seen: HashMap<Chunk, ()> = HashMap::new();
    let mut totals = DedupTotals::default();
    let mut per_process = vec![Duplication::default(); processes.len()];
    let mut by_name: HashMap<&str, Duplication> = HashMap::new();
    for (index, (names, content)) in processes.iter().enumerate() {
        totals.scanned += content.scanned;
        totals.unread += content.unread;
        for &(mapping, bytes) in &content.zero_filled {
            per_process[index].zero_filled += bytes;
            let name = names.get(mapping as usize).map_or("[unknown]", String::as_str);
            by_name.entry(name).or_default().zero_filled += bytes;
        }
        for &(chunk, mapping) in &content.chunks {
            if seen.insert(chunk, ()).is_some() {
                per_process[index].duplicated += u64::from(chunk.len);
                let name = names.get(mapping as usize).map_or("[unknown]", String::as_str);
                by_name.entry(name).or_default().duplicated += u64::from(chunk.len);
            }
        }
    }
    totals.distinct_chunks = seen.len();
    totals.total = Duplication {
        duplicated: per_process.iter().map(|d| d.duplicated).sum(),
        zero_filled: per_process.iter().map(|d| d.zero_filled).sum(),
    };
    let mut by_name: Vec<(String, Duplication)> =
        by_name.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
    by_name.sort_by(|a, b| {
        (b.1.duplicated + b.1.zero_filled)
            .cmp(&(a.1.duplicated + a.1.zero_filled))
            .then_with(|| a.0.cmp(&b.0))
    });
    totals.by_name = by_name;
    (totals, per_process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut state = seed;
        for b in &mut out {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (state >> 33) as u8;
        }
        out
    }

    fn chunks(data: &[u8], slices: usize) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut chunker = Chunker::default();
        for part in data.chunks(data.len().div_ceil(slices)) {
            chunker.feed(part, &mut |c| out.push(c));
        }
        chunker.finish(&mut |c| out.push(c));
        out
    }

    #[test]
    fn chunks_cover_the_input_within_bounds_and_do_not_depend_on_slicing() {
        let data = random(1 << 20, 1);
        let whole = chunks(&data, 1);
        assert_eq!(whole.iter().map(|c| c.len as usize).sum::<usize>(), data.len());
        assert!(
            whole[..whole.len() - 1]
                .iter()
                .all(|c| (MIN_CHUNK..=MAX_CHUNK).contains(&(c.len as usize)))
        );
        let average = data.len() / whole.len();
        assert!((AVG_CHUNK / 2..AVG_CHUNK * 2).contains(&average), "average {average}");
        assert_eq!(chunks(&data, 7), whole, "slicing the stream changes nothing");
    }

    #[test]
    fn a_copy_at_another_offset_yields_the_same_chunks() {
        let data = random(512 * 1024, 2);
        let original = [vec![0xAB; 16], data.clone()].concat();
        let shifted = [vec![0xCD; 48], data].concat();
        let a = chunks(&original, 3);
        let b = chunks(&shifted, 5);
        let common = b.iter().filter(|c| a.contains(c)).map(|c| c.len as usize).sum::<usize>();
        assert!(common > shifted.len() * 9 / 10, "{common} of {} bytes found again", shifted.len());
    }

    #[test]
    fn the_first_holder_is_the_original_and_later_copies_are_duplicated() {
        let data = random(256 * 1024, 3);
        let raw = |bytes: &[u8]| ContentRaw {
            chunks: chunks(bytes, 1).into_iter().map(|c| (c, 0)).collect(),
            zero_filled: vec![(0, 8192)],
            scanned: bytes.len() as u64 + 8192,
            unread: 0,
        };
        let names = vec!["[anon]".to_string()];
        let (a, b, c) = (raw(&data), raw(&data), raw(&random(256 * 1024, 4)));
        let (totals, per) = account(&[(&names, &a), (&names, &b), (&names, &c)]);
        assert_eq!(per[0].duplicated, 0);
        assert_eq!(per[1].duplicated, data.len() as u64);
        assert_eq!(per[2].duplicated, 0);
        assert_eq!(totals.total.duplicated, data.len() as u64);
        assert_eq!(totals.total.zero_filled, 3 * 8192);
        assert_eq!(totals.by_name[0].0, "[anon]");
    }
}
