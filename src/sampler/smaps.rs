//! Sampler layer: parsers for `/proc/PID/smaps` and `/proc/PID/smaps_rollup` text.
//!
//! Hand-written for speed (a 10,000-mapping process prints ~7 MB of smaps; procfs's parser is
//! measured 2× slower) and tolerant by design: unknown keys, keys with non-numeric values, keys a
//! newer kernel adds and keys an older kernel lacks never fail the parse. A missing key stays
//! `None`. Pure functions over bytes: the I/O lives in `sampler::reader`.

use crate::model::snapshot::{MappingRaw, SmapsFields};

/// A line the parser could not make sense of where it had to (a malformed mapping header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{what}", if *.line > 0 { format!("line {}: ", .line) } else { String::new() })]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

/// Parses full `smaps` text into its mappings.
pub fn parse_smaps(text: &[u8]) -> Result<Vec<MappingRaw>, ParseError> {
    let mut parser = SmapsParser::default();
    parser.feed(text)?;
    parser.finish()
}

/// An `smaps` parser fed the text piece by piece as it is read, so the text of a process with
/// 60,000 mappings (~46 MB) is never held whole: only the mappings, and the unfinished line.
#[derive(Debug, Default)]
pub struct SmapsParser {
    mappings: Vec<MappingRaw>,
    partial: Vec<u8>,
    line: usize,
}

impl SmapsParser {
    /// Parses the whole lines of `text` (with the unfinished line of the last call before it).
    pub fn feed(&mut self, mut text: &[u8]) -> Result<(), ParseError> {
        if !self.partial.is_empty() {
            let Some(end) = text.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(text);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&text[..end]);
            self.parse_line(&line)?;
            text = &text[end + 1..];
        }
        match text.iter().rposition(|&b| b == b'\n') {
            Some(newline) => {
                for line in text[..newline].split(|&b| b == b'\n') {
                    self.parse_line(line)?;
                }
                self.partial.extend_from_slice(&text[newline + 1..]);
            }
            None => self.partial.extend_from_slice(text),
        }
        Ok(())
    }

    /// The mappings, once the text has ended. In `smaps` (not `maps`, which has no fields)
    /// every mapping must have the required keys.
    pub fn finish(mut self) -> Result<Vec<MappingRaw>, ParseError> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.parse_line(&line)?;
        }
        if self.mappings.iter().any(|m| m.fields.rss.is_some())
            && let Some((m, key)) =
                self.mappings.iter().find_map(|m| Some((m, missing_key(&m.fields)?)))
        {
            return Err(ParseError {
                line: 0,
                what: format!("the mapping at {:#x} has no {key} line (truncated?)", m.start),
            });
        }
        Ok(self.mappings)
    }

    fn parse_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        self.line += 1;
        if line.is_empty() {
            return Ok(());
        }
        let index = self.line;
        if is_header(line) {
            self.mappings.push(parse_header(line).ok_or_else(|| ParseError {
                line: index,
                what: format!("malformed mapping header {:?}", String::from_utf8_lossy(line)),
            })?);
            return Ok(());
        }
        let Some(current) = self.mappings.last_mut() else {
            // Key lines before any header: not smaps at all.
            return Err(ParseError {
                line: index,
                what: "field line before the first mapping header".into(),
            });
        };
        let Some((key, value)) = split_key(line) else {
            return Ok(()); // not `Key: value`: tolerate
        };
        if key == b"VmFlags" {
            let words = value.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty());
            let mut flags = String::with_capacity(value.len());
            for word in words {
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str(&String::from_utf8_lossy(word));
            }
            current.vm_flags = flags;
        } else {
            set_field(&mut current.fields, key, value)
                .map_err(|what| ParseError { line: index, what })?;
        }
        Ok(())
    }
}

