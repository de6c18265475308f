#!/usr/bin/env python3
"""Test helper: a parent fills SIZE MiB with random bytes, forks WORKERS children that touch
every page of it (read, or write = make their own copy), prints one line

    ready PARENT_PID WORKER_PID...

and holds until killed. Workers die with the parent (PR_SET_PDEATHSIG)."""
import argparse
import ctypes
import mmap
import os
import random
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PAGE = os.sysconf("SC_PAGE_SIZE")


def die_with_parent(parent):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--touch", choices=["read", "write"], default="read")
    ap.add_argument("--hold", type=float, default=600.0)
    ap.add_argument("--thp", action="store_true",
                    help="hold the data in transparent huge pages (madvise), as numpy does")
    ap.add_argument("--split", action="store_true",
                    help="with --thp: each worker mprotects one base page of the first huge "
                         "page, so it maps that huge page by its base pages (the parent still "
                         "maps it whole)")
    args = ap.parse_args()

    rng = random.Random(42)
    # randbytes takes at most 2**31 bits at once: build the buffer from 16 MiB chunks.
    data = b"".join(rng.randbytes(min(16, args.size_mib - i) << 20)
                    for i in range(0, args.size_mib, 16))
    if args.thp:
        # An anonymous mapping advised MADV_HUGEPAGE before it is touched: its aligned 2 MiB
        # parts are faulted in as huge pages. 2 MiB more than needed, so the data is aligned.
        huge = 2 << 20
        region = mmap.mmap(-1, len(data) + huge, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(mmap.MADV_HUGEPAGE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(region))
        offset = -address % huge
        region[offset:offset + len(data)] = data
        data = memoryview(region)[offset:offset + len(data)]
    parent = os.getpid()
    workers = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            die_with_parent(parent)
            if args.split:
                # A protection change inside a huge page splits the worker's PMD mapping into
                # page table entries; the huge page itself stays whole, mapped by both.
                libc = ctypes.CDLL(None, use_errno=True)
                start = ctypes.addressof(ctypes.c_char.from_buffer(region)) + offset
                libc.mprotect(ctypes.c_void_p(start + PAGE), ctypes.c_size_t(PAGE), mmap.PROT_READ)
            if args.touch == "read":
                # One byte of every page: every page is mapped (shared, copy-on-write).
                sum(data[::PAGE])
            else:
                copy = bytearray(data)  # a private copy of identical content
                copy[0] ^= 1
            time.sleep(args.hold)
            os._exit(0)
        workers.append(pid)
    # Let every worker touch its pages before saying ready.
    time.sleep(0.3 + args.size_mib / 1024)
    print("ready", parent, *workers, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(args.hold)


if __name__ == "__main__":
    main()
