//! Record layer: the recording format (docs/record.md), samples of a target over time as model
//! data. A file is a header and then frames, appended one whole frame per `write`:
//!
//! ```text
//! magic "memtree-record\n\0" (16 bytes) · format u16 LE · header length u32 LE · CRC-32 u32 LE
//!   · header (postcard)
//! frame: payload length u32 LE · CRC-32 u32 LE · payload (LZ4 block of a postcard Frame,
//!   its uncompressed length first as u32 LE)
//! ```
//!
//! A recording killed mid-write ends in a cut-short frame: it is read up to its last whole
//! one. Reading is bounded (frame and header sizes, what a frame may decompress to) and only a
//! regular file is read: a recording may come from anyone. It uses the model and the report's
//! [`Target`] (what was recorded); nothing reads /proc here.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Accounting;
use crate::report::Target;

pub const MAGIC: &[u8; 16] = b"memtree-record\n\0";
/// The format this memtree writes and the newest it reads (it reads every older one too).
/// 2: a sample's accounting holds when its carried exact figures, duplicated content and
/// erosion were read (`Accounting::exact_taken_at_unix`); 1 did not keep it.
pub const FORMAT: u16 = 2;
/// A header larger than this is not one memtree wrote.
const MAX_HEADER: u32 = 1 << 20;
/// A frame's payload, compressed, and what it may decompress to: a sample of a whole machine
/// of 10,000 processes is a few MB.
const MAX_FRAME: u32 = 256 << 20;
const MAX_EXPANDED: u32 = 1 << 30;

/// What a recording is of, written once at its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The memtree that wrote it (`memtree 0.1.0`).
    pub writer: String,
    pub started_at_unix: f64,
    pub interval_seconds: f64,
    pub target: Target,
    /// Where the processes were read (`/proc`).
    pub source: String,
    pub privileged: bool,
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
}

/// One frame of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// The target at `seconds` after the recording started.
    Sample { seconds: f64, accounting: Box<Accounting> },
    /// Nothing moved since the last sample: the same figures at `seconds` (taken again at
    /// `taken_at_unix`).
    Same { seconds: f64, taken_at_unix: f64 },
    /// The recording ended: the recorded command's status, if it ran one.
    End { seconds: f64, exit_code: Option<i32>, signal: Option<i32> },
}

/// Format 1's frames: its accounting is the model's without `exact_taken_at_unix` (postcard is
/// positional: the fields in the order they were, as they were).
mod v1 {
    use serde::Deserialize;

    use crate::model::Accounting;
    use crate::model::Totals;
    use crate::model::accounting::{NameGroup, Tree};

    #[derive(Deserialize)]
    pub(super) struct AccountingV1 {
        taken_at_unix: f64,
        privileged: bool,
        trees: Vec<Tree>,
        totals: Totals,
        mappings_by_name: Option<Vec<NameGroup>>,
        notes: Vec<String>,
        by_name: bool,
    }

    #[derive(Deserialize)]
    pub(super) enum Frame {
        Sample { seconds: f64, accounting: Box<AccountingV1> },
        Same { seconds: f64, taken_at_unix: f64 },
        End { seconds: f64, exit_code: Option<i32>, signal: Option<i32> },
    }

    impl From<Frame> for super::Frame {
        fn from(frame: Frame) -> super::Frame {
            match frame {
                Frame::Sample { seconds, accounting } => {
                    let a = *accounting;
                    let accounting = Box::new(Accounting {
                        taken_at_unix: a.taken_at_unix,
                        privileged: a.privileged,
                        trees: a.trees,
                        totals: a.totals,
                        mappings_by_name: a.mappings_by_name,
                        notes: a.notes,
                        by_name: a.by_name,
                        // Not kept: how old the carried figures were is not known.
                        exact_taken_at_unix: None,
                    });
                    super::Frame::Sample { seconds, accounting }
                }
                Frame::Same { seconds, taken_at_unix } => {
                    super::Frame::Same { seconds, taken_at_unix }
                }
                Frame::End { seconds, exit_code, signal } => {
                    super::Frame::End { seconds, exit_code, signal }
                }
            }
        }
    }
}

/// Why a file cannot be read as a recording: one line each.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}: not a regular file")]
    NotAFile(String),
    #[error("{0}: not a memtree recording")]
    NotARecording(String),
    #[error(
        "{path}: recorded in format {found}, newer than this memtree reads ({FORMAT}): read it with a newer memtree"
    )]
    Newer { path: String, found: u16 },
    #[error("{0}: its header is cut short or damaged")]
    BadHeader(String),
    #[error("{0}: it holds no sample")]
    Empty(String),
}

