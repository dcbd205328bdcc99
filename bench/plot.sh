#!/usr/bin/env bash
# Runs ioas_bench_peers once and writes, into bench/results/:
#   peers.json  Google Benchmark's JSON output
#   peers.md    the table (CPU time per automatic map + unmap) with ratios
#   peers.svg   time per operation against live areas, log-log (gnuplot)
# Usage: bash bench/plot.sh [BUILD_DIR]   (needs gnuplot: apt-get install gnuplot-nox)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=bench/results
mkdir -p "$out"
"$build/bench/ioas_bench_peers" --benchmark_min_time=0.2 \
  --benchmark_out="$out/peers.json" --benchmark_out_format=json >/dev/null
python3 - "$out" <<'PY'
import json, sys, collections
out = sys.argv[1]
runs = json.load(open(f"{out}/peers.json"))["benchmarks"]
series = collections.OrderedDict()
names = {"Ioas/impl": "ioas (impl)", "Ioas/model": "ioas model (the spec)",
         "Peer<FirstFitMap>": "first fit over std::map", "Peer<IclSet>": "boost::icl::separate_interval_set",
         "Peer<GTreeWalk>": "GTree walk (QEMU iova-tree)"}
for r in runs:
    if r.get("error_occurred"): sys.exit("benchmark error: " + r["name"])
    key, n = r["name"].rsplit("/", 1)
    ns = r["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[r["time_unit"]]
    series.setdefault(key, {})[int(n)] = ns
sizes = sorted({n for s in series.values() for n in s})
for key, pts in series.items():
    with open(f"{out}/{key.replace('/', '_').replace('<', '_').replace('>', '')}.dat", "w") as f:
        for n in sorted(pts): f.write(f"{n} {pts[n]}\n")
impl = series["Ioas/impl"]
with open(f"{out}/peers.md", "w") as f:
    f.write("| allocator | " + " | ".join(f"{n:,} areas" for n in sizes) + " |\n")
    f.write("|---|" + "---|" * len(sizes) + "\n")
    for key, pts in series.items():
        cells = []
        for n in sizes:
            if n not in pts: cells.append("–"); continue
            t = pts[n]
            txt = f"{t:,.0f} ns" if t < 1e4 else (f"{t/1e3:,.1f} µs" if t < 1e7 else f"{t/1e6:,.1f} ms")
            if key != "Ioas/impl": txt += f" ({t/impl[n]:,.0f}×)"
            cells.append(txt)
        f.write(f"| {names.get(key, key)} | " + " | ".join(cells) + " |\n")
    ctx = json.load(open(f"{out}/peers.json"))["context"]
    f.write(f"\nCPU time per automatic map + unmap of one 4 KiB area (the lowest hole is in the middle), "
            f"one run on {ctx.get('num_cpus')} CPUs at {ctx.get('date')}; (N×) = times slower than ioas (impl).\n")
with open(f"{out}/plot.gp", "w") as f:
    # The key goes below the axes so it never covers the data; titles are
    # noenhanced so that gnuplot prints their underscores instead of making
    # subscripts of what follows them.
    f.write(f'set terminal svg size 800,560 font "sans,12"\nset output "{out}/peers.svg"\n'
            'set logscale xy\nset xlabel "live areas"\nset ylabel "ns per automatic map + unmap (CPU)"\n'
            'set key below\nset grid\nset format y "10^{%L}"\nset format x "10^{%L}"\n')
    plots = [f'"{out}/{k.replace("/", "_").replace("<", "_").replace(">", "")}.dat" with linespoints lw 2 title "{names.get(k, k)}" noenhanced'
             for k in series]
    f.write("plot " + ", \\\n     ".join(plots) + "\n")
PY
gnuplot "$out/plot.gp"
rm -f "$out"/*.dat "$out/plot.gp"
cat "$out/peers.md"
echo "wrote $out/peers.json $out/peers.md $out/peers.svg"
