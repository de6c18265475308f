"""Shared by the workload programs: options, the data, the task every worker runs, and timing.

Every program builds the same DataFrame (ROWS x COLS float64, pseudo-random, so neither the zero
page nor KSM can hide a copy), starts a fork-context multiprocessing.Pool of WORKERS, and gives
each worker exactly one task that touches the whole frame and then holds it for HOLD seconds, so
that memtree (or any monitor) can look at the tree while every worker has its data."""
import argparse
import multiprocessing
import os
import sys
import time

import numpy as np
import pandas as pd


def options(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the DataFrame")
    ap.add_argument("--cols", type=int, default=16, help="float64 columns")
    ap.add_argument("--workers", type=int, default=4, help="Pool processes")
    ap.add_argument("--hold", type=float, default=5.0,
                    help="seconds each worker holds its data before returning")
    return ap


def make_frame(rows, cols):
    rng = np.random.default_rng(42)
    # copy=False: pandas 3 would otherwise copy the fresh array, doubling the build's peak.
    return pd.DataFrame(rng.random((rows, cols)), columns=[f"c{i}" for i in range(cols)],
                        copy=False)


def mib(nbytes):
    return f"{nbytes / 2**20:.1f} MiB"


def frame_bytes(df):
    return int(df.memory_usage(index=False, deep=False).sum())


def touch_and_hold(df, hold):
    """What every task does: read every value (the whole frame is mapped), then hold it."""
    total = float(df.to_numpy(copy=False).sum())
    time.sleep(hold)
    return os.getpid(), total


def pool(workers, initializer=None, initargs=()):
    # Fork explicitly: the default start method differs across Python versions and platforms.
    return multiprocessing.get_context("fork").Pool(workers, initializer, initargs)


def say(message):
    print(f"[{os.path.basename(sys.argv[0])} pid {os.getpid()}] {message}", flush=True)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
