//! Report layer: the plain-language explanation of a set of totals — why a monitor's number is
//! wrong, by how much, and what could not be counted. Built only from the numbers.

use crate::model::accounting::ProcessRow;
use crate::model::{Accounting, Totals, Tree};
use crate::runner::spec::{Spec, Variant};
use crate::units::{count, human_bytes, human_bytes_about, ratio, visible};

/// Why a monitor's number is wrong, in one paragraph (the dashboard's explanation opens with it).
pub const WHY_MONITORS_OVERCOUNT: &str = "A system monitor shows each process's RSS: every page \
    it maps, counted in full even when other processes map the same page. Forked workers share \
    their parent's pages copy-on-write, so each one \"uses\" the whole data set in the monitor \
    while the machine holds it once.";

/// How to read USS, in one sentence.
pub const READING_USS: &str = "USS is what a process alone holds; if every worker's USS is about \
    the data size, the data was copied (pickled, or copied by a library), not shared.";

/// Below this overcount the monitor's sum is "about right".
const NEGLIGIBLE_OVERCOUNT: f64 = 1.05;

/// Sentences explaining `totals` (for the whole report: every tree together).
pub fn explain(accounting: &Accounting) -> Vec<String> {
    let totals = &accounting.totals;
    let mut lines = Vec::new();
    let readable = totals.readable();
    let what = if accounting.trees.len() > 1 {
        format!("these {} trees", accounting.trees.len())
    } else {
        "the tree".to_string()
    };
    match (totals.rss_sum, totals.footprint, totals.overcount) {
        (Some(rss), Some(footprint), Some(overcount)) => {
            let (about, how) = if totals.exact_ok().is_some() {
                ("", "exactly (distinct physical pages)")
            } else {
                ("about ", "(estimated from PSS)")
            };
            lines.push(format!(
                "A monitor adding RSS shows {} for {}; {} really {} {about}{} {how}.",
                human_bytes(rss),
                if readable == 1 {
                    "this process".to_string()
                } else {
                    format!("these {readable} processes")
                },
                what,
                if accounting.trees.len() > 1 { "use" } else { "uses" },
                human_bytes(footprint),
            ));
            lines.extend(exact_sentences(accounting));
            lines.extend(dedup_sentences(accounting));
            // One tree has no paragraph of its own: how its workers started is said here.
            if let [tree] = accounting.trees.as_slice() {
                lines.extend(start_methods(tree));
                lines.extend(erosion_sentence(tree));
            }
            if overcount >= NEGLIGIBLE_OVERCOUNT {
                lines.push(format!(
                    "{} of the RSS are the same pages counted more than once (shared between \
                     processes, inside the tree or with processes outside it): the monitor \
                     overstates {} {}.",
                    human_bytes(rss.saturating_sub(footprint)),
                    what,
                    ratio(overcount),
                ));
            } else if readable > 1 {
                lines.push(format!(
                    "RSS and PSS agree: almost nothing is shared, so the monitor's sum is about \
                     right. Each process's memory is its own (Σ USS {}): data that several \
                     processes hold is copied, not shared.",
                    human_bytes(totals.uss_sum.unwrap_or(0)),
                ));
            }
        }
        _ if readable == 0 && totals.processes == 1 => {
            lines.push("No memory figure could be read for the one process.".to_string());
        }
        _ if readable == 0 && totals.processes > 0 => {
            lines.push(format!(
                "No memory figure could be read for any of the {} processes.",
                totals.processes,
            ));
        }
        _ => {}
    }
    if let Some(ksm) = totals.ksm_sum.filter(|&k| k > 0) {
        lines.push(format!(
            "{} of the RSS are KSM-merged pages: copies the kernel has already merged into one.",
            human_bytes(ksm)
        ));
    }
    lines.extend(accounting.notes.iter().cloned());
    if totals.overflowed {
        lines.push(
            "Some sums exceed 2^64 bytes, which no machine holds: they are left out (the \
             figures read are not the kernel's)."
                .to_string(),
        );
    }
    lines.extend(unreadable_sentence(totals, accounting.privileged));
    if let Some(Err(reason)) = &totals.exact {
        lines.push(format!("No exact figures: {reason}."));
    } else if let Some(Err(reason)) = &totals.dedup {
        lines.push(format!("No duplicated-content figures: {reason}."));
    }
    lines
}

