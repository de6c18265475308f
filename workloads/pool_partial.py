#!/usr/bin/env python3
"""The DataFrame passed to the workers with functools.partial: Pool pickles the partial — and
the whole frame inside it — for every task, and each worker unpickles its own private copy.
N real copies, and the pickling takes time: the monitor is right about this one.

    memtree report -- python3 workloads/pool_partial.py --rows 2000000 --workers 4
"""
import functools

import _common as c


def task(df, _index, hold):
    return c.touch_and_hold(df, hold)


if __name__ == "__main__":
    args = c.options(__doc__).parse_args()
    df = c.make_frame(args.rows, args.cols)
    c.say(f"DataFrame of {c.mib(c.frame_bytes(df))} passed by functools.partial to "
          f"{args.workers} workers (pickled per task)")
    with c.Timer() as t, c.pool(args) as pool:
        results = pool.map(functools.partial(task, df, hold=args.hold), range(args.workers),
                           chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
