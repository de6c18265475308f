//! Edge helpers, shared by every face (table, markdown, compare, dashboard) so a figure reads
//! the same everywhere: human sizes, ratios, "n/a" for a figure that could not be read, paths
//! shortened from the left, UTC times; and the size/duration syntax of the command line
//! (`256MiB`, `1G`, `512k`; `500ms`, `30s`, `2m`). Pure: no layer formats but the faces.

/// `1288490188` → `1.2 GiB`; `0` → `0 B`; one decimal, dropped when it is zero.
///
/// Hand-rolled rather than humansize: humansize prints 1 GiB − 4 bytes as "1024.0 MiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    // Step up while the value would print as 1024.0 or more after rounding to one decimal.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// A size said to be "about" something, to two significant digits: `1 MiB` for 1010.7 KiB,
/// `23 MiB`, `1.2 GiB` (an approximate figure shows no more precision than it has).
pub fn human_bytes_about(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    // Step up while the value would print as 1000 or more.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = if value >= 9.95 { format!("{value:.0}") } else { format!("{value:.1}") };
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// A growth in bytes per second as bytes per minute, signed: `+1.2 MiB/min`, `-64 KiB/min`.
pub fn human_rate(bytes_per_second: f64) -> String {
    let per_minute = bytes_per_second * 60.0;
    let sign = if per_minute < 0.0 { "-" } else { "+" };
    format!("{sign}{}/min", human_bytes(per_minute.abs().round() as u64))
}

/// Text read from /proc or a capture — a process name, a command line, a mapping path — as a
/// table or markdown prints it: every character a terminal could act on (C0 and C1 controls,
/// DEL) and every bidirectional control that could reorder what is shown, written as a visible
/// escape (`\n`, `\t`, `\x1b`, `\u{202e}`); a backslash as `\\`, so the escapes cannot be
/// forged. Any process can name itself so and wait for root to look: this is the one place
/// such text is made safe for a terminal (JSON escapes it itself; the dashboard uses
/// [`stripped`]).
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The same text as the dashboard draws it: the characters [`visible`] escapes replaced by
/// `?` (a screen cell each, so columns stay aligned).
pub fn stripped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c != '\\' && needs_escape(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars().map(|c| if c != '\\' && needs_escape(c) { '?' } else { c }).collect(),
    )
}

/// Controls (C0, DEL, C1), bidirectional marks, embeddings, overrides and isolates, and the
/// backslash that introduces an escape.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How every face shows a figure that could not be read (the reason is given beside it).
pub const NOT_AVAILABLE: &str = "n/a";

/// `Some(n)` → human size, `None` → `n/a`.
pub fn human_opt(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| NOT_AVAILABLE.to_string(), human_bytes)
}

/// A ratio such as the overcount: `4.0×`.
pub fn ratio(value: f64) -> String {
    format!("{value:.1}×")
}

/// `Some(r)` → `4.0×`, `None` → `n/a`.
pub fn ratio_opt(value: Option<f64>) -> String {
    value.map_or_else(|| NOT_AVAILABLE.to_string(), ratio)
}