/// What the tree's forked workers still share with their parents and what their writes copied
/// since the fork (docs/erosion.md), when their pages were read.
pub fn erosion_sentence(tree: &Tree) -> Option<String> {
    let mut workers = 0usize;
    let (mut shared, mut copied, mut estimated) = (0u64, 0u64, false);
    // What the workers hold of their own beyond what their writes copied: built or received
    // after the fork (a pickled argument), none of it inherited.
    let mut gained = 0u64;
    let mut names: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut unread = 0usize;
    for row in &tree.processes {
        let e = match &row.erosion {
            Some(Ok(e)) => e,
            Some(Err(crate::model::Unreadable::NotApplicable(_))) | None => continue,
            Some(Err(_)) => {
                unread += 1;
                continue;
            }
        };
        workers += 1;
        shared += e.shared_with_parent;
        copied += e.copied_from_parent;
        let uss = row.figures.as_ref().ok().and_then(|f| f.uss).unwrap_or(0);
        gained += uss.saturating_sub(e.copied_from_parent);
        estimated |= e.estimated;
        for (name, bytes) in &e.by_mapping {
            *names.entry(name).or_default() += bytes;
        }
    }
    if workers == 0 {
        return None;
    }
    let most = names.into_iter().max_by_key(|&(n, b)| (b, std::cmp::Reverse(n)));
    let most = match most {
        Some((name, bytes)) if copied > 0 && bytes * 2 >= copied => {
            format!(", most in {}", visible(name))
        }
        _ => String::new(),
    };
    let (about, mut estimate) = if estimated {
        ("about ", " (estimated without root)".to_string())
    } else {
        ("", String::new())
    };
    if unread > 0 {
        estimate.push_str(&format!(
            " ({} could not be read and {} left out)",
            count(unread, "more worker", "more workers"),
            if unread == 1 { "is" } else { "are" }
        ));
    }
    let verdict = if copied * 20 <= shared && workers == 1 {
        ": what it inherited is still shared"
    } else if copied * 20 <= shared {
        ": what they inherited is still shared"
    } else if copied >= shared {
        ": most of what they inherited is now a copy of their own"
    } else {
        ""
    };
    // Memory of their own that is not erosion (a frame each received whole): said, or "still
    // shared" reads as if the workers held nothing twice.
    let per = |bytes: u64| bytes / workers as u64;
    let gained_words = if per(gained) >= 1 << 20 && per(gained) * 4 >= per(shared) {
        let (each, average) = if workers == 1 { ("it", "") } else { ("each", " on average") };
        format!(
            ". Besides, {each} holds {about}{} of its own{average} that it did not copy from the \
             parent: built or received after the fork",
            human_bytes(per(gained)),
        )
    } else {
        String::new()
    };
    Some(if workers == 1 {
        format!(
            "Its forked worker still shares {about}{} with its parent; since the fork its writes \
             copied {about}{}{most}{estimate}{verdict}{gained_words}.",
            human_bytes(shared),
            human_bytes(copied),
        )
    } else {
        format!(
            "Its {workers} forked workers each still share {about}{} with their parent (on \
             average); since the fork their writes copied {about}{} in all{most}{estimate}{verdict}\
             {gained_words}.",
            human_bytes(shared / workers as u64),
            human_bytes(copied),
        )
    })
}

/// Trees explained one by one at most (the largest first); the rest are counted.
pub const TREES_EXPLAINED: usize = 6;

/// One paragraph per tree (at most [`TREES_EXPLAINED`], the order of `accounting.trees`), each
/// from its own numbers: what a monitor shows for it and what it uses, how many copies of what
/// it holds, shared by whom, duplicated where; for a built-in workload (`specs`, the trees'
/// own, in order), the variant's verdict. Names are made visible (hostile text).
pub fn per_tree(accounting: &Accounting, specs: &[Option<Spec>]) -> Vec<String> {
    let mut paragraphs: Vec<String> = accounting
        .trees
        .iter()
        .take(TREES_EXPLAINED)
        .enumerate()
        .map(|(i, tree)| tree_paragraph(tree, specs.get(i).copied().flatten()))
        .collect();
    let rest = accounting.trees.len().saturating_sub(TREES_EXPLAINED);
    if rest > 0 {
        paragraphs.push(format!("…and {} more.", count(rest, "tree", "trees")));
    }
    paragraphs
}