/// Parses `smaps_rollup` text. `Ok(None)` when the file is empty (a zombie or a process whose
/// address space went away between open and read).
pub fn parse_rollup(text: &[u8]) -> Result<Option<SmapsFields>, ParseError> {
    let mut fields = SmapsFields::default();
    let mut saw_header = false;
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if is_header(line) {
            saw_header = true;
            continue;
        }
        if !saw_header {
            return Err(ParseError {
                line: index + 1,
                what: "field line before the [rollup] header".into(),
            });
        }
        if let Some((key, value)) = split_key(line) {
            set_field(&mut fields, key, value)
                .map_err(|what| ParseError { line: index + 1, what })?;
        }
    }
    if saw_header && let Some(key) = missing_key(&fields) {
        return Err(ParseError { line: 0, what: format!("no {key} line (truncated?)") });
    }
    Ok(saw_header.then_some(fields))
}

/// A mapping header starts with the lowercase-hex start address (`7f12…-7f13… r-xp …`); no
/// field key starts with a lowercase hex digit.
fn is_header(line: &[u8]) -> bool {
    matches!(line[0], b'0'..=b'9' | b'a'..=b'f')
}

fn parse_header(line: &[u8]) -> Option<MappingRaw> {
    let mut rest = line;
    let mut next = || -> Option<&[u8]> {
        let start = rest.iter().position(|b| *b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    };
    let range = next()?;
    let perms = next()?;
    let offset = next()?;
    let dev = next()?;
    let inode = next()?;
    let dash = range.iter().position(|b| *b == b'-')?;
    let start = parse_hex(&range[..dash])?;
    let end = parse_hex(&range[dash + 1..])?;
    let pathname = match rest.iter().position(|b| *b != b' ') {
        Some(at) => String::from_utf8_lossy(&rest[at..]).into_owned(),
        None => String::new(),
    };
    Some(MappingRaw {
        start,
        end,
        perms: String::from_utf8_lossy(perms).into_owned(),
        offset: parse_hex(offset)?,
        dev: String::from_utf8_lossy(dev).into_owned(),
        inode: parse_dec(inode)?,
        pathname,
        fields: SmapsFields::default(),
        vm_flags: String::new(),
    })
}

fn split_key(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|b| *b == b':')?;
    Some((&line[..colon], &line[colon + 1..]))
}

/// The most any one figure may be: 4 PiB, the most physical memory x86-64 can address (with
/// 5-level paging). A larger value is not a kernel's, and would make sums overflow.
const MAX_FIGURE: u64 = 1 << 52;

/// Keys every `smaps_rollup` and every `smaps` entry has had since smaps_rollup exists (Linux
/// 4.14): a file without one of them is truncated or not the kernel's.
const REQUIRED: [&str; 8] = [
    "Rss",
    "Pss",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Swap",
    "SwapPss",
];

/// Why `fields` cannot be trusted: a required key is missing.
pub fn missing_key(fields: &SmapsFields) -> Option<&'static str> {
    let values = [
        fields.rss,
        fields.pss,
        fields.shared_clean,
        fields.shared_dirty,
        fields.private_clean,
        fields.private_dirty,
        fields.swap,
        fields.swap_pss,
    ];
    REQUIRED.iter().zip(values).find(|(_, v)| v.is_none()).map(|(key, _)| *key)
}

