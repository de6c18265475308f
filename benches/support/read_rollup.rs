//! The smallest Rust reader of a rollup, for the bound of regime (d) in docs/performance.md:
//! `rustc -O benches/support/read_rollup.rs -o /tmp/read_rollup`.
use std::io::Write;

fn main() {
    let path = std::env::args().nth(1).expect("a path");
    let bytes = std::fs::read(path).expect("readable");
    std::io::stdout().write_all(&bytes).expect("written");
}
