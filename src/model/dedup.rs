//! Model layer: duplicated content. Pure: a content-defined chunker that turns bytes into
//! `(xxh3 hash, length)` chunks whose boundaries follow the content, so a copy of the same bytes
//! at another offset inside its pages — a pickled array lands 48 bytes into its page where the
//! original was at 16 — still yields the same chunks; and the accounting that counts every chunk
//! seen before as duplicated.
//!
//! The boundary rule is cheap enough to run near memory speed. A chunk is at least 7 KiB long;
//! then, in the next 2 KiB, it ends after the **anchor** — a byte `e` — whose 16-byte window
//! (it and the 15 bytes before it) hashes lowest. Anchor bytes are found 64 at a time with SIMD
//! compares, a fraction of a cycle per byte over a quarter of the content, where a rolling hash
//! over every byte (FastCDC's gear, memtree's first chunker) costs a cycle or two per byte.
//! Taking the lowest of the window rather than the first that passes a test is what lets a
//! shifted copy fall back into step quickly even where anchors are dense (text): two copies whose
//! windows overlap pick the same anchor whenever the lowest lies in the overlap. Content with no
//! anchor in the window (arrays of small integers, say) falls back to a gear rolling hash
//! (FastCDC's), and a chunk ends at 64 KiB whatever its content. Every rule depends only on the
//! bytes since the chunk's start, so copies of the same bytes fall into the same chunks a few
//! chunks after their start, whatever the shift: measured on 4 MiB copies shifted by 1 byte to
//! 9 KB, between 7 KiB and ~350 KiB of random bytes, text or small integers is missed at the
//! start of a copy (the tests check that ≥ 90 % of a 4 MiB copy is found).
//!
//! The window trades speed for that resynchronisation: a 4 KiB window misses at most ~200 KiB
//! but chunks at 70 % of the read speed; 2 KiB chunks at 80 % (docs/performance.md).
//!
//! Only hashes and lengths are kept, never content.

use std::collections::HashMap;

use twox_hash::XxHash3_64;

use super::snapshot::{Chunk, ContentRaw};

/// No boundary before this many bytes of a chunk.
pub const MIN_CHUNK: usize = 7 * 1024;
/// The stretch after `MIN_CHUNK` whose anchors compete: on random bytes, 8 of them, and chunks
/// average 8 KiB. Wider makes shifted copies fall into step sooner, and costs more.
const ANCHOR_WINDOW: usize = 2 * 1024;
/// A chunk ends here whatever its content.
pub const MAX_CHUNK: usize = 64 * 1024;
// `lowest_anchor` packs an anchor's position into the low 16 bits of its key.
const _: () = assert!(MIN_CHUNK + ANCHOR_WINDOW <= 1 << 16);
/// The anchor byte. Any value is as likely as another in numbers and compressed data.
const ANCHOR: u8 = b'e';
/// The fallback gear hash cuts where its low 11 bits are zero: one position in 2 KiB.
const GEAR_MASK: u64 = (1 << 11) - 1;
/// The gear hash of a position depends on the 64 bytes before it.
const GEAR_WINDOW: usize = 64;

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

/// Where the chunk that starts at `data[0]` ends. `None` means `data` does not tell yet (more
/// bytes of the same run are coming); with `last`, the run ends with `data` and there is always
/// an answer.
pub fn cut(data: &[u8], last: bool) -> Option<usize> {
    if data.len() <= MIN_CHUNK {
        return last.then_some(data.len());
    }
    let window = data.len().min(MIN_CHUNK + ANCHOR_WINDOW);
    if window < MIN_CHUNK + ANCHOR_WINDOW && !last {
        return None;
    }
    if let Some(at) = lowest_anchor(&data[..window]) {
        return Some(at);
    }
    let limit = data.len().min(MAX_CHUNK);
    if limit < MAX_CHUNK && !last {
        return None;
    }
    Some(gear_cut(&data[..limit]).unwrap_or(limit))
}

/// The anchor from `MIN_CHUNK` on whose window hashes lowest (the first of equals): the chunk
/// ends after it.
fn lowest_anchor(data: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { lowest_anchor_avx2(data) };
    }
    lowest_anchor_with(data, anchor_mask)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lowest_anchor_avx2(data: &[u8]) -> Option<usize> {
    // SAFETY (of the call inside): this function runs only where AVX2 is enabled.
    lowest_anchor_with(data, |data, at| unsafe { anchor_mask_avx2(data, at) })
}