/// The paragraph of one tree (see [`per_tree`]).
pub fn tree_paragraph(tree: &Tree, spec: Option<Spec>) -> String {
    let t = &tree.totals;
    let name = visible(&tree.name);
    let readable = t.readable();
    let mut words = vec![format!(
        "{name} (pid {}, {}):",
        tree.root_pid,
        count(t.processes, "process", "processes")
    )];
    let (Some(rss), Some(footprint)) = (t.rss_sum, t.footprint) else {
        words.push(if readable == 0 {
            "no memory figure of it could be read.".to_string()
        } else {
            "its sums could not be made.".to_string()
        });
        return words.join(" ");
    };
    let exact = t.exact_ok();
    let how = if exact.is_some() { "" } else { "about " };
    words.push(format!(
        "a monitor shows {}; it really uses {how}{}{}.",
        human_bytes(rss),
        human_bytes(footprint),
        match t.overcount {
            Some(o) if o >= NEGLIGIBLE_OVERCOUNT => format!(" (overstated {})", ratio(o)),
            _ => String::new(),
        }
    ));
    if let Some(e) = exact
        && let Some(&(k, bytes)) =
            e.histogram.iter().rev().find(|(k, bytes)| *k > 1 && *bytes * 10 >= e.resident)
    {
        let by = if k == readable {
            format!("all {k} of its processes")
        } else {
            format!("{k} of them")
        };
        words.push(format!("{} is one physical copy mapped by {by}.", human_bytes(bytes)));
    }
    // A workload's verdict says what is duplicated itself.
    if let Some(d) = t.dedup_ok().filter(|_| spec.is_none()) {
        let holder = tree
            .processes
            .iter()
            .filter_map(|p| Some((p, p.dedup.as_ref()?.as_ref().ok()?.duplicated)))
            .filter(|(_, d)| *d > 0)
            .collect::<Vec<_>>();
        if d.total.duplicated > 0 {
            words.push(format!(
                "{} are identical copies held again by {}.",
                human_bytes(d.total.duplicated),
                count(holder.len(), "process", "processes")
            ));
        } else {
            words.push("Nothing in it is held twice.".to_string());
        }
    }
    words.extend(start_methods(tree));
    words.extend(erosion_sentence(tree));
    if t.unreadable_count() > 0 {
        words.push(format!(
            "{} could not be read and {} left out.",
            count(t.unreadable_count(), "process", "processes"),
            if t.unreadable_count() == 1 { "is" } else { "are" }
        ));
    }
    if let Some(spec) = spec {
        words.push(format!(
            "Verdict: {}.",
            variant_verdict(&spec, t, &tree.processes.iter().collect::<Vec<_>>(), false)
        ));
    }
    words.join(" ")
}

/// How Python started the tree's multiprocessing workers, when its command lines say so, with
/// what that did to their memory: a forked worker shares its parent's pages; one from a fork
/// server or spawned inherited none of its data, so what it holds is its own — rebuilt or
/// received, and duplicated when the others hold the same (Python 3.14's default on Linux is
/// the fork server).
fn start_methods(tree: &Tree) -> Option<String> {
    use crate::model::python::{StartMethod, roles};
    let roles = roles(tree);
    let mut parts = Vec::new();
    for (method, how) in [
        (StartMethod::Fork, "forked: they share the parent's pages copy-on-write"),
        (
            StartMethod::Forkserver,
            "started by a fork server: they inherited nothing of the parent's data, so what \
             they hold is their own, built or received in each",
        ),
        (
            StartMethod::Spawn,
            "spawned as fresh interpreters: they inherited nothing of the parent's data, so \
             what they hold is their own, built or received in each",
        ),
    ] {
        let workers: Vec<_> = tree
            .processes
            .iter()
            .filter(|p| roles.get(&p.pid).and_then(|r| r.start_method()) == Some(method))
            .collect();
        if workers.is_empty() {
            continue;
        }
        let mut part =
            format!("{} {how}", count(workers.len(), "Python worker was", "Python workers were"));
        // Their own memory: exact USS where measured, else the rollup's; only when every
        // worker's is known (a sum over some would mislead).
        let own: Option<Vec<u64>> = workers
            .iter()
            .map(|p| match &p.exact {
                Some(Ok(e)) => Some(e.uss),
                _ => p.figures.as_ref().ok().and_then(|f| f.uss),
            })
            .collect();
        if let Some(own) = own {
            let (low, high) = (own.iter().min().copied(), own.iter().max().copied());
            if let (Some(low), Some(high)) = (low, high) {
                // Close figures are one ("about 1 MiB"), spread ones a range.
                let mean = own.iter().sum::<u64>() / own.len() as u64;
                let each = if human_bytes(low) == human_bytes(high) {
                    human_bytes(low)
                } else if high as f64 <= low as f64 * 1.25 {
                    format!("about {}", human_bytes_about(mean))
                } else {
                    format!("{} to {}", human_bytes(low), human_bytes(high))
                };
                let whose = if workers.len() == 1 { "it holds" } else { "each holds" };
                part.push_str(&format!(" ({whose} {each} of its own"));
                let duplicated: Option<u64> = workers
                    .iter()
                    .map(|p| p.dedup.as_ref().and_then(|d| d.as_ref().ok()).map(|d| d.duplicated))
                    .sum();
                match duplicated {
                    Some(d) if d >= 1 << 20 && method != StartMethod::Fork => {
                        part.push_str(&format!(
                            "; {} of it is the same content as elsewhere in the tree: copies, \
                         not shared",
                            human_bytes(d)
                        ))
                    }
                    _ => {}
                }
                part.push(')');
            }
        }
        parts.push(part);
    }
    (!parts.is_empty()).then(|| format!("{}.", parts.join("; ")))
}

