"""A WSGI app for `gunicorn --preload`: copy-on-write erosion by Python's garbage collector, and
Instagram's gc.freeze() fix.

At import — in the master, before gunicorn forks its workers (--preload) — the app builds
MEMTREE_APP_MIB (default 200) MiB of small Python objects: a list of dicts, each with a list
inside, as an app's caches and config are. The workers inherit them copy-on-write. Each request
allocates container objects and keeps the last of them alive, as a real handler's caches and
sessions do: the collector's thresholds are crossed and now and then a full collection runs. A
full collection walks every tracked object, and writes to each one's header as it goes: every
page of the inherited objects is copied into each worker that collects, although no request ever
changed them.

With MEMTREE_GC_FREEZE=1 the app calls gc.freeze() at the end of its import, in the master: every
object it built moves to the permanent generation, which collections never walk, so the workers
keep sharing them.

    gunicorn --preload -w 2 -b 127.0.0.1:8000 --chdir workloads gunicorn_app:app
    MEMTREE_GC_FREEZE=1 gunicorn --preload -w 2 -b 127.0.0.1:8000 --chdir workloads gunicorn_app:app
    memtree top --pid $(pgrep -o gunicorn)       # COPIED grows with the requests, unless frozen

Drive it with any HTTP client: `while curl -s 127.0.0.1:8000/ >/dev/null; do :; done`.
"""
import collections
import gc
import os

MIB = int(os.environ.get("MEMTREE_APP_MIB", "200"))
FROZEN = os.environ.get("MEMTREE_GC_FREEZE") == "1"

# About 330 bytes an entry (a dict, its list, two ints, a str): MIB MiB of them.
DATA = [{"id": i, "name": f"item-{i}", "tags": [i, i + 1]} for i in range(MIB * 3200)]

if FROZEN:
    gc.freeze()

# What a handler keeps alive between requests (recent sessions, a cache): bounded.
KEPT = collections.deque(maxlen=20)


def app(environ, start_response):
    # A request's own objects: enough, and kept long enough, that young collections promote
    # them and full collections follow every few requests.
    batch = [{"n": n, "seen": [n]} for n in range(20_000)]
    KEPT.append(batch)
    body = (
        f"pid {os.getpid()} frozen {FROZEN} collections {gc.get_stats()[2]['collections']}\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
