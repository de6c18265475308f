//! A recording from anyone: never a panic, never an allocation its bytes do not justify, and
//! every sample read renders as a report. The input is read twice: as a whole file (the framing,
//! the checksums, the header), and as the payload of one frame given a valid header and a
//! matching checksum (so mutations reach LZ4 and the decoding of the model, past the CRC).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memtree::record::{FORMAT, Header, MAGIC, Reader, Samples};
use memtree::report::{Format, Meta, Style, Target, write_report};

fn render(reader: Reader) {
    let target = reader.header.target.clone();
    for sample in Samples::new(reader).take(4) {
        let meta = Meta {
            target: target.clone(),
            run: None,
            source: "fuzz".into(),
            live: false,
            recorded: None,
        };
        let mut out = Vec::new();
        for format in [Format::Table, Format::Json] {
            write_report(&mut out, format, &sample.accounting, &meta, Style::default()).unwrap();
        }
    }
}

/// `payload` as the one frame of a recording in `format` (each format decodes frames its way).
fn framed(payload: &[u8], format: u16) -> Vec<u8> {
    let header = Header {
        writer: "fuzz".into(),
        started_at_unix: 0.0,
        interval_seconds: 1.0,
        target: Target::All,
        source: "/proc".into(),
        privileged: true,
        hostname: String::new(),
        kernel: String::new(),
    };
    let body = postcard::to_stdvec(&header).unwrap();
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&format.to_le_bytes());
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    file.extend_from_slice(&body);
    file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    file.extend_from_slice(payload);
    file
}

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = Reader::from_bytes("fuzz.mtr", data.to_vec()) {
        render(reader);
    }
    for format in 1..=FORMAT {
        if let Ok(reader) = Reader::from_bytes("framed.mtr", framed(data, format)) {
            render(reader);
        }
    }
});
