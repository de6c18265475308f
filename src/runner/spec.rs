//! Runner layer, pure part: what a built-in workload is — its variant, size, workers and what
//! they do with the data — and the memory it will need. No fork, no mmap: the report describes
//! workloads with these types without depending on the code that runs them (`workload.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The pipe size asked for on serialize's data pipes (Linux's default ceiling,
/// /proc/sys/fs/pipe-max-size).
pub const PIPE_BYTES: usize = 1 << 20;
/// The seed of the data: the same bytes in every variant and every run.
pub const DATA_SEED: u64 = 0x6d65_6d74_7265_6521;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Workers inherit the buffer copy-on-write (a Pool over a module-global DataFrame).
    Fork,
    /// Each worker receives its own copy through a pipe (a DataFrame pickled to each task).
    Serialize,
    /// One memfd mapped MAP_SHARED by every worker (a DataFrame on shared memory).
    Shared,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Fork, Variant::Serialize, Variant::Shared];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Fork => "fork",
            Variant::Serialize => "serialize",
            Variant::Shared => "shared",
        }
    }

    /// The name the parent process takes (its `comm`): the mechanism.
    pub fn mechanism(self) -> &'static str {
        match self {
            Variant::Fork => "fork_cow",
            Variant::Serialize => "serialize_copy",
            Variant::Shared => "shm_shared",
        }
    }

    pub fn worker_prefix(self) -> &'static str {
        match self {
            Variant::Fork => "fork_cow",
            Variant::Serialize => "serialize",
            Variant::Shared => "shm_shared",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What each worker does with its data once it has it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Touch {
    /// Nothing: the pages stay as the hand-off left them.
    None,
    /// Read one byte of every page.
    Read,
    /// Change one byte in this fraction of the pages (0 < F ≤ 1).
    Write(f64),
}

impl FromStr for Touch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Touch::None),
            "read" => Ok(Touch::Read),
            "write" => Ok(Touch::Write(1.0)),
            _ => {
                let fraction = text
                    .strip_prefix("write=")
                    .and_then(|f| f.parse::<f64>().ok())
                    .filter(|f| *f > 0.0 && *f <= 1.0)
                    .ok_or_else(|| {
                        format!(
                            "invalid touch {text:?}: expected none, read, write or write=F \
                             with 0 < F <= 1"
                        )
                    })?;
                Ok(Touch::Write(fraction))
            }
        }
    }
}

impl fmt::Display for Touch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Touch::None => f.write_str("none"),
            Touch::Read => f.write_str("read"),
            Touch::Write(fraction) => write!(f, "write={fraction}"),
        }
    }
}

/// A workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub variant: Variant,
    pub size_bytes: u64,
    pub workers: usize,
    pub touch: Touch,
}

impl Spec {
    /// The bytes the workload will make resident, projected before anything is allocated.
    pub fn projected_bytes(&self) -> u64 {
        let size = self.size_bytes;
        let workers = self.workers as u64;
        let written = match self.touch {
            Touch::Write(fraction) => (fraction * size as f64) as u64,
            _ => 0,
        };
        match self.variant {
            // Each worker gets a private copy of every page it writes.
            Variant::Fork => size + workers * written,
            // The parent's original, one received copy per worker, a pipe buffer each.
            Variant::Serialize => size * (workers + 1) + workers * PIPE_BYTES as u64,
            // One segment; writes land in it.
            Variant::Shared => size,
        }
    }
}

/// Refuses a workload the machine cannot hold: `Err` names both numbers.
pub fn check_memory(projected: u64, available: u64, what: &str) -> Result<(), String> {
    if projected <= available {
        return Ok(());
    }
    Err(format!(
        "{what} needs about {} but only {} is available (MemAvailable); use a smaller --size or \
         fewer --workers, or --force",
        crate::units::human_bytes(projected),
        crate::units::human_bytes(available)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_parses() {
        assert_eq!("none".parse(), Ok(Touch::None));
        assert_eq!("read".parse(), Ok(Touch::Read));
        assert_eq!("write".parse(), Ok(Touch::Write(1.0)));
        assert_eq!("write=0.25".parse(), Ok(Touch::Write(0.25)));
        assert!("write=0".parse::<Touch>().is_err());
        assert!("write=1.5".parse::<Touch>().is_err());
        assert!("scribble".parse::<Touch>().is_err());
    }

    #[test]
    fn projections_follow_the_mechanism() {
        let mib = 1 << 20;
        let spec = |variant, touch| Spec { variant, size_bytes: 256 * mib, workers: 4, touch };
        assert_eq!(spec(Variant::Fork, Touch::Read).projected_bytes(), 256 * mib);
        assert_eq!(spec(Variant::Fork, Touch::Write(0.5)).projected_bytes(), 256 * mib * 3);
        assert_eq!(
            spec(Variant::Serialize, Touch::Read).projected_bytes(),
            256 * mib * 5 + 4 * mib
        );
        assert_eq!(spec(Variant::Shared, Touch::Write(1.0)).projected_bytes(), 256 * mib);
        assert!(check_memory(2, 1, "x").unwrap_err().contains("only 1 B is available"));
        assert!(check_memory(1, 2, "x").is_ok());
    }
}