/// Appends frames to a recording.
pub struct Writer {
    file: BufWriter<File>,
    path: PathBuf,
    /// Bytes written, header included.
    pub bytes: u64,
}

impl Writer {
    /// Creates `path` (replacing a file there) and writes the header.
    pub fn create(path: &Path, header: &Header) -> io::Result<Writer> {
        Self::start(File::create(path)?, path, header)
    }

    /// Writes the header into `file` (opened for writing, empty), which is `path`.
    pub fn start(file: File, path: &Path, header: &Header) -> io::Result<Writer> {
        let mut writer = Writer { file: BufWriter::new(file), path: path.to_path_buf(), bytes: 0 };
        let body = postcard::to_stdvec(header).map_err(io::Error::other)?;
        let mut head = Vec::with_capacity(26 + body.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT.to_le_bytes());
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        head.extend_from_slice(&body);
        writer.put(&head)?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `frame`, whole, and hands it to the kernel (a memtree killed after this leaves
    /// the frame readable).
    pub fn append(&mut self, frame: &Frame) -> io::Result<()> {
        let plain = postcard::to_stdvec(frame).map_err(io::Error::other)?;
        self.append_encoded(&plain)
    }

    /// Appends a frame already encoded (`plain`: its postcard bytes), compressed and framed.
    fn append_encoded(&mut self, plain: &[u8]) -> io::Result<()> {
        let packed = lz4_flex::block::compress(plain);
        let mut payload = Vec::with_capacity(4 + packed.len());
        payload.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        payload.extend_from_slice(&packed);
        let mut out = Vec::with_capacity(8 + payload.len());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        self.put(&out)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Flushes the file, and syncs it when it is a regular one (a pipe cannot be synced).
    pub fn finish(mut self) -> io::Result<u64> {
        self.file.flush()?;
        if self.file.get_ref().metadata().is_ok_and(|m| m.is_file()) {
            self.file.get_ref().sync_all()?;
        }
        Ok(self.bytes)
    }
}

/// What a recording is read from: a file, or bytes (the fuzzer's).
trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// A recording opened for reading: its header, then its frames in order ([`Reader::next`]).
pub struct Reader {
    pub header: Header,
    /// The file's format (at most [`FORMAT`]).
    pub format: u16,
    file: Box<dyn Source>,
    path: String,
    /// Where the next frame starts.
    offset: u64,
    /// Set once the file ended in a cut-short or damaged frame: where, and what.
    pub damaged: Option<String>,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, RecordError> {
        let name = path.display().to_string();
        let io_error = |source| RecordError::Io { path: name.clone(), source };
        // Only a regular file, checked before it is opened (opening a FIFO waits for a
        // writer) and again once open (O_NONBLOCK: a FIFO swapped in between does not wait).
        if !std::fs::metadata(path).map_err(io_error)?.is_file() {
            return Err(RecordError::NotAFile(name));
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(path)
                .map_err(io_error)?
        };
        if !file.metadata().map_err(io_error)?.is_file() {
            return Err(RecordError::NotAFile(name));
        }
        Self::from_source(name, Box::new(BufReader::new(file)))
    }

    /// A recording held in memory, named `name` in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Reader, RecordError> {
        Self::from_source(name.to_string(), Box::new(io::Cursor::new(bytes)))
    }

    fn from_source(name: String, mut file: Box<dyn Source>) -> Result<Reader, RecordError> {
        let io_error = |source| RecordError::Io { path: name.clone(), source };
        let mut fixed = [0u8; 26];
        let got = read_up_to(&mut file, &mut fixed).map_err(io_error)?;
        if got < MAGIC.len() || &fixed[..16] != MAGIC {
            // A file that starts as the magic does but ends before it: cut short, still ours.
            if got < MAGIC.len() && got > 0 && fixed[..got] == MAGIC[..got] {
                return Err(RecordError::BadHeader(name));
            }
            return Err(RecordError::NotARecording(name));
        }
        if got < fixed.len() {
            return Err(RecordError::BadHeader(name));
        }
        let format = u16::from_le_bytes([fixed[16], fixed[17]]);
        if format > FORMAT {
            return Err(RecordError::Newer { path: name, found: format });
        }
        if format == 0 {
            return Err(RecordError::BadHeader(name));
        }
        let len = u32::from_le_bytes(fixed[18..22].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(fixed[22..26].try_into().expect("4 bytes"));
        if len > MAX_HEADER {
            return Err(RecordError::BadHeader(name));
        }
        let mut body = vec![0u8; len as usize];
        if read_up_to(&mut file, &mut body).map_err(io_error)? < body.len()
            || crc32fast::hash(&body) != crc
        {
            return Err(RecordError::BadHeader(name));
        }
        let header: Header =
            postcard::from_bytes(&body).map_err(|_| RecordError::BadHeader(name.clone()))?;
        // Times a memtree could have written: finite, an interval up to a day.
        let sane = header.started_at_unix.is_finite()
            && header.interval_seconds.is_finite()
            && (0.0..=86_400.0).contains(&header.interval_seconds);
        if !sane {
            return Err(RecordError::BadHeader(name));
        }
        let offset = 26 + u64::from(len);
        Ok(Reader { header, format, file, path: name, offset, damaged: None })
    }

    /// Where the next frame starts in the file (for [`Reader::read_at`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next whole frame, or `None` at the end of the file or at a cut-short or damaged
    /// frame (said in [`Reader::damaged`]).
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.damaged.is_some() {
            return None;
        }
        match self.frame() {
            Ok(Some(frame)) => Some(frame),
            Ok(None) => None,
            Err(what) => {
                self.damaged = Some(format!("{} after byte {}: {what}", self.path, self.offset));
                None
            }
        }
    }

    /// The frame at `offset` (one [`Reader::offset`] gave), for going back in time.
    pub fn read_at(&mut self, offset: u64) -> Option<Frame> {
        self.file.seek(SeekFrom::Start(offset)).ok()?;
        self.offset = offset;
        self.damaged = None;
        self.next_frame()
    }

    fn frame(&mut self) -> Result<Option<Frame>, &'static str> {
        let mut fixed = [0u8; 8];
        let got = read_up_to(&mut self.file, &mut fixed).map_err(|_| "unreadable")?;
        if got == 0 {
            return Ok(None);
        }
        if got < fixed.len() {
            return Err("a frame cut short");
        }
        let len = u32::from_le_bytes(fixed[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(fixed[4..].try_into().expect("4 bytes"));
        if !(4..=MAX_FRAME).contains(&len) {
            return Err("a frame of an impossible size");
        }
        let mut payload = vec![0u8; len as usize];
        if read_up_to(&mut self.file, &mut payload).map_err(|_| "unreadable")? < payload.len() {
            return Err("a frame cut short");
        }
        if crc32fast::hash(&payload) != crc {
            return Err("a frame whose checksum does not match");
        }
        let expanded = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes"));
        // LZ4 expands a byte to at most 255: a claim beyond that is not an allocation to make.
        let most = (u64::from(len) - 4) * 255 + 16;
        if expanded > MAX_EXPANDED || u64::from(expanded) > most {
            return Err("a frame of an impossible size");
        }
        let plain = lz4_flex::block::decompress(&payload[4..], expanded as usize)
            .map_err(|_| "a frame that does not decompress")?;
        let frame: Frame = match self.format {
            1 => postcard::from_bytes::<v1::Frame>(&plain).map(Frame::from),
            _ => postcard::from_bytes(&plain),
        }
        .map_err(|_| "a frame that does not decode")?;
        let time = |t: f64| t.is_finite() && t >= 0.0;
        let sane = match &frame {
            Frame::Sample { seconds, accounting } => {
                time(*seconds)
                    && time(accounting.taken_at_unix)
                    && accounting.exact_taken_at_unix.is_none_or(time)
            }
            Frame::Same { seconds, taken_at_unix } => time(*seconds) && time(*taken_at_unix),
            Frame::End { seconds, .. } => time(*seconds),
        };
        if !sane {
            return Err("a frame whose time is not a time");
        }
        self.offset += 8 + u64::from(len);
        Ok(Some(frame))
    }
}

/// Reads into `buf` until it is full or the file ends; the bytes read.
fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// One sample of a recording, as read back: when, and the accounting. A `Same` frame repeats
/// the last one at its own time: the same `Arc` (never a copy: a long recording of a large
/// tree is mostly repeats), `repeated` set, and its own `taken_at_unix`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub seconds: f64,
    pub offset: u64,
    pub accounting: std::sync::Arc<Accounting>,
    pub taken_at_unix: f64,
    pub repeated: bool,
}

impl Sample {
    /// The accounting as of this sample (a repeat's carries its own time).
    pub fn owned(self) -> Accounting {
        let mut accounting = std::sync::Arc::unwrap_or_clone(self.accounting);
        accounting.taken_at_unix = self.taken_at_unix;
        accounting
    }
}

/// The samples of a recording, in order, `Same` frames resolved; and its end, if it has one.
pub struct Samples {
    reader: Reader,
    last: Option<std::sync::Arc<Accounting>>,
    last_offset: u64,
    pub end: Option<(f64, Option<i32>, Option<i32>)>,
}

impl Samples {
    pub fn new(reader: Reader) -> Samples {
        Samples { reader, last: None, last_offset: 0, end: None }
    }

    pub fn header(&self) -> &Header {
        &self.reader.header
    }

    pub fn damaged(&self) -> Option<&str> {
        self.reader.damaged.as_deref()
    }

    /// The sample whose frame starts at `offset` (a `Sample` frame: [`Sample::offset`]).
    pub fn at(&mut self, offset: u64) -> Option<std::sync::Arc<Accounting>> {
        match self.reader.read_at(offset)? {
            Frame::Sample { accounting, .. } => Some(std::sync::Arc::new(*accounting)),
            _ => None,
        }
    }
}

impl Iterator for Samples {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        loop {
            let offset = self.reader.offset();
            match self.reader.next_frame()? {
                Frame::Sample { seconds, accounting } => {
                    let taken_at_unix = accounting.taken_at_unix;
                    let accounting = std::sync::Arc::new(*accounting);
                    self.last = Some(accounting.clone());
                    self.last_offset = offset;
                    return Some(Sample {
                        seconds,
                        offset,
                        accounting,
                        taken_at_unix,
                        repeated: false,
                    });
                }
                Frame::Same { seconds, taken_at_unix } => {
                    let Some(last) = &self.last else { continue };
                    return Some(Sample {
                        seconds,
                        offset: self.last_offset,
                        accounting: last.clone(),
                        taken_at_unix,
                        repeated: true,
                    });
                }
                Frame::End { seconds, exit_code, signal } => {
                    self.end = Some((seconds, exit_code, signal));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, snapshot};
    use crate::model::{Grouping, account};

    fn header() -> Header {
        Header {
            writer: "memtree test".into(),
            started_at_unix: 1.5e9,
            interval_seconds: 1.0,
            target: Target::Pids(vec![10]),
            source: "/proc".into(),
            privileged: true,
            hostname: "h".into(),
            kernel: "6.1".into(),
        }
    }

    fn accounting(rss_kib: u64) -> Accounting {
        let snap = snapshot(vec![
            process(10, 1).figures(rss_kib << 10, 40 << 10, 10 << 10).build(),
            process(11, 10).figures(rss_kib << 10, 40 << 10, 10 << 10).build(),
        ]);
        account(&snap, &Grouping::Roots(vec![10]))
    }

    fn write(path: &Path, frames: &[Frame]) -> u64 {
        let mut w = Writer::create(path, &header()).unwrap();
        for f in frames {
            w.append(f).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn samples_come_back_as_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.mtr");
        let (a, mut b) = (accounting(100), accounting(200));
        b.exact_taken_at_unix = Some(3.5);
        write(
            &path,
            &[
                Frame::Sample { seconds: 0.0, accounting: Box::new(a.clone()) },
                Frame::Same { seconds: 1.0, taken_at_unix: 7.0 },
                Frame::Sample { seconds: 2.0, accounting: Box::new(b.clone()) },
                Frame::End { seconds: 2.5, exit_code: Some(3), signal: None },
            ],
        );
        let mut samples = Samples::new(Reader::open(&path).unwrap());
        assert_eq!(samples.header(), &header());
        let all: Vec<Sample> = samples.by_ref().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(*all[0].accounting, a);
        assert_eq!((all[1].taken_at_unix, all[1].repeated), (7.0, true));
        assert!(std::sync::Arc::ptr_eq(&all[0].accounting, &all[1].accounting), "not a copy");
        assert_eq!(all[1].clone().owned().taken_at_unix, 7.0);
        assert_eq!(*all[2].accounting, b);
        assert_eq!(samples.end, Some((2.5, Some(3), None)));
        assert_eq!(samples.damaged(), None);
        assert_eq!(samples.at(all[2].offset).as_deref(), Some(&b), "read again by offset");
    }

    #[test]
    fn a_format_1_sample_reads_without_the_time_of_its_costly_figures() {
        // Format 1's encoding of a sample: the accounting's fields as they were, without the
        // last one (as tests/fixtures/record/v1-fork.mtr has them, memtree of 2026-12-02).
        #[derive(serde::Serialize)]
        enum FrameV1<'a> {
            Sample { seconds: f64, accounting: &'a AccountingV1<'a> },
        }
        #[derive(serde::Serialize)]
        struct AccountingV1<'a> {
            taken_at_unix: f64,
            privileged: bool,
            trees: &'a [crate::model::Tree],
            totals: &'a crate::model::Totals,
            mappings_by_name: &'a Option<Vec<crate::model::accounting::NameGroup>>,
            notes: &'a [String],
            by_name: bool,
        }
        let a = accounting(100);
        let old = AccountingV1 {
            taken_at_unix: a.taken_at_unix,
            privileged: a.privileged,
            trees: &a.trees,
            totals: &a.totals,
            mappings_by_name: &a.mappings_by_name,
            notes: &a.notes,
            by_name: a.by_name,
        };
        let plain =
            postcard::to_stdvec(&FrameV1::Sample { seconds: 1.0, accounting: &old }).unwrap();
        // Framed as this memtree frames any frame, under a header that says `format`.
        let decode = |format: u16| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("old.mtr");
            let mut w = Writer::create(&path, &header()).unwrap();
            w.append_encoded(&plain).unwrap();
            w.finish().unwrap();
            let mut file = std::fs::read(&path).unwrap();
            file[16..18].copy_from_slice(&format.to_le_bytes());
            let mut reader = Reader::from_bytes("old.mtr", file).unwrap();
            (reader.next_frame(), reader.damaged)
        };
        let (frame, damaged) = decode(1);
        assert_eq!(damaged, None);
        let Some(Frame::Sample { seconds, accounting }) = frame else { panic!("{frame:?}") };
        assert_eq!(seconds, 1.0);
        assert_eq!(*accounting, Accounting { exact_taken_at_unix: None, ..a });
        // The same bytes said to be format 2 are a frame that does not decode.
        let (frame, damaged) = decode(2);
        assert!(frame.is_none() && damaged.is_some_and(|d| d.contains("does not decode")));
    }

    #[test]
    fn a_file_cut_anywhere_reads_to_its_last_whole_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.mtr");
        let frames: Vec<Frame> = (0..3u32)
            .map(|i| Frame::Sample {
                seconds: f64::from(i),
                accounting: Box::new(accounting(100 + u64::from(i))),
            })
            .collect();
        let full = write(&path, &frames);
        let bytes = std::fs::read(&path).unwrap();
        let header_len = {
            let r = Reader::open(&path).unwrap();
            r.offset()
        };
        let mut ends = Vec::new();
        for cut in header_len..full {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            let mut samples = Samples::new(Reader::open(&path).unwrap());
            let n = samples.by_ref().count();
            assert!(n < 3, "cut at {cut}: {n} samples");
            if n > 0 {
                assert!(samples.damaged().is_some() || ends.last() != Some(&n));
            }
            ends.push(n);
        }
        assert!(ends.windows(2).all(|w| w[0] <= w[1]), "more bytes never read fewer samples");
        assert_eq!(ends.last(), Some(&2));
        // Cut inside the header: one line, not a panic.
        for cut in [1usize, 10, 17, 25, 27] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = Reader::open(&path).err().unwrap();
            assert!(matches!(e, RecordError::BadHeader(_)), "cut at {cut}: {e}");
        }
    }

