#!/usr/bin/env bash
# Side by side: DuckDB SQL (2 threads), PySpark (local[2]),
# `farol batch --format json` and the peers' job alone (`--no-templates`:
# hashtag and class counts, no log templates), run alternately on the same
# generated files, ROUNDS rounds; prints one table (median wall time, peak
# RSS, ratios).
#
#   bench/side_by_side.sh [DATA_DIR] [ROUNDS]
#
# DATA_DIR (default target/bench-data) is filled by bench/generate.py when it
# holds no posts-*.jsonl yet (the Loghub lines come from ../shared/data and
# are research-only: keep DATA_DIR outside the repository or in target/).
# The venv target/bench-venv gets pinned duckdb and pyspark from PyPI;
# PySpark needs Java 17+ on the PATH. FAROL names the binary to time
# (default $CARGO_TARGET_DIR/release/farol, else target/release/farol).
#
# Peak RSS is /usr/bin/time -v's "Maximum resident set size": the largest
# single process of the run (for PySpark the JVM, not the JVM plus Python).
# bench/measure.py also samples the whole process tree, printed alongside.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
data=${1:-$root/target/bench-data}
rounds=${2:-3}
farol=${FAROL:-${CARGO_TARGET_DIR:-$root/target}/release/farol}
venv=$root/target/bench-venv
out=$root/target/bench-out
DUCKDB_VERSION=2.0.0
PYSPARK_VERSION=4.3.0

[ -x "$farol" ] || { echo "no farol binary at $farol (cargo build --release)" >&2; exit 1; }
command -v java >/dev/null || { echo "PySpark needs java on the PATH" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import duckdb, pyspark; assert duckdb.__version__ == '$DUCKDB_VERSION' and pyspark.__version__ == '$PYSPARK_VERSION'" 2>/dev/null; then
  "$venv/bin/pip" install -q "duckdb==$DUCKDB_VERSION" "pyspark==$PYSPARK_VERSION"
fi
if ! ls "$data"/posts-*.jsonl >/dev/null 2>&1; then
  python3 "$here/generate.py" "$data"
fi
mkdir -p "$out"
py=$venv/bin/python
results=$out/results.tsv
: >"$results"

echo "load before: $(uptime)"
du -cb "$data"/posts-*.jsonl "$data"/logs-*.log | tail -1 | awk '{printf "input: %.1f MB\n", $1/1e6}'
for r in $(seq 1 "$rounds"); do
  for tool in duckdb spark farol farol_nt; do
    case $tool in
      duckdb) cmd=("$py" "$here/peers.py" duckdb "$data" "$out/duckdb") ;;
      spark) cmd=("$py" "$here/peers.py" spark "$data" "$out/spark") ;;
      farol) cmd=(sh -c 'exec "$0" batch --format json "$1" >"$2"' "$farol" "$data" "$out/farol.jsonl") ;;
      farol_nt) cmd=(sh -c 'exec "$0" batch --format json --no-templates "$1" >"$2"' "$farol" "$data" "$out/farol_nt.jsonl") ;;
    esac
    # Each tool starts with no dirty pages of the one before to write back.
    sync
    line=$("$py" "$here/measure.py" "$out/$tool.time" -- "${cmd[@]}")
    printf '%s\t%s\t%s\n' "$tool" "$r" "$line" >>"$results"
    echo "round $r $tool: $line"
  done
done
echo "load after: $(uptime)"
"$py" "$here/peers.py" compare "$out" "$out/farol.jsonl"
echo "--no-templates:"
"$py" "$here/peers.py" compare "$out" "$out/farol_nt.jsonl"
"$py" - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, _, wall, rss, tree = line.split("\t")
    rows.setdefault(tool, []).append((float(wall), float(rss), float(tree)))
med = {t: (statistics.median(w for w, _, _ in v), max(r for _, r, _ in v), max(x for _, _, x in v)) for t, v in rows.items()}
fw, fn = med["farol"][0], med["farol_nt"][0]
print()
print("| tool | wall (median) | runs | peak RSS (largest process) | peak RSS (process tree) | wall / farol's | wall / farol's (peers' job) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
names = {"spark": "PySpark local[2]", "duckdb": "DuckDB SQL, 2 threads", "farol": "farol batch --format json (+ templates)", "farol_nt": "farol batch --format json --no-templates (the peers' job)"}
for t in ("spark", "duckdb", "farol", "farol_nt"):
    w, r, x = med[t]
    runs = ", ".join(f"{a:.2f}" for a, _, _ in rows[t])
    print(f"| {names[t]} | {w:.2f} s | {runs} | {r:.0f} MiB | {x:.0f} MiB | {w / fw:.2f}× | {w / fn:.2f}× |")
EOF
