#!/usr/bin/env bash
# The validation report's peak memory on a file past Excel's last row, as README gives it.
# Usage (from the repository root): bash benches/report-memory.sh [ROWS]
# Builds the release binary, writes two Customers CSVs of ROWS rows (default 1,071,481) in a
# temporary folder, and prints the peak resident size and time of `plbulk validate` on each:
# one where every row has five bad cells, one where one row in fourteen has one, and the first
# again with --no-report.
set -euo pipefail
ROWS=${1:-1071481}
cargo build --release -q
BIN="$PWD/target/release/plbulk"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$T" "$ROWS" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
head = "Company Name,Email,Phone,Plan,Contract Months,Postcode\n"
with open(f"{d}/bad.csv", "w") as f:
    f.write(head)
    for i in range(n):
        f.write(f"Co {i} Ltd,not-an-email-{i},12,gold,18,XX{i}\n")
with open(f"{d}/some.csv", "w") as f:
    f.write(head)
    for i in range(n):
        plan = "gold" if i % 14 == 0 else "pro"
        f.write(f"Co {i} Ltd,it{i}@co{i}.example,029 2018 {i % 10000:04d},{plan},12,CF10 1EP\n")
PY
measure() {
  local label=$1; shift
  /usr/bin/time -f "$label: peak %M KB, %e s" "$BIN" validate "$@" >/dev/null 2>"$T/time" || true
  tail -1 "$T/time"
}
measure "every row bad, report" "$T/bad.csv" --report "$T/bad.validation.xlsx"
measure "one row in 14 bad, report" "$T/some.csv" --report "$T/some.validation.xlsx"
measure "every row bad, --no-report" "$T/bad.csv" --no-report