    #[test]
    fn strangers_files_are_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"{\"schema\": \"memtree.report/v1\"}").unwrap();
        assert!(matches!(Reader::open(&path), Err(RecordError::NotARecording(_))));
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(Reader::open(&path), Err(RecordError::NotARecording(_))));
        let mut newer = MAGIC.to_vec();
        newer.extend_from_slice(&7u16.to_le_bytes());
        newer.extend_from_slice(&[0; 8]);
        std::fs::write(&path, &newer).unwrap();
        let e = Reader::open(&path).err().unwrap();
        assert!(e.to_string().contains("format 7, newer"), "{e}");
        assert!(matches!(Reader::open(dir.path()), Err(RecordError::NotAFile(_))));
        // A frame that claims 4 GiB decompressed is refused, not allocated.
        write(&path, &[]);
        let mut bytes = std::fs::read(&path).unwrap();
        // (1 GiB from one byte: within MAX_EXPANDED, beyond what LZ4 can expand to.)
        let payload = [0x00u8, 0x00, 0x00, 0x40, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(&path, &bytes).unwrap();
        let mut samples = Samples::new(Reader::open(&path).unwrap());
        assert_eq!(samples.next().map(|s| s.seconds), None);
        assert!(samples.damaged().unwrap().contains("impossible size"));
    }
}
