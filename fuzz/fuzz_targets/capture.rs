//! A capture's `memtree-capture.txt`: never a panic, and a time only if it is a real one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::sampler::CaptureMeta;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let meta = CaptureMeta::parse(&text);
    if let Some(t) = meta.taken_at_unix {
        assert!(t.is_finite() && t >= 0.0);
        let _ = memtree::units::utc_timestamp(t);
    }
});
