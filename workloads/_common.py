"""Shared by the workload programs: options, the data, the task every worker runs, and timing.

Every program builds the same DataFrame (ROWS x COLS float64, pseudo-random from a fixed seed:
neither the zero page nor KSM can hide a copy, and copies rebuilt in different processes are
identical, so memtree reports them as duplicated), starts a multiprocessing.Pool of WORKERS with
the start method asked for (--start-method; the interpreter's default otherwise, said at start),
and gives each worker exactly one task that touches the whole frame and then holds it for HOLD
seconds, so that memtree (or any monitor) can look at the tree while every worker has its data."""
import argparse
import multiprocessing
import os
import platform
import sys
import threading
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
    ap.add_argument("--start-method", choices=["fork", "forkserver", "spawn"], default=None,
                    help="how the Pool starts its workers (default: the interpreter's, "
                         "forkserver on Linux since Python 3.14, fork before)")
    ap.add_argument("--forkserver-preload", action="store_true",
                    help="with forkserver: set_forkserver_preload(['__main__']), asking the "
                         "fork server to import this program before it forks workers")
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


# Set in every worker by pool()'s initializer: the Pool's workers meet here before they hold.
_TOGETHER = None


def _start_worker(together, initializer, initargs):
    global _TOGETHER
    _TOGETHER = together
    if initializer is not None:
        initializer(*initargs)


def touch_and_hold(df, hold):
    """What every task does: read every value (the whole frame is mapped), wait until every
    worker has done so, then hold it. The wait is what makes it one task per worker, all held
    at once: a Pool hands tasks to whichever worker is free, and a worker that started late
    (a spawned interpreter importing pandas on a busy machine) would otherwise find its task
    taken by one that finished early, and hold its data after the others let theirs go."""
    total = float(df.to_numpy(copy=False).sum())
    if _TOGETHER is not None:
        try:
            _TOGETHER.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass  # a worker died or never came: hold anyway, the monitor sees what is there
    time.sleep(hold)
    return os.getpid(), total


def context(args):
    """The multiprocessing context of --start-method (the interpreter's default when not asked),
    said on stdout: the default differs across Python versions and platforms."""
    ctx = multiprocessing.get_context(args.start_method)
    method = ctx.get_start_method()
    how = "asked" if args.start_method else f"Python {platform.python_version()}'s default"
    say(f"start method: {method} ({how})")
    if args.forkserver_preload:
        if method != "forkserver":
            raise SystemExit("--forkserver-preload needs --start-method forkserver")
        ctx.set_forkserver_preload(["__main__"])
    return ctx


def pool(args, initializer=None, initargs=(), ctx=None):
    """A Pool of --workers whose tasks (one per worker) hold their data at the same time."""
    ctx = ctx or context(args)
    together = ctx.Barrier(args.workers)
    return ctx.Pool(args.workers, _start_worker, (together, initializer, initargs))


def say(message):
    print(f"[{os.path.basename(sys.argv[0])} pid {os.getpid()}] {message}", flush=True)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
