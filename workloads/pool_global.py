#!/usr/bin/env python3
"""A Pool over a module-global DataFrame: the workers are forked after the frame exists and
read it through the global. Nothing is copied: the data pages are shared copy-on-write, and
only the few pages holding Python object headers (refcounts) become private. A monitor still
shows every worker with the whole frame in its RSS.

    memtree report -- python3 workloads/pool_global.py --rows 2000000 --workers 4
"""
import _common as c

DF = None


def task(_index):
    return c.touch_and_hold(DF, ARGS.hold)


if __name__ == "__main__":
    ARGS = c.options(__doc__).parse_args()
    DF = c.make_frame(ARGS.rows, ARGS.cols)
    c.say(f"global DataFrame of {c.mib(c.frame_bytes(DF))}; {ARGS.workers} workers read it "
          "through the global (inherited at fork)")
    with c.Timer() as t, c.pool(ARGS.workers) as pool:
        results = pool.map(task, range(ARGS.workers), chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
