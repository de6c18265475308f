//! `/proc/PID/smaps_rollup` text: never a panic; a rollup that parses has every required
//! figure, each within what a machine can hold, so no sum of them can be a guess.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::model::Figures;
use memtree::sampler::smaps::{missing_key, parse_rollup};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(fields)) = parse_rollup(data) {
        assert_eq!(missing_key(&fields), None);
        let figures = Figures::from_fields(&fields);
        assert!(figures.uss.is_some() && figures.shared.is_some());
        assert!(figures.rss.unwrap() <= 1 << 52);
    }
});