/// Stores a `Key:   123 kB` value in bytes. Keys without a `kB` unit (`THPeligible`,
/// `ProtectionKey`) and unknown keys are ignored; a known key whose value is not a number of
/// kB (`abc`, `-5`, `12 MB`, a CRLF line, more than [`MAX_FIGURE`]) is an error naming it:
/// a figure memtree cannot read is never guessed.
fn set_field(fields: &mut SmapsFields, key: &[u8], value: &[u8]) -> Result<(), String> {
    let slot = match key {
        b"Size" => &mut fields.size,
        b"Rss" => &mut fields.rss,
        b"Pss" => &mut fields.pss,
        b"Pss_Dirty" => &mut fields.pss_dirty,
        b"Pss_Anon" => &mut fields.pss_anon,
        b"Pss_File" => &mut fields.pss_file,
        b"Pss_Shmem" => &mut fields.pss_shmem,
        b"Shared_Clean" => &mut fields.shared_clean,
        b"Shared_Dirty" => &mut fields.shared_dirty,
        b"Private_Clean" => &mut fields.private_clean,
        b"Private_Dirty" => &mut fields.private_dirty,
        b"Referenced" => &mut fields.referenced,
        b"Anonymous" => &mut fields.anonymous,
        b"KSM" => &mut fields.ksm,
        b"LazyFree" => &mut fields.lazy_free,
        b"AnonHugePages" => &mut fields.anon_huge_pages,
        b"ShmemPmdMapped" => &mut fields.shmem_pmd_mapped,
        b"FilePmdMapped" => &mut fields.file_pmd_mapped,
        b"Shared_Hugetlb" => &mut fields.shared_hugetlb,
        b"Private_Hugetlb" => &mut fields.private_hugetlb,
        b"Swap" => &mut fields.swap,
        b"SwapPss" => &mut fields.swap_pss,
        b"Locked" => &mut fields.locked,
        _ => return Ok(()),
    };
    match parse_kib(value).and_then(|kib| kib.checked_mul(1024)).filter(|&b| b <= MAX_FIGURE) {
        Some(bytes) => {
            *slot = Some(bytes);
            Ok(())
        }
        None => Err(format!(
            "cannot parse {}: {:?}",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(value).trim()
        )),
    }
}

/// `"   1234 kB"` → 1234.
fn parse_kib(value: &[u8]) -> Option<u64> {
    let mut words = value.split(|b| *b == b' ').filter(|w| !w.is_empty());
    let number = parse_dec(words.next()?)?;
    (words.next()? == b"kB").then_some(number)
}

