#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the captured fixtures (tests/fixtures/proc).
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures/proc
mkdir -p corpus/{smaps,rollup,proc_files,capture,units,record}
i=0
# The first 4 KiB of each smaps (a 10,000-mapping one is 7 MB: seeds that large slow every run).
for f in "$fixtures"/*/*/smaps; do head -c 4096 "$f" > "corpus/smaps/$((i++))"; done
for f in "$fixtures"/*/*/smaps_rollup; do cp "$f" "corpus/rollup/$((i++))"; done
for f in "$fixtures"/*/*/{stat,status,cmdline}; do [ -f "$f" ] && cp "$f" "corpus/proc_files/$((i++))"; done
for f in "$fixtures"/*/memtree-capture.txt; do cp "$f" "corpus/capture/$((i++))"; done
for s in 256MiB 1G 512k 4096 1.5MiB 500ms 30s 2m 18446744073709551615 -5MiB; do
  printf '%s' "$s" > "corpus/units/$((i++))"
done
for f in ../tests/fixtures/record/*.mtr; do cp "$f" "corpus/record/$((i++))"; done
# …and the payload of each frame of them, for the target's framed half (past the checksums).
python3 - "$i" ../tests/fixtures/record/*.mtr <<'PY'
import struct, sys
i = int(sys.argv[1])
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    at = 26 + struct.unpack_from("<I", data, 18)[0]
    while at + 8 <= len(data):
        n = struct.unpack_from("<I", data, at)[0]
        open(f"corpus/record/{i}", "wb").write(data[at + 8:at + 8 + n])
        i, at = i + 1, at + 8 + n
PY
