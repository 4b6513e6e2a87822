#!/usr/bin/env python3
"""Checks every scorediff #include against the layer order of DESIGN.md §1 and prints the edges it checked.

  cli, python → experiments, api → pipeline → train, samplers, likelihood, metrics, plot
      → objectives, models, process, data → kernels, io → core

A file in src/<m>/ or include/scorediff/<m>/ belongs to module m. It may include its own module and any
module on a lower line. Modules on the same line may include each other only where PEERS allows it (with the
reason); a sampler never includes a model header. tests/ and bench/ sit above everything.

Usage: scripts/check_layers.py [ROOT] [--list]   exit status 1 and one line per violation when any.
"""
import os
import re
import sys

# core (errors, schema, registry, rng) is what every module stands on: the lowest line of its own.
LAYERS = [["core"], ["kernels", "io"], ["objectives", "models", "process", "data"],
          ["train", "samplers", "likelihood", "metrics", "plot"], ["pipeline"], ["experiments", "api"],
          ["cli", "python"]]
# The public headers directly in include/scorediff/: the API (scorediff.hpp, src/api implements it) and its
# exception type, which core's error.hpp builds on.
PUBLIC_HEADERS = {"scorediff.hpp": "api", "error.hpp": "core"}
LEVEL = {m: i for i, line in enumerate(LAYERS) for m in line}
TOP = len(LAYERS)
# Same-line edges that are part of the design.
PEERS = {
    ("objectives", "process"): "losses are defined on the process' noise",
    ("models", "process"): "a model's score needs m(t) and s(t)",
    ("models", "data"): "the analytic score of a Gaussian mixture",
    ("metrics", "train"): "the evaluation classifier is trained with the project's Adam",
    ("plot", "samplers"): "snapshots of a SampleResult",
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def module_of(root, path):
    parts = os.path.relpath(path, root).split(os.sep)
    if parts[0] == "include" and len(parts) == 3:
        return PUBLIC_HEADERS.get(parts[2])
    if parts[0] == "include" and len(parts) >= 3:
        return parts[2]
    if parts[0] == "src" and len(parts) >= 3:
        return parts[1]
    return "top" if parts[0] in ("tests", "bench") else None


def target_module(root, includer, spec):
    for base in (os.path.dirname(includer), os.path.join(root, "include"), os.path.join(root, "src"),
                 os.path.join(root, "bench", "src")):
        candidate = os.path.normpath(os.path.join(base, spec))
        if os.path.isfile(candidate):
            return module_of(root, candidate)
    return None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    listing, checked, violations = "--list" in sys.argv, 0, []
    for top in ("src", "include", "tests", "bench"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.join(folder, name)
                source = module_of(root, path)
                if source is None:
                    continue
                for spec in INCLUDE.findall(open(path, encoding="utf-8").read()):
                    target = target_module(root, path, spec)
                    if target is None or target == "top":
                        continue
                    checked += 1
                    low, high = LEVEL.get(target, -1), TOP if source == "top" else LEVEL.get(source, -1)
                    if source == target or low < high:
                        verdict = "ok"
                    elif low == high and (source, target) in PEERS and not (source, target) == ("samplers", "models"):
                        verdict = "peer: " + PEERS[(source, target)]
                    else:
                        verdict = "VIOLATION"
                        violations.append(f"{os.path.relpath(path, root)}: {source} includes {target} ({spec})")
                    if listing:
                        print(f"{os.path.relpath(path, root)}: {source} -> {target} ({spec}): {verdict}")
    for v in violations:
        print("layer violation:", v)
    print(f"{checked} includes checked, {len(violations)} against the layer order")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