/// Branch-free where it can be: anchors are found 64 bytes at a time as a bit mask (SIMD
/// compares), and the lowest is kept as the minimum of `hash | position` keys, so the
/// unpredictable positions of anchors in random bytes cost few mispredicted jumps.
#[inline(always)]
fn lowest_anchor_with(data: &[u8], mask_at: impl Fn(&[u8], usize) -> u64) -> Option<usize> {
    const BLOCK: usize = 64;
    let word = |from: usize| u64::from_le_bytes(data[from..from + 8].try_into().expect("8 bytes"));
    let mut lowest = u64::MAX;
    let mut consider = |at: usize| {
        let hash = (word(at - 15).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ word(at - 7).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
        .rotate_left(29);
        // Positions are below 64 KiB: the low 16 bits order equal hashes by position.
        lowest = lowest.min(hash & !0xffff | at as u64);
    };
    let mut base = MIN_CHUNK;
    while base + BLOCK <= data.len() {
        let mut mask = mask_at(data, base);
        while mask != 0 {
            consider(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        base += BLOCK;
    }
    for (i, &byte) in data[base..].iter().enumerate() {
        if byte == ANCHOR {
            consider(base + i);
        }
    }
    (lowest != u64::MAX).then(|| (lowest & 0xffff) as usize + 1)
}

/// Bit i set where `data[at + i]` is the anchor byte: two AVX2 compares.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn anchor_mask_avx2(data: &[u8], at: usize) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let block = &data[at..at + 64];
    let mut mask = 0u64;
    for (i, lane) in block.chunks_exact(32).enumerate() {
        // SAFETY: `lane` is 32 readable bytes and the unaligned load has no alignment
        // requirement; AVX2 is enabled for this function.
        let hits = unsafe {
            let bytes = _mm256_loadu_si256(lane.as_ptr().cast::<__m256i>());
            _mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(ANCHOR as i8))) as u32
        };
        mask |= u64::from(hits) << (32 * i);
    }
    mask
}

/// Bit i set where `data[at + i]` is the anchor byte: four SSE2 compares (part of every
/// x86-64) instead of 64 branches.
#[cfg(target_arch = "x86_64")]
#[inline]
fn anchor_mask(data: &[u8], at: usize) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let block = &data[at..at + 64];
    let mut mask = 0u64;
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86-64 baseline; `lane` is 16 readable bytes and the
        // unaligned load has no alignment requirement.
        let hits = unsafe {
            let bytes = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(ANCHOR as i8))) as u32
        };
        mask |= u64::from(hits) << (16 * i);
    }
    mask
}

/// Bit i set where `data[at + i]` is the anchor byte.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn anchor_mask(data: &[u8], at: usize) -> u64 {
    let block = &data[at..at + 64];
    block.iter().enumerate().fold(0, |mask, (i, &byte)| mask | u64::from(byte == ANCHOR) << i)
}

/// The first position at or after `MIN_CHUNK` where the gear hash of the bytes before it cuts.
fn gear_cut(data: &[u8]) -> Option<usize> {
    let mut gear = 0u64;
    for &byte in &data[MIN_CHUNK - GEAR_WINDOW..MIN_CHUNK] {
        gear = (gear << 1).wrapping_add(GEAR[usize::from(byte)]);
    }
    for (i, &byte) in data.iter().enumerate().skip(MIN_CHUNK) {
        gear = (gear << 1).wrapping_add(GEAR[usize::from(byte)]);
        if gear & GEAR_MASK == 0 {
            return Some(i + 1);
        }
    }
    None
}

/// Cuts `data`, which starts at a chunk boundary, into chunks and hands each to `out`. Returns
/// the bytes consumed: all of them with `last`, otherwise up to the start of the unfinished
/// chunk at the end, which the caller feeds again with the bytes that follow it.
pub fn chunks(data: &[u8], last: bool, mut out: impl FnMut(Chunk)) -> usize {
    let mut start = 0;
    while start < data.len() {
        let Some(len) = cut(&data[start..], last) else { break };
        let hash = XxHash3_64::oneshot(&data[start..start + len]);
        out(Chunk { hash, len: len as u32 });
        start += len;
    }
    start
}

/// Duplicated and zero-filled bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Duplication {
    /// Bytes of chunks whose content was already seen (in this process or an earlier one of the
    /// tree): what sharing or merging the copies could give back.
    pub duplicated: u64,
    pub zero_filled: u64,
}