/// What a built-in workload's tree says about its variant: how many copies of the data it holds
/// and how they got there ("one copy of the 64 MiB (inherited copy-on-write) serves all 4
/// processes"), what a monitor shows for it (`monitor`), and what of it is duplicated.
pub fn variant_verdict(spec: &Spec, t: &Totals, rows: &[&ProcessRow], monitor: bool) -> String {
    let size = human_bytes(spec.size_bytes);
    let (Some(footprint), Some(rss), Some(overcount)) = (t.footprint, t.rss_sum, t.overcount)
    else {
        return "not measured: the workload's processes could not be read".to_string();
    };
    let copies = footprint as f64 / spec.size_bytes as f64;
    let how = match spec.variant {
        Variant::Fork => "inherited copy-on-write",
        Variant::Serialize => "sent through pipes",
        Variant::Shared => "in one shared-memory segment",
    };
    let holding = if copies < 1.5 {
        format!("one copy of the {size} ({how}) serves all {} processes", t.readable())
    } else if spec.variant == Variant::Fork {
        // Inherited, then written: what each worker's writes copied, where its pages were read.
        let copied = workers_copied(rows);
        let range = copied.as_deref().and_then(|c| Some((*c.first()?, *c.last()?)));
        match range {
            Some((low, high)) if high > 0 => {
                let each = if human_bytes(low) == human_bytes(high) {
                    human_bytes(low)
                } else {
                    format!("{} to {}", human_bytes(low), human_bytes(high))
                };
                format!(
                    "{copies:.1} copies' worth of the {size}: {how}, then each worker's writes \
                     copied {each} of it, {} in all",
                    human_bytes(footprint)
                )
            }
            _ => format!(
                "{copies:.1} copies' worth of the {size}: {how}, then copied by the workers' \
                 writes, {} in all",
                human_bytes(footprint)
            ),
        }
    } else {
        format!(
            "{copies:.1} copies of the {size} ({how}): every worker holds its own, {} in all",
            human_bytes(footprint)
        )
    };
    let duplicated = match t.dedup_ok() {
        Some(d) if d.total.duplicated > 0 => format!(
            "; {} of it is identical content that could be shared",
            human_bytes(d.total.duplicated)
        ),
        Some(_) => "; nothing is duplicated".to_string(),
        None => String::new(),
    };
    if !monitor {
        return format!("{holding}{duplicated}");
    }
    format!(
        "{holding}; a monitor shows {} ({} the {} really used){duplicated}",
        human_bytes(rss),
        ratio(overcount),
        human_bytes(footprint),
    )
}

/// What each forked worker's writes copied from its parent, lowest first: `None` unless every
/// worker's erosion was read (a root has none to read).
fn workers_copied(rows: &[&ProcessRow]) -> Option<Vec<u64>> {
    let mut copied = Vec::new();
    for row in rows {
        match &row.erosion {
            Some(Ok(e)) => copied.push(e.copied_from_parent),
            Some(Err(crate::model::Unreadable::NotApplicable(_))) => {}
            _ => return None,
        }
    }
    copied.sort_unstable();
    (!copied.is_empty()).then_some(copied)
}

