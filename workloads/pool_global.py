#!/usr/bin/env python3
"""The seed's own structure: a DataFrame built in the main function and read by the workers
through a module global.

  fork        the workers are forked after the frame exists and see it through the global.
              Nothing is copied: the data pages are shared copy-on-write, and only the few pages
              holding Python object headers (refcounts) become private. A monitor still shows
              every worker with the whole frame in its RSS.
  forkserver  (Python 3.14's default on Linux) and spawn: a worker imports this module anew
              and never runs main(), so the global does not exist there: the task fails with
              NameError, the Pool raises it in the parent, and the program exits with status 1.
              Fixes: ask for fork (--start-method fork), or put the data in shared memory
              (pool_shared_array.py --copy false) — not a module-level frame, which every worker
              would rebuild (pool_module_global.py).

    memtree report -- python3 workloads/pool_global.py --rows 2000000 --workers 4
"""
import sys

import _common as c


def task(_index):
    # DF exists only where main() ran: in the parent, and in workers forked from it.
    return c.touch_and_hold(DF, HOLD)  # noqa: F821


def main():
    global DF, HOLD
    args = c.options(__doc__).parse_args()
    DF, HOLD = c.make_frame(args.rows, args.cols), args.hold
    c.say(f"DataFrame of {c.mib(c.frame_bytes(DF))} built in main(); {args.workers} workers "
          "read it through a global")
    with c.Timer() as t, c.pool(args) as pool:
        try:
            results = pool.map(task, range(args.workers), chunksize=1)
        except NameError as e:
            c.say(f"the workers failed: {e}: they did not inherit main()'s globals (started by "
                  "a fork server or spawned, they imported this module anew)")
            sys.exit(1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")


if __name__ == "__main__":
    main()
