//! `/proc/PID/smaps` and `/proc/PID/maps` text, whole and fed in pieces: never a panic, and
//! the pieces parse as the whole does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::sampler::smaps::{SmapsParser, parse_smaps};

fuzz_target!(|data: &[u8]| {
    let whole = parse_smaps(data);
    let split = data.first().map_or(1, |&b| usize::from(b) + 1);
    let mut parser = SmapsParser::default();
    let mut fed = Ok(());
    for piece in data.chunks(split) {
        if fed.is_ok() {
            fed = parser.feed(piece);
        }
    }
    let pieces = fed.and_then(|()| parser.finish());
    assert_eq!(whole.is_ok(), pieces.is_ok());
    if let (Ok(a), Ok(b)) = (whole, pieces) {
        assert_eq!(a, b);
        for m in &a {
            assert!(m.fields.rss.is_none_or(|rss| rss <= 1 << 52));
        }
    }
});
