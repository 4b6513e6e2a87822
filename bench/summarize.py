#!/usr/bin/python3
"""Shared by the bench/compare_*.sh scripts.

  summarize.py run WHO THREADS RESULTS -- CMD...
      Runs CMD, takes the JSON line it prints, adds its peak resident memory ("peak_rss_mb", from
      getrusage of the finished child) and appends "WHO THREADS {json}" to RESULTS.
  summarize.py table RESULTS TITLE PEER KEY=LABEL...
      Prints a markdown table per thread count and metric: every non-peer WHO against PEER, medians of
      the repeats, and their ratio (peak memory: the peer's over ours, so that > 1 means less memory).
      Every WHO that starts with PEER is one setting of the peer: each setting's medians are printed
      first, and the ratios are taken against the peer at its best for that metric (the highest
      median; for peak memory, the lowest), whose setting is named.
  summarize.py profile TRACE [STEPS]
      Reads a chrome trace of LibTorch's profiler (scorediff bench --unet --profile TRACE) and prints each
      operator's self time (its time less that of the operators it called), per step and as a share of
      the whole, largest first.
"""
import collections
import json
import resource
import statistics
import subprocess
import sys


def run(who, threads, results, command):
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    record = json.loads(out.strip().splitlines()[-1])
    # ru_maxrss of the children is the largest of those waited for; each call runs one, in its own process.
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(results, "a") as f:
        f.write(f"{who} {threads} {json.dumps(record)}\n")


def table(results, title, peer, metrics):
    rows = {}
    for line in open(results):
        who, threads, payload = line.split(" ", 2)
        rows.setdefault((who, int(threads)), []).append(json.loads(payload))
    print(title)
    print(f"median of {len(next(iter(rows.values())))} runs each, interleaved\n")
    median = {k: {key: statistics.median(r[key] for r in v) for key, _ in metrics} for k, v in rows.items()}
    peers = sorted({w for w, _ in rows if w.startswith(peer)})
    if len(peers) > 1:
        print("| threads | metric | " + " | ".join(peers) + " |")
        print("|---|---|" + "---|" * len(peers))
        for threads in sorted({t for _, t in rows}):
            for key, label in metrics:
                cells = [f"{median[(w, threads)][key]:,.2f}" if (w, threads) in median else "" for w in peers]
                print(f"| {threads} | {label} | " + " | ".join(cells) + " |")
        print()
    print(f"| threads | metric | scorediff | Python peer | ratio |")
    print(f"|---|---|---|---|---|")
    for threads in sorted({t for _, t in rows}):
        for key, label in metrics:
            lower_is_better = key == "peak_rss_mb"
            candidates = [(median[(w, threads)][key], w) for w in peers if (w, threads) in median]
            theirs, best = min(candidates) if lower_is_better else max(candidates)
            for who in sorted(w for w, t in rows if t == threads and not w.startswith(peer)):
                ours = median[(who, threads)][key]
                name = label if who == "ours" else f"{label} ({who.removeprefix('ours-')})"
                ratio = theirs / ours if lower_is_better else ours / theirs
                setting = f" ({best})" if len(peers) > 1 else ""
                print(f"| {threads} | {name} | {ours:,.2f} | {theirs:,.2f}{setting} | {ratio:.2f}x |")


def profile(trace, steps):
    events = [e for e in json.load(open(trace)) if e.get("ph") == "X"]
    own = collections.defaultdict(float)
    calls = collections.Counter()
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    for thread in by_thread.values():
        # Nested events on one thread: an event's self time is its duration less its direct children's.
        thread.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in thread:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            own[e["name"]] += e["dur"]
            calls[e["name"]] += 1
            if stack:
                own[stack[-1]["name"]] -= e["dur"]
            stack.append(e)
    total = sum(own.values())
    print(f"| operator | calls per step | ms per step | share |")
    print(f"|---|---|---|---|")
    for name, t in sorted(own.items(), key=lambda kv: -kv[1]):
        if t / total < 0.005:
            continue
        print(f"| {name} | {calls[name] / steps:g} | {t / 1000 / steps:.1f} | {100 * t / total:.1f} % |")
    print(f"| all | | {total / 1000 / steps:.1f} | 100 % |")


def main():
    if len(sys.argv) > 5 and sys.argv[1] == "run" and sys.argv[5] == "--":
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[6:])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "profile":
        profile(sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 3)
    elif len(sys.argv) > 5 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4], [tuple(m.split("=", 1)) for m in sys.argv[5:]])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