/// What `--exact` and `--dedup` would add, for a report on live processes by a privileged
/// memtree that did not ask for them.
pub fn hints(accounting: &Accounting) -> Option<String> {
    let totals = &accounting.totals;
    if !accounting.privileged || totals.readable() == 0 {
        return None;
    }
    match (&totals.exact, &totals.dedup) {
        (None, _) => Some(
            "With --exact, memtree counts physical pages: the real footprint (not a PSS \
             estimate), what exiting frees and who shares with whom; --dedup also finds \
             identical content held more than once."
                .to_string(),
        ),
        (Some(Ok(_)), None) => Some(
            "With --dedup, memtree also reads the content of the anonymous and shared pages and \
             finds identical copies held more than once (what sharing them could give back)."
                .to_string(),
        ),
        _ => None,
    }
}

/// What the page contents say: duplicated and zero-filled content, and how it was measured.
fn dedup_sentences(accounting: &Accounting) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(dedup) = accounting.totals.dedup_ok() {
        if dedup.total.duplicated > 0 {
            lines.push(format!(
                "{} are identical copies of content held elsewhere in {}: memory that \
                 sharing it (fork, shared memory) or KSM could give back.",
                human_bytes(dedup.total.duplicated),
                // Counted over every tree together: a tree's copy of another tree's content
                // counts here and not in either tree's own figure.
                if accounting.trees.len() > 1 {
                    "the same tree or in another one"
                } else {
                    "the tree"
                }
            ));
        } else {
            lines.push("No content is held twice: nothing is duplicated.".to_string());
        }
        if dedup.method == crate::model::dedup::DedupMethod::ExclusivePages {
            lines.push(
                "Duplicated content was measured without root, from the pages each process alone \
                 maps: copies in pages shared with another process, and the content of processes \
                 memtree may not read, are not counted."
                    .to_string(),
            );
        }
        if dedup.total.zero_filled > 0 {
            lines.push(format!(
                "{} are pages filled with zeros (allocated and cleared, never used).",
                human_bytes(dedup.total.zero_filled)
            ));
        }
    }
    lines
}

/// What the physical pages say: the copies shared by many processes, and what exiting frees.
fn exact_sentences(accounting: &Accounting) -> Vec<String> {
    let Some(exact) = accounting.totals.exact_ok() else { return Vec::new() };
    let mut lines = Vec::new();
    let processes = accounting.totals.readable();
    // The most-shared bucket holding a meaningful share of the footprint.
    if let Some(&(k, bytes)) =
        exact.histogram.iter().rev().find(|(k, bytes)| *k > 1 && *bytes * 10 >= exact.resident)
    {
        let by =
            if k == processes { format!("all {k} processes") } else { format!("{k} processes") };
        lines.push(if accounting.trees.len() > 1 {
            // Several trees: the bucket holds a copy per tree, each mapped k times.
            format!(
                "{} are physical pages each mapped by {k} processes: a monitor counts every one \
                 of them {k} times.",
                human_bytes(bytes)
            )
        } else {
            format!(
                "{} is one physical copy mapped by {by}: a monitor counts it {k} times.",
                human_bytes(bytes)
            )
        });
    }
    if exact.thp * 10 >= exact.resident && exact.thp > 0 {
        lines.push(format!(
            "{} of it is in transparent huge pages, allocated and shared whole (2 MiB each): \
             touching one byte of one makes all of it resident.",
            human_bytes(exact.thp)
        ));
    }
    lines.push(format!(
        "Exiting would free {} (the pages no process outside {} maps).",
        human_bytes(exact.exclusive),
        if accounting.trees.len() > 1 { "these trees" } else { "the tree" }
    ));
    lines
}

