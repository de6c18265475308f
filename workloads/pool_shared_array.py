#!/usr/bin/env python3
"""The data in a multiprocessing.Array (shared memory), handed to the workers through the Pool
initializer; each worker builds a DataFrame on it.

  --copy default  pd.DataFrame(ndarray): recent pandas (3.x) COPIES the array by default, so
                  every worker silently gets a private copy and the sharing is undone.
  --copy false    pd.DataFrame(ndarray, copy=False): the frame is a view on the shared memory;
                  one copy serves every worker.

    memtree report -- python3 workloads/pool_shared_array.py --copy default
    memtree report -- python3 workloads/pool_shared_array.py --copy false
"""
import multiprocessing

import numpy as np
import pandas as pd

import _common as c

DF = None


def init(shared, rows, cols, copy):
    global DF
    array = np.frombuffer(shared, dtype=np.float64).reshape(rows, cols)
    columns = [f"c{i}" for i in range(cols)]
    if copy == "false":
        DF = pd.DataFrame(array, columns=columns, copy=False)
    else:
        DF = pd.DataFrame(array, columns=columns)


def task(_index):
    return c.touch_and_hold(DF, ARGS.hold)


if __name__ == "__main__":
    ap = c.options(__doc__)
    ap.add_argument("--copy", choices=["default", "false"], default="default",
                    help="how each worker builds its DataFrame on the shared array")
    ARGS = ap.parse_args()
    n = ARGS.rows * ARGS.cols
    shared = multiprocessing.get_context("fork").Array("d", n, lock=False)
    # Filled in slices: a whole-size temporary would double the parent's memory for a moment.
    flat, rng = np.frombuffer(shared, dtype=np.float64), np.random.default_rng(42)
    for start in range(0, n, 1 << 20):
        flat[start:start + (1 << 20)] = rng.random(min(1 << 20, n - start))
    c.say(f"multiprocessing.Array of {c.mib(n * 8)}; {ARGS.workers} workers build "
          f"pd.DataFrame on it with copy={ARGS.copy}")
    with c.Timer() as t, c.pool(ARGS.workers, init,
                                (shared, ARGS.rows, ARGS.cols, ARGS.copy)) as pool:
        results = pool.map(task, range(ARGS.workers), chunksize=1)
    c.say(f"{len({pid for pid, _ in results})} workers done in {t.seconds:.2f} s")
