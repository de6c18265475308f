#!/usr/bin/env python3
"""Test helper: a Pool of 2 workers started by METHOD (fork, forkserver, spawn) that hold;
prints `ready PID` once both workers run, and holds until killed (with its process group)."""
import multiprocessing as mp
import os
import sys
import time


def hold(_):
    time.sleep(600)


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    pool = ctx.Pool(2)
    pool.map_async(hold, range(2))
    deadline = time.time() + 30
    while len(mp.active_children()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    # The workers have started their interpreters (spawn) and taken their task.
    time.sleep(1.0)
    print("ready", os.getpid(), flush=True)
    time.sleep(600)