/// The tree's duplication, per process (in the given order: the first holder of a content is
/// its original) and per mapping name.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct DedupTotals {
    pub total: Duplication,
    pub scanned: u64,
    pub unread: u64,
    /// Distinct contents seen.
    pub distinct_chunks: usize,
    pub by_name: Vec<(String, Duplication)>,
    /// How the pages read were chosen.
    pub method: DedupMethod,
}

/// Which pages a duplicated-content figure read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DedupMethod {
    /// Every distinct anonymous or shared-memory frame of the tree, once (root: PFNs and
    /// kpageflags).
    #[default]
    Frames,
    /// Without root: the pages each readable process alone maps (pagemap's exclusively-mapped
    /// bit). Copies in pages shared with another process, and the content of processes memtree
    /// may not read, are not counted.
    ExclusivePages,
}

impl DedupMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DedupMethod::Frames => "frames",
            DedupMethod::ExclusivePages => "exclusive_pages",
        }
    }
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
    if processes.iter().any(|(_, c)| c.exclusive_only.is_some()) {
        totals.method = DedupMethod::ExclusivePages;
    }
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

    /// Chunks `data` fed in `slices` pieces, carrying the unfinished tail as a reader does.
    fn chunked(data: &[u8], slices: usize) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut carry: Vec<u8> = Vec::new();
        for part in data.chunks(data.len().div_ceil(slices)) {
            carry.extend_from_slice(part);
            let used = chunks(&carry, false, |c| out.push(c));
            carry.drain(..used);
        }
        chunks(&carry, true, |c| out.push(c));
        out
    }

    #[test]
    fn chunks_cover_the_input_within_bounds_and_do_not_depend_on_slicing() {
        let data = random(1 << 20, 1);
        let whole = chunked(&data, 1);
        assert_eq!(whole.iter().map(|c| c.len as usize).sum::<usize>(), data.len());
        assert!(
            whole[..whole.len() - 1]
                .iter()
                .all(|c| (MIN_CHUNK..=MAX_CHUNK).contains(&(c.len as usize)))
        );
        let average = data.len() / whole.len();
        assert!((7 * 1024..9 * 1024).contains(&average), "average {average}");
        assert_eq!(chunked(&data, 7), whole, "slicing the stream changes nothing");
        assert_eq!(chunked(&data, 200), whole, "slicing the stream changes nothing");
    }

    /// Text from a ten-word vocabulary: a gear hash alone finds no boundary in it.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let words = ["the ", "memory ", "process ", "shared ", "a ", "of ", "page ", "copy "];
        random(len, seed).iter().flat_map(|b| words[usize::from(b % 8)].bytes()).take(len).collect()
    }

    /// Little-endian i64s below 100: no anchor byte in them, the gear fallback cuts.
    fn small_integers(len: usize, seed: u64) -> Vec<u8> {
        random(len, seed).chunks(8).flat_map(|c| i64::from(c[0] % 100).to_le_bytes()).collect()
    }

    #[test]
    fn a_copy_at_another_offset_yields_the_same_chunks() {
        for (kind, data) in [
            ("random", random(4 << 20, 2)),
            ("text", text(4 << 20, 5)),
            ("small integers", small_integers(4 << 20, 6)),
        ] {
            let boundaries = chunked(&data, 1).len();
            assert!(boundaries > data.len() / MAX_CHUNK + 1, "{kind}: {boundaries} chunks");
            for shift in [1, 48, 2000, 4000] {
                let original = [vec![0xAB; 16], data.clone()].concat();
                let shifted = [vec![0xCD; shift], data.clone()].concat();
                let a = chunked(&original, 3);
                let b = chunked(&shifted, 5);
                let common =
                    b.iter().filter(|c| a.contains(c)).map(|c| c.len as usize).sum::<usize>();
                assert!(
                    common > data.len() * 9 / 10,
                    "{kind}, shift {shift}: {common} of {} bytes found again",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn the_first_holder_is_the_original_and_later_copies_are_duplicated() {
        let data = random(256 * 1024, 3);
        let raw = |bytes: &[u8]| ContentRaw {
            chunks: chunked(bytes, 1).into_iter().map(|c| (c, 0)).collect(),
            zero_filled: vec![(0, 8192)],
            scanned: bytes.len() as u64 + 8192,
            unread: 0,
            exclusive_only: None,
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
