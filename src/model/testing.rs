//! Model layer, tests only: one builder for the raw samples every unit test feeds the model
//! (instead of a hand-rolled `ProcessSample` per test module).

use super::snapshot::{MappingRaw, ProcessSample, SmapsFields, Snapshot, Unreadable};

pub(crate) const MIB: u64 = 1 << 20;

/// A readable process with every rollup field the figures need (all 0 until set).
pub(crate) fn process(pid: u32, ppid: u32) -> ProcessBuilder {
    ProcessBuilder(ProcessSample {
        pid,
        ppid,
        name: format!("p{pid}"),
        uid: Some(0),
        cmdline: Some(vec![format!("p{pid}")]),
        rollup: Ok(SmapsFields {
            rss: Some(0),
            pss: Some(0),
            private_clean: Some(0),
            private_dirty: Some(0),
            shared_clean: Some(0),
            shared_dirty: Some(0),
            swap: Some(0),
            swap_pss: Some(0),
            ..SmapsFields::default()
        }),
        mappings: None,
        pages: None,
        unframed: None,
        content: None,
    })
}

pub(crate) struct ProcessBuilder(ProcessSample);

impl ProcessBuilder {
    pub(crate) fn name(mut self, name: &str) -> Self {
        self.0.name = name.to_string();
        self.0.cmdline = Some(vec![name.to_string()]);
        self
    }

    fn fields(&mut self) -> &mut SmapsFields {
        self.0.rollup.as_mut().expect("a readable process")
    }

    /// RSS, PSS and USS in bytes; the rest of RSS is shared.
    pub(crate) fn figures(mut self, rss: u64, pss: u64, uss: u64) -> Self {
        let f = self.fields();
        f.rss = Some(rss);
        f.pss = Some(pss);
        f.private_dirty = Some(uss);
        f.shared_dirty = Some(rss - uss);
        self
    }

    /// Sets one raw field (the ones [`Self::figures`] does not cover, or `None` for a kernel
    /// that does not print it).
    pub(crate) fn field(mut self, set: impl FnOnce(&mut SmapsFields)) -> Self {
        set(self.fields());
        self
    }

    pub(crate) fn unreadable(mut self, reason: Unreadable) -> Self {
        self.0.rollup = Err(reason);
        self
    }

    pub(crate) fn mappings(mut self, mappings: Vec<MappingRaw>) -> Self {
        self.0.mappings = Some(Ok(mappings));
        self
    }

    pub(crate) fn build(self) -> ProcessSample {
        self.0
    }
}

/// A privileged snapshot of `processes`, 4 KiB pages, taken at the epoch.
pub(crate) fn snapshot(processes: Vec<ProcessSample>) -> Snapshot {
    Snapshot { taken_at_unix: 0.0, privileged: true, processes, pfn_table: None, page_size: 4096 }
}

/// An anonymous-looking mapping named `name` (empty: `[anon]`) with `rss` bytes, half of it PSS.
pub(crate) fn mapping(name: &str, rss: u64) -> MappingRaw {
    MappingRaw {
        start: 0,
        end: rss.max(4096),
        perms: "rw-p".into(),
        offset: 0,
        dev: "00:00".into(),
        inode: 0,
        pathname: name.into(),
        fields: SmapsFields {
            rss: Some(rss),
            pss: Some(rss / 2),
            private_clean: Some(0),
            private_dirty: Some(0),
            ..SmapsFields::default()
        },
        vm_flags: String::new(),
    }
}

/// The pages of a process mapping `frames` in order, one 4 KiB page each, in one mapping.
pub(crate) fn pages(frames: &[u64]) -> super::snapshot::PagesRaw {
    use super::snapshot::{MappingSpan, PageEntry, PagesRaw, pagemap_bits::PRESENT};
    let entries =
        frames.iter().enumerate().map(|(i, &pfn)| (i as u64 * 4096, PageEntry::new(PRESENT | pfn)));
    let end = (frames.len() as u64 * 4096).max(4096);
    PagesRaw::from_entries(vec![MappingSpan { start: 0, end, name: "buf".into() }], entries, 4096)
}

/// The three built-in workloads as a privileged, exact snapshot, each a parent and three
/// workers over 16 pages of data (64 KiB): fork (one copy, mapped by all four), serialize (the
/// parent's copy, inherited by the workers, and a copy of its own in each worker) and shared
/// (one segment mapped by all four); every process has one page of its own too. The roots are
/// 100, 200 and 300.
pub(crate) fn workloads_snapshot() -> Snapshot {
    use std::collections::HashMap;
    const PAGE: u64 = 4096;
    let data = |first: u64| (first..first + 16).collect::<Vec<u64>>();
    let mut frames: Vec<(u32, u32, &str, Vec<u64>)> = Vec::new();
    let mut own = 500u64;
    let mut next_own = || {
        own += 1;
        own
    };
    for (root, name, base) in
        [(100u32, "fork_cow", 0u64), (200, "serialize_copy", 100), (300, "shm_shared", 200)]
    {
        let mut root_frames = data(base);
        root_frames.push(next_own());
        frames.push((root, 1, name, root_frames));
        for w in 1..=3u32 {
            let mut f = data(base);
            if base == 100 {
                // A copy of its own, received through a pipe.
                f.extend(data(base + 16 * u64::from(w)));
            }
            f.push(next_own());
            let worker: &str = match (name, w) {
                ("fork_cow", 1) => "fork_cow-w0",
                ("fork_cow", 2) => "fork_cow-w1",
                ("fork_cow", _) => "fork_cow-w2",
                ("serialize_copy", 1) => "serialize_cop-w0",
                ("serialize_copy", 2) => "serialize_cop-w1",
                ("serialize_copy", _) => "serialize_cop-w2",
                (_, 1) => "shm_shared-w0",
                (_, 2) => "shm_shared-w1",
                _ => "shm_shared-w2",
            };
            frames.push((root + w, root, worker, f));
        }
    }
    let mut mappers: HashMap<u64, u32> = HashMap::new();
    for (_, _, _, f) in &frames {
        for &pfn in f {
            *mappers.entry(pfn).or_default() += 1;
        }
    }
    let mut present = vec![0u64; 10];
    for &pfn in mappers.keys() {
        present[(pfn / 64) as usize] |= 1 << (pfn % 64);
    }
    let mut table = super::snapshot::PfnTable::new(present);
    for (&pfn, &count) in &mappers {
        let index = table.index(pfn).expect("present");
        table.mapcount[index] = count;
    }
    let processes = frames
        .iter()
        .map(|(pid, ppid, name, f)| {
            let rss = f.len() as u64 * PAGE;
            let pss: u64 = f.iter().map(|pfn| PAGE / u64::from(mappers[pfn])).sum();
            let uss = f.iter().filter(|pfn| mappers[pfn] == 1).count() as u64 * PAGE;
            let mut p = process(*pid, *ppid).name(name).figures(rss, pss, uss).build();
            p.pages = Some(Ok(pages(f)));
            p
        })
        .collect();
    Snapshot { pfn_table: Some(Ok(table)), ..snapshot(processes) }
}
