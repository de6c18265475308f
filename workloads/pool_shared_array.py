#!/usr/bin/env python3
"""The data in a multiprocessing.Array (shared memory), handed to the workers through the Pool
initializer; each worker builds a DataFrame on it.

  --copy default  pd.DataFrame(ndarray): recent pandas (3.x) COPIES the array by default, so
                  every worker silently gets a private copy and the sharing is undone.
  --copy false    pd.DataFrame(ndarray, copy=False): the frame is a view on the shared memory;
                  one copy serves every worker.

Under every start method: the Array goes to the workers with the Pool's initializer arguments
(a shared-memory file, not its content), so fork, forkserver and spawn workers map the same
pages. The fix that works where a global cannot be inherited.

    memtree report -- python3 workloads/pool_shared_array.py --copy default
    memtree report -- python3 workloads/pool_shared_array.py --copy false
"""
import numpy as np
import pandas as pd

import _common as c

DF = None
HOLD = 0.0


def init(shared, rows, cols, copy, hold):
    global DF, HOLD
    HOLD = hold
    array = np.frombuffer(shared, dtype=np.float64).reshape(rows, cols)
    columns = [f"c{i}" for i in range(cols)]
    if copy == "false":
        DF = pd.DataFrame(array, columns=columns, copy=False)
    else:
        DF = pd.DataFrame(array, columns=columns)


def task(_index):
    return c.touch_and_hold(DF, HOLD)


if __name__ == "__main__":
    ap = c.options(__doc__)
    ap.add_argument("--copy", choices=["default", "false"], default="default",
                    help="how each worker builds its DataFrame on the shared array")
    args = ap.parse_args()
    ctx = c.context(args)
    n = args.rows * args.cols
    shared = ctx.Array("d", n, lock=False)
    # Filled in slices: a whole-size temporary would double the parent's memory for a moment.
    flat, rng = np.frombuffer(shared, dtype=np.float64), np.random.default_rng(42)
    for start in range(0, n, 1 << 20):
        flat[start:start + (1 << 20)] = rng.random(min(1 << 20, n - start))
    c.say(f"multiprocessing.Array of {c.mib(n * 8)}; {args.workers} workers build "
          f"pd.DataFrame on it with copy={args.copy}")
    initargs = (shared, args.rows, args.cols, args.copy, args.hold)
    with c.Timer() as t, c.pool(args, init, initargs, ctx) as pool:
        results = pool.map(task, range(args.workers), chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
