#!/usr/bin/env python3
"""A DataFrame built at module level, when the program is imported, and read by the workers
through the global. The code is the same under every start method; the number of copies is not:

  fork        the workers are forked after the parent built it: one copy, shared copy-on-write.
  forkserver  (Python 3.14's default on Linux) the workers are forked from a fork server that
              did not build it, and each imports this module anew: every worker builds its own
              frame — identical (seeded), so memtree reports the copies as duplicated. (CPython
              releases since gh-126631's fix, 2025, preload __main__ into the fork server, which
              then builds one more copy that the workers share; on 3.11 that preload is dead
              code, with or without --forkserver-preload.)
  spawn       fresh interpreters, each importing this module anew: a copy per worker.

    memtree report --dedup -- python3 workloads/pool_module_global.py --start-method forkserver
"""
import _common as c

# At import: in the parent, and again in every worker that imports this module anew (which
# parse the parent's arguments, restored by multiprocessing before the import).
ARGS, _ = c.options(__doc__).parse_known_args()
DF = c.make_frame(ARGS.rows, ARGS.cols)
if __name__ != "__main__":
    c.say(f"built the module-level DataFrame again ({c.mib(c.frame_bytes(DF))}): this "
          "process imported the program anew")


def task(_index):
    return c.touch_and_hold(DF, ARGS.hold)


if __name__ == "__main__":
    ARGS = c.options(__doc__).parse_args()
    c.say(f"module-level DataFrame of {c.mib(c.frame_bytes(DF))}; {ARGS.workers} workers read "
          "it through the global")
    with c.Timer() as t, c.pool(ARGS) as pool:
        results = pool.map(task, range(ARGS.workers), chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
