#!/usr/bin/env python3
"""Print criterion results as a Markdown table of ns per frame.

Usage: scripts/bench-table.py [GROUP] [BURST]
Reads target/criterion/GROUP/**/new/estimates.json (written by `cargo bench`) and divides
the median time of one batch by BURST (default 32) frames.
"""
import json
import pathlib
import sys

group = sys.argv[1] if len(sys.argv) > 1 else "encap"
burst = int(sys.argv[2]) if len(sys.argv) > 2 else 32
root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion" / group
if not root.is_dir():
    sys.exit(f"no criterion results in {root}: run `cargo bench -p vswitch-bench --bench {group}` first")

rows = []
for est in sorted(root.glob("**/new/estimates.json")):
    name = str(est.parent.parent.relative_to(root))
    data = json.loads(est.read_text())
    med = data["median"]
    lo, hi = med["confidence_interval"]["lower_bound"], med["confidence_interval"]["upper_bound"]
    rows.append((name, med["point_estimate"] / burst, lo / burst, hi / burst))

print(f"| benchmark ({burst} frames/batch) | ns/frame (median) | 95% CI | Mframes/s |")
print("|---|---:|---:|---:|")
for name, ns, lo, hi in rows:
    print(f"| `{name}` | {ns:.1f} | {lo:.1f}–{hi:.1f} | {1e3 / ns:.0f} |")
