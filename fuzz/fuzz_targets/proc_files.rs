//! `/proc/PID/stat`, `/proc/PID/status` and `/proc/PID/cmdline`: never a panic; a name that
//! parses is made safe for a terminal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::sampler::{parse_stat, parse_uid, split_cmdline};
use memtree::units::{stripped, visible};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_stat(1, data) {
        assert!(!visible(&info.name).chars().any(char::is_control));
        assert!(!stripped(&info.name).chars().any(char::is_control));
    }
    let _ = parse_uid(data);
    for arg in split_cmdline(data) {
        assert!(!visible(&arg).chars().any(char::is_control));
    }
});
