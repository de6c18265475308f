#!/usr/bin/env python3
"""Test helper for --dedup: holds SIZE MiB of random bytes, the same bytes again at another
offset inside their pages (a new object whose payload starts 48 bytes later), and SIZE MiB of
zero-filled (written, resident) memory. Prints `ready PID` and holds."""
import random
import sys
import time

size = int(sys.argv[1]) << 20
rng = random.Random(7)
data = b"".join(rng.randbytes(1 << 20) for _ in range(size >> 20))
shifted = bytes(48) + data          # the same content, shifted within its pages
zeros = bytearray(size)             # allocated and cleared: resident pages of zeros
print("ready", __import__("os").getpid(), flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 600)
