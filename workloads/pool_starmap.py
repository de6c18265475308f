#!/usr/bin/env python3
"""The DataFrame passed as a starmap argument: Pool pickles each task's arguments, so every
worker unpickles its own private copy of the frame. N real copies.

    memtree report -- python3 workloads/pool_starmap.py --rows 2000000 --workers 4
"""
import _common as c


def task(df, _index, hold):
    return c.touch_and_hold(df, hold)


if __name__ == "__main__":
    args = c.options(__doc__).parse_args()
    df = c.make_frame(args.rows, args.cols)
    c.say(f"DataFrame of {c.mib(c.frame_bytes(df))} passed by starmap to {args.workers} "
          "workers (pickled per task)")
    with c.Timer() as t, c.pool(args) as pool:
        results = pool.starmap(task, [(df, i, args.hold) for i in range(args.workers)],
                               chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
