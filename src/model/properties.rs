//! Model layer, tests only: properties that hold for any input (proptest), where the unit
//! tests check chosen cases.

use proptest::prelude::*;

use super::accounting::{Grouping, account};
use super::dedup;
use super::exact::{Workspace, exact};
use super::snapshot::{Chunk, ContentRaw, PagesRaw, PfnTable, Unreadable};
use super::testing::{pages, process, snapshot};

const PAGE: u64 = 4096;

/// A tree of 1–6 processes mapping frames 0–127 (some more than once), each frame also mapped
/// `outside[f]` times by processes outside the tree.
fn trees() -> impl Strategy<Value = (Vec<Vec<u64>>, Vec<u32>)> {
    (
        prop::collection::vec(prop::collection::vec(0u64..128, 0..40), 1..6),
        prop::collection::vec(0u32..3, 128),
    )
}

proptest! {
    #[test]
    fn exact_figures_are_consistent(tree in trees()) {
        let (frames, outside) = tree;
        let all: Vec<PagesRaw> = frames.iter().map(|f| pages(f)).collect();
        let mut present = vec![0u64; 2];
        let mut occurrences = [0u32; 128];
        for &pfn in frames.iter().flatten() {
            present[(pfn / 64) as usize] |= 1 << (pfn % 64);
            occurrences[pfn as usize] += 1;
        }
        let mut table = PfnTable::new(present);
        for pfn in 0..128u64 {
            if let Some(i) = table.index(pfn) {
                table.mapcount[i] = occurrences[pfn as usize] + outside[pfn as usize];
            }
        }
        let input: Vec<(u32, &PagesRaw)> =
            all.iter().enumerate().map(|(i, p)| (100 + i as u32, p)).collect();
        let (totals, per) = exact(&input, &table, PAGE, &mut Workspace::default(), true);
        for p in &per {
            prop_assert!(p.uss <= p.pss && p.pss <= p.rss, "{p:?}");
            prop_assert_eq!(p.uss + p.shared_in_tree + p.shared_outside, p.rss);
        }
        let distinct = occurrences.iter().filter(|&&n| n > 0).count() as u64;
        prop_assert_eq!(totals.footprint, distinct * PAGE);
        prop_assert_eq!(totals.histogram.iter().map(|(_, b)| b).sum::<u64>(), totals.resident);
        let shared: u64 = totals.histogram.iter().filter(|(k, _)| *k >= 2).map(|(_, b)| b).sum();
        prop_assert_eq!(totals.groups.iter().map(|g| g.bytes).sum::<u64>(), shared);
        prop_assert!(totals.exclusive <= totals.footprint);
        // Each frame's PSS parts add up to the page where nobody outside maps it.
        let pss: u64 = per.iter().map(|p| p.pss).sum();
        let inside: u64 = (0..128)
            .filter(|&f| occurrences[f] > 0)
            .map(|f| PAGE * u64::from(occurrences[f]) / u64::from(occurrences[f] + outside[f]))
            .sum();
        prop_assert!(pss.abs_diff(inside) <= 2 * frames.len() as u64 + 128, "{pss} vs {inside}");
        prop_assert!(totals.pairs.len() <= 10);
    }

    #[test]
    fn duplicated_never_exceeds_what_was_read(
        contents in prop::collection::vec(prop::collection::vec((0u64..20, 1u32..9000), 0..30), 1..5)
    ) {
        let raws: Vec<ContentRaw> = contents
            .iter()
            .map(|chunks| ContentRaw {
                chunks: chunks.iter().map(|&(hash, len)| (Chunk { hash, len }, 0)).collect(),
                zero_filled: vec![],
                scanned: chunks.iter().map(|&(_, len)| u64::from(len)).sum(),
                unread: 0,
                exclusive_only: None,
            })
            .collect();
        let names = vec!["[anon]".to_string()];
        let input: Vec<(&[String], &ContentRaw)> =
            raws.iter().map(|r| (names.as_slice(), r)).collect();
        let (totals, per) = dedup::account(&input);
        prop_assert!(totals.total.duplicated <= totals.scanned);
        prop_assert_eq!(per.iter().map(|d| d.duplicated).sum::<u64>(), totals.total.duplicated);
        for (d, raw) in per.iter().zip(&raws) {
            prop_assert!(d.duplicated <= raw.scanned);
        }
    }

    #[test]
    fn totals_are_the_sums_over_the_readable_processes(
        figures in prop::collection::vec((0u64..1 << 40, 0u64..100, 0u64..100, any::<bool>()), 1..12)
    ) {
        let processes = figures
            .iter()
            .enumerate()
            .map(|(i, &(rss, pss_share, uss_share, readable))| {
                let pss = rss / 100 * pss_share;
                let uss = pss / 100 * uss_share;
                let parent = if i == 0 { 1 } else { 10 };
                let p = process(10 + i as u32, parent).figures(rss, pss, uss);
                if readable || i == 0 {
                    p.build()
                } else {
                    p.unreadable(Unreadable::PermissionDenied("x".into())).build()
                }
            })
            .collect();
        let acc = account(&snapshot(processes), &Grouping::Roots(vec![10]));
        let readable: Vec<_> = acc.processes().filter_map(|p| p.figures.as_ref().ok()).collect();
        prop_assert_eq!(acc.totals.readable(), readable.len());
        prop_assert_eq!(acc.totals.rss_sum, Some(readable.iter().map(|f| f.rss.unwrap()).sum()));
        prop_assert_eq!(acc.totals.pss_sum, Some(readable.iter().map(|f| f.pss.unwrap()).sum()));
        prop_assert_eq!(acc.totals.uss_sum, Some(readable.iter().map(|f| f.uss.unwrap()).sum()));
        for f in readable {
            prop_assert!(f.uss <= f.pss && f.pss <= f.rss);
        }
    }
}