/// The members of a sharing group in words: each with its pid while there are few
/// (`100 fork_cow, 101 fork_cow-w0`), by name and count beyond (`1000 × sleep, 1 × bash`; the
/// four commonest names, then how many more).
pub fn members(tree: &Tree, pids: &[u32]) -> String {
    let name = |pid: u32| tree.processes.iter().find(|p| p.pid == pid).map_or("?", |p| &p.name);
    if pids.len() <= 6 {
        return pids.iter().map(|&p| format!("{p} {}", name(p))).collect::<Vec<_>>().join(", ");
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &pid in pids {
        let n = name(pid);
        match counts.iter_mut().find(|(m, _)| *m == n) {
            Some((_, c)) => *c += 1,
            None => counts.push((n, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut words: Vec<String> = counts.iter().take(4).map(|(n, c)| format!("{c} × {n}")).collect();
    let rest: usize = counts.iter().skip(4).map(|(_, c)| c).sum();
    if rest > 0 {
        words.push(format!("{rest} more"));
    }
    words.join(", ")
}

fn unreadable_sentence(totals: &Totals, privileged: bool) -> Option<String> {
    let count = totals.unreadable_count();
    if count == 0 {
        return None;
    }
    let reasons: Vec<String> =
        totals.unreadable.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    let hint = match (totals.unreadable.contains_key("permission denied"), privileged) {
        (true, false) => " Run memtree as root (or as their user) to include them.",
        (true, true) => {
            " Root is refused too: a container boundary or a security module hides them."
        }
        (false, _) => "",
    };
    Some(format!(
        "{count} {} could not be read ({}); {} memory is not in these sums.{hint}",
        plural(count, "process", "processes"),
        reasons.join(", "),
        plural(count, "its", "their"),
    ))
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::{ProcessSample, Snapshot, Unreadable};
    use crate::model::testing::{self, snapshot};
    use crate::model::{Grouping, account};

    fn process(pid: u32, ppid: u32, rss: u64, pss: u64) -> ProcessSample {
        testing::process(pid, ppid).name("w").figures(rss, pss, pss / 2).build()
    }

    #[test]
    fn a_trees_paragraph_says_how_python_started_its_workers() {
        let server = "from multiprocessing.forkserver import main; main(8, 9)";
        let argv = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let mut processes = vec![
            testing::process(10, 1).name("python3").figures(10, 10, 10).build(),
            testing::process(11, 10).name("python3").figures(10, 10, 10).build(),
            testing::process(12, 11).name("python3").figures(10, 10, 10).build(),
            testing::process(13, 11).name("python3").figures(10, 10, 10).build(),
        ];
        processes[0].cmdline = argv(&["python3", "pool.py"]);
        for p in &mut processes[1..] {
            p.cmdline = argv(&["python3", "-c", server]);
        }
        let accounting = account(&snapshot(processes), &Grouping::Roots(vec![10]));
        let paragraph = tree_paragraph(&accounting.trees[0], None);
        assert!(
            paragraph
                .contains("2 Python workers were started by a fork server: they inherited nothing"),
            "{paragraph}"
        );
    }

    #[test]
    fn workers_that_hold_memory_they_did_not_inherit_are_not_said_to_share_it() {
        let acc = account(&testing::workloads_snapshot(), &Grouping::Roots(vec![100, 200, 300]));
        let mut serialize = acc.trees[1].clone();
        // Each worker received a 32 MiB copy after the fork: its own, none of it copied on write.
        for row in serialize.processes.iter_mut().filter(|p| p.pid != 200) {
            row.figures.as_mut().unwrap().uss = Some((32 << 20) + 4096);
        }
        let words = erosion_sentence(&serialize).unwrap();
        assert!(
            words.contains("Besides, each holds 32 MiB of its own on average that it did not copy"),
            "{words}"
        );
        // Workers that hold nothing else of their own: the inherited pages are the story.
        let words = erosion_sentence(&acc.trees[0]).unwrap();
        assert!(!words.contains("Besides"), "{words}");
    }

    #[test]
    fn shared_tree_is_explained_with_its_numbers() {
        let gib = 1u64 << 30;
        let mut processes: Vec<ProcessSample> =
            (0..5).map(|i| process(10 + i, if i == 0 { 1 } else { 10 }, gib, gib / 5)).collect();
        let denied = testing::process(20, 10).unreadable(Unreadable::PermissionDenied("x".into()));
        processes.push(denied.build());
        let snapshot = Snapshot { privileged: false, ..snapshot(processes) };
        let lines = explain(&account(&snapshot, &Grouping::Roots(vec![10])));
        assert_eq!(
            lines[0],
            "A monitor adding RSS shows 5 GiB for these 5 processes; the tree really uses about \
             1 GiB (estimated from PSS)."
        );
        assert!(lines[1].starts_with("4 GiB of the RSS are the same pages"), "{}", lines[1]);
        assert!(lines[1].ends_with("5.0×."), "{}", lines[1]);
        assert!(lines[2].starts_with("1 process could not be read (1 permission denied)"));
    }

    #[test]
    fn unshared_tree_says_the_sum_is_right() {
        let snapshot = snapshot(vec![process(10, 1, 1000, 1000), process(11, 10, 1000, 1000)]);
        let lines = explain(&account(&snapshot, &Grouping::Roots(vec![10])));
        assert!(lines[1].starts_with("RSS and PSS agree"), "{lines:?}");
    }
}
