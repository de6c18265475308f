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
