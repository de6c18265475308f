#!/usr/bin/env python3
"""Test helper: maps COUNT small anonymous regions with alternating protections (so the kernel
cannot merge neighbours), touches every other one, prints `ready PID` and holds."""
import mmap
import sys
import time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
hold = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
regions = []
for i in range(count):
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if i % 2 == 0 else 0)
    region = mmap.mmap(-1, mmap.PAGESIZE, prot=prot)
    if i % 2 == 0:
        region[0] = 1
    regions.append(region)
print("ready", __import__("os").getpid(), flush=True)
time.sleep(hold)
