//! The command line's sizes and durations: never a panic, and a size is exact where it is
//! written as a whole number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::units::{parse_duration, parse_size};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(bytes) = parse_size(text) {
        if text.trim().chars().all(|c| c.is_ascii_digit()) && !text.trim().is_empty() {
            assert_eq!(Some(bytes), text.trim().parse::<u64>().ok());
        }
    }
    let _ = parse_duration(text);
});