fn parse_dec(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, b| {
        let digit = (*b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, b| {
        let digit = (*b as char).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_MAPPINGS: &str = "\
55d0c8a00000-55d0c8a21000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
KernelPageSize:        4 kB
Rss:                  12 kB
Pss:                   6 kB
Pss_Dirty:             6 kB
Shared_Clean:          0 kB
Shared_Dirty:         12 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Swap:                  0 kB
SwapPss:               0 kB
THPeligible:    0
VmFlags: rd wr mr mw me ac zz
7f00aa000000-7f00aa001000 r--p 00001000 fd:01 123456                     /usr/lib/with space (deleted)
Size:                  4 kB
Rss:                   4 kB
Pss:                   4 kB
Private_Clean:         4 kB
Private_Dirty:         0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
SwapPss:               0 kB
FutureKey:        banana
FutureNumber:          7 kB
";

    #[test]
    fn parses_headers_fields_and_flags() {
        let maps = parse_smaps(TWO_MAPPINGS.as_bytes()).unwrap();
        assert_eq!(maps.len(), 2);
        let heap = &maps[0];
        assert_eq!(heap.start, 0x55d0c8a00000);
        assert_eq!(heap.end, 0x55d0c8a21000);
        assert_eq!(heap.perms, "rw-p");
        assert_eq!(heap.pathname, "[heap]");
        assert_eq!(heap.fields.rss, Some(12 * 1024));
        assert_eq!(heap.fields.pss_dirty, Some(6 * 1024));
        assert_eq!(heap.fields.shared_dirty, Some(12 * 1024));
        assert_eq!(heap.vm_flags, "rd wr mr mw me ac zz");
        let lib = &maps[1];
        assert_eq!(lib.pathname, "/usr/lib/with space (deleted)");
        assert_eq!(lib.offset, 0x1000);
        assert_eq!(lib.inode, 123456);
        assert_eq!(lib.dev, "fd:01");
        assert_eq!(lib.fields.private_clean, Some(4096));
        // Missing on this entry: absent, not zero.
        assert_eq!(lib.fields.pss_dirty, None);
        assert_eq!(lib.fields.ksm, None);
    }

    #[test]
    fn fed_in_pieces_it_parses_the_same() {
        let whole = parse_smaps(TWO_MAPPINGS.as_bytes()).unwrap();
        for piece in [1, 7, 64, 1000] {
            let mut parser = SmapsParser::default();
            for chunk in TWO_MAPPINGS.as_bytes().chunks(piece) {
                parser.feed(chunk).unwrap();
            }
            assert_eq!(parser.finish().unwrap(), whole, "pieces of {piece} bytes");
        }
        // No final newline.
        let text = TWO_MAPPINGS.trim_end();
        assert_eq!(parse_smaps(text.as_bytes()).unwrap(), whole);
    }

    #[test]
    fn anonymous_mapping_has_empty_pathname() {
        let text = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nRss: 4 kB\nPss: 4 kB\n\
            Shared_Clean: 0 kB\nShared_Dirty: 0 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n\
            Swap: 0 kB\nSwapPss: 0 kB\n";
        let maps = parse_smaps(text.as_bytes()).unwrap();
        assert_eq!(maps[0].pathname, "");
        assert_eq!(maps[0].name(), "[anon]");
    }

    #[test]
    fn rollup_parses_and_empty_rollup_is_none() {
        let text = format!("{ROLLUP}Pss_Anon:            112 kB\n");
        let fields = parse_rollup(text.as_bytes()).unwrap().unwrap();
        assert_eq!(fields.rss, Some(1712 * 1024));
        assert_eq!(fields.pss_anon, Some(112 * 1024));
        assert_eq!(fields.swap_pss, Some(0));
        assert_eq!(fields.pss_shmem, None);
        assert_eq!(parse_rollup(b"").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_smaps(b"Rss: 4 kB\n").is_err());
        assert!(parse_smaps(b"zz-zz rw-p\n").is_err());
        assert!(parse_rollup(b"Rss: 4 kB\n").is_err());
        // A header with too few columns.
        assert!(parse_smaps(b"1000-2000 rw-p\n").is_err());
    }

    const ROLLUP: &str = "55b8e84ac000-7fff0914c000 ---p 00000000 00:00 0  [rollup]\n\
        Rss: 1712 kB\nPss: 753 kB\nShared_Clean: 900 kB\nShared_Dirty: 0 kB\n\
        Private_Clean: 0 kB\nPrivate_Dirty: 812 kB\nSwap: 0 kB\nSwapPss: 0 kB\n";

    #[test]
    fn a_figure_that_does_not_parse_is_an_error_naming_it() {
        assert!(parse_rollup(ROLLUP.as_bytes()).unwrap().is_some());
        for (bad, says) in [
            ("Pss: abc kB", "cannot parse Pss: \"abc kB\""),
            ("Pss: -5 kB", "cannot parse Pss"),
            ("Pss: 99999999999999999999999 kB", "cannot parse Pss"),
            ("Pss: 9007199254740992 kB", "cannot parse Pss"),
            ("Pss: 753 MB", "cannot parse Pss"),
            ("Pss: 753 kB\r", "cannot parse Pss"),
        ] {
            let text = ROLLUP.replace("Pss: 753 kB", bad);
            let err = parse_rollup(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        let truncated = &ROLLUP[..ROLLUP.find("Swap:").unwrap()];
        let err = parse_rollup(truncated.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, "no Swap line (truncated?)");
        let missing = ROLLUP.replace("Pss: 753 kB\n", "");
        assert!(parse_rollup(missing.as_bytes()).unwrap_err().to_string().contains("no Pss line"));
        let text = "1000-2000 rw-p 00000000 00:00 0\nRss: 99999999999999999999999 kB\n";
        assert!(parse_smaps(text.as_bytes()).is_err());
    }
}