/// A duration as `parse_duration` reads it: `500ms`, `15s`, `2m`, `1.5s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `n` and the noun in the number it takes: `1 worker`, `3 workers`, `0 trees`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` in lines of at most `width` characters, broken between words, never between a size
/// and its unit (a word longer than `width` is cut into lines of their own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    // A size stays with its unit ("28 MiB" is one word here).
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let unit = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
            .iter()
            .any(|u| word.trim_end_matches(|c: char| c.is_ascii_punctuation() || c == '×') == *u);
        match words.last_mut() {
            Some(last) if unit && last.chars().next_back().is_some_and(|c| c.is_ascii_digit()) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    // A word longer than a line (a path) is cut into lines of its own.
    let words: Vec<String> = words
        .into_iter()
        .flat_map(|word| {
            let chars: Vec<char> = word.chars().collect();
            if width == 0 || chars.len() <= width {
                return vec![word];
            }
            chars.chunks(width).map(|c| c.iter().collect()).collect()
        })
        .collect();
    for word in &words {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Seconds since the epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `text` cut to `width` characters at its end, for a list whose first items matter most:
/// `15630 fork_cow, 1563…`.
pub fn shorten_right(text: &str, width: usize) -> String {
    if text.chars().count() <= width || width == 0 {
        return text.to_string();
    }
    let kept: String = text.chars().take(width - 1).collect();
    format!("{kept}…")
}

/// `text` cut to `width` characters from the left, so a path keeps its file name:
/// `…/libc.so.6`.
pub fn shorten_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width || width == 0 {
        return text.to_string();
    }
    let skip = count - (width - 1);
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

/// Parses a size: a number with an optional unit, binary or decimal (`256MiB`, `1G` = 1 GiB,
/// `1GB` = 10⁹, `512k`, `4096`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("invalid size {text:?}: a size cannot be negative"));
    }
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected a number with a unit like 256MiB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, or kB, MB, GB)"
            ));
        }
    };
    let out_of_range = || format!("invalid size {text:?}: out of range (at most 16 EiB)");
    // Whole numbers exactly (2^64 must not round down into range), fractions in floating point.
    if !number.contains('.') {
        let whole: u128 = number.parse().map_err(|_| out_of_range())?;
        return u64::try_from(whole * u128::from(multiplier)).map_err(|_| out_of_range());
    }
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || !(0.0..18_446_744_073_709_551_616.0).contains(&bytes) {
        return Err(out_of_range());
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("invalid duration {text:?}: a duration cannot be negative"));
    }
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 30s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration {text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

/// Seconds since the epoch → `2026-11-24 23:50:01 UTC` (proleptic Gregorian, no leap seconds).
pub fn utc_timestamp(unix: f64) -> String {
    let secs = unix.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn approximate_sizes_have_two_significant_digits() {
        assert_eq!(human_bytes_about(1_034_957), "1 MiB"); // 1010.7 KiB
        assert_eq!(human_bytes_about(512 << 10), "512 KiB");
        assert_eq!(human_bytes_about(23_456 << 10), "23 MiB");
        assert_eq!(human_bytes_about(1_288_490_189), "1.2 GiB");
        assert_eq!(human_bytes_about(9_800_000), "9.3 MiB");
        assert_eq!(human_bytes_about(10_500_000), "10 MiB");
        assert_eq!(human_bytes_about(999), "999 B");
        assert_eq!(human_bytes_about(1000), "1 KiB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert!(parse_size("12bananas").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("18446744073709551616").unwrap_err().contains("out of range"));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_size("16384PiB").is_err());
        assert!(parse_size("17179869184GiB").unwrap_err().contains("out of range"));
        assert!(parse_size("-5MiB").unwrap_err().contains("negative"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("forever").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1_288_490_188), "1.2 GiB");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes((1 << 30) - 4), "1 GiB");
        assert_eq!(human_bytes(1536 << 10), "1.5 MiB");
        assert_eq!(human_opt(None), "n/a");
        assert_eq!(ratio(4.04), "4.0×");
        assert_eq!(ratio_opt(None), "n/a");
        assert_eq!(shorten_left("/usr/lib/x86_64-linux-gnu/libc.so.6", 11), "…/libc.so.6");
        assert_eq!(wrap("exclusive 28 MiB, overcount", 14), ["exclusive", "28 MiB,", "overcount"]);
        assert_eq!(wrap("at /a/long/path", 6), ["at", "/a/lon", "g/path"]);
        assert_eq!(count(1, "tree", "trees"), "1 tree");
        assert_eq!(count(3, "worker", "workers"), "3 workers");
        assert_eq!(human_duration(std::time::Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(std::time::Duration::from_secs(15)), "15s");
        assert_eq!(human_duration(std::time::Duration::from_secs(120)), "2m");
        assert_eq!(human_duration(std::time::Duration::from_millis(1500)), "1.5s");
        assert_eq!(shorten_right("100 fork_cow, 101 fork_cow-w0", 13), "100 fork_cow…");
    }

    #[test]
    fn text_from_proc_cannot_reach_a_terminal_raw() {
        let hostile = "a b\nc\x1b[31mR\x07\x1b]0;\u{202e}x\\n";
        let shown = visible(hostile);
        assert_eq!(shown, "a b\\nc\\x1b[31mR\\x07\\x1b]0;\\u{202e}x\\\\n");
        assert!(!shown.chars().any(|c| c.is_control()));
        assert_eq!(stripped(hostile), "a b?c?[31mR??]0;?x\\n");
        assert_eq!(visible("/usr/lib/libc.so.6"), "/usr/lib/libc.so.6");
        assert!(matches!(visible("python3"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(visible("\u{85}"), "\\u{85}", "C1 controls too");
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_795_995_001.0), "2026-11-29 23:30:01 UTC");
    }
}
