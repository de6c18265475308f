//! Two-stage work on every core, first stages first: a pass reads each process's rollup, then
//! its pages (which the rollup says how best to read). Run as one task per process on N cores,
//! the last process is read by one core alone, rollup then pages, while the others wait
//! (9 processes of ~7.5 ms on 2 cores: ~7 ms of one core idle, a sixth of the pass). Here a
//! core always takes a first stage while one is left, so the rollups are all read by the time
//! the pages are, and what the cores can be left waiting for at the end is one process's
//! pages, not its rollup and its pages.
//!
//! No core ever waits on another: a core with nothing to take leaves, and one that has just
//! finished a first stage takes the second stage it left if nobody else has.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// What finds more items, run beside the first stages of the items known: the items, and
/// something else it found.
pub type More<'a, I, X> = Box<dyn FnOnce() -> (Vec<I>, X) + Send + 'a>;

/// What a first stage leaves: a finished result, or what its second stage needs.
pub enum Step<R, M> {
    Done(R),
    Then(M),
}

struct Queues<I, M> {
    firsts: VecDeque<I>,
    seconds: VecDeque<M>,
}

enum Job<I, M> {
    First(I),
    Second(M),
}

/// Runs `first` on every item of `items`, and on every item `more` finds (run on one core
/// beside the first stages of `items`; its other result is handed back), then `second` on what
/// a first stage leaves; results in no particular order.
pub fn two_stage<I: Send, M: Send, R: Send, X: Send>(
    items: Vec<I>,
    more: Option<More<'_, I, X>>,
    first: &(dyn Fn(I) -> Step<R, M> + Sync),
    second: &(dyn Fn(M) -> R + Sync),
) -> (Vec<R>, Option<X>) {
    let queues = Mutex::new(Queues { firsts: VecDeque::from(items), seconds: VecDeque::new() });
    let results = Mutex::new(Vec::new());
    let found = Mutex::new(None);
    let work = || {
        let mut done = Vec::new();
        loop {
            let job = {
                let mut q = lock(&queues);
                match q.firsts.pop_front() {
                    Some(item) => Job::First(item),
                    None => match q.seconds.pop_front() {
                        Some(mid) => Job::Second(mid),
                        None => break,
                    },
                }
            };
            match job {
                Job::First(item) => match first(item) {
                    Step::Done(r) => done.push(r),
                    Step::Then(mid) => lock(&queues).seconds.push_back(mid),
                },
                Job::Second(mid) => done.push(second(mid)),
            }
        }
        lock(&results).extend(done);
    };
    let threads = rayon::current_num_threads().max(1);
    rayon::scope(|s| {
        let helpers = match more {
            Some(more) => {
                let (work, queues, found) = (&work, &queues, &found);
                s.spawn(move |s| {
                    let (items, other) = more();
                    *lock(found) = Some(other);
                    lock(queues).firsts.extend(items);
                    // The cores that found nothing left while this one looked: back to work.
                    for _ in 1..threads {
                        s.spawn(move |_| work());
                    }
                    work();
                });
                threads - 1
            }
            None => threads,
        };
        for _ in 0..helpers {
            s.spawn(|_| work());
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    (results, found.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// A lock that a panic on another core (which the scope passes on anyway) does not poison.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_gets_both_stages_once_and_firsts_go_first() {
        // A second stage starts only once every first stage has been taken: counted as they
        // start, just after they are taken, so the other cores may be one each behind.
        let slack = rayon::current_num_threads() - 1;
        let started = AtomicUsize::new(0);
        let early = AtomicUsize::new(0);
        let first = |i: u32| {
            started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_micros(200));
            if i.is_multiple_of(5) { Step::Done((i, false)) } else { Step::Then(i) }
        };
        let second = |i: u32| {
            if started.load(Ordering::SeqCst) + slack < 40 {
                early.fetch_add(1, Ordering::SeqCst);
            }
            (i, true)
        };
        let (mut results, found) =
            two_stage::<u32, u32, (u32, bool), ()>((0..40).collect(), None, &first, &second);
        assert!(found.is_none());
        assert_eq!(early.load(Ordering::SeqCst), 0, "a second stage ran before the firsts");
        results.sort_unstable();
        let expected: Vec<(u32, bool)> = (0..40).map(|i| (i, i % 5 != 0)).collect();
        assert_eq!(results, expected);
    }

    #[test]
    fn what_more_finds_is_read_too() {
        let first = |i: u32| if i.is_multiple_of(3) { Step::Done(i) } else { Step::Then(i + 1000) };
        let second = |m: u32| m;
        let more: More<u32, &str> = Box::new(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            ((10..200).collect(), "found")
        });
        let (mut results, found) = two_stage((0..10).collect(), Some(more), &first, &second);
        assert_eq!(found, Some("found"));
        results.sort_unstable();
        let mut expected: Vec<u32> =
            (0..200).map(|i| if i % 3 == 0 { i } else { i + 1000 }).collect();
        expected.sort_unstable();
        assert_eq!(results, expected);
    }

    #[test]
    fn without_more_every_item_is_done() {
        let first = |i: u64| if i.is_multiple_of(2) { Step::Done(i) } else { Step::Then(i * 10) };
        let second = |m: u64| m + 1;
        let (mut results, found) =
            two_stage::<u64, u64, u64, ()>((0..1000).collect(), None, &first, &second);
        assert!(found.is_none());
        results.sort_unstable();
        let mut expected: Vec<u64> =
            (0..1000).map(|i| if i % 2 == 0 { i } else { i * 10 + 1 }).collect();
        expected.sort_unstable();
        assert_eq!(results, expected);
    }
}
