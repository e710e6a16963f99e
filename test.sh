#!/usr/bin/env bash
# Installs what the tests drive, checks formatting, builds, runs every test project and prints one
# closing line: "N passed, N failed, N skipped". Exits non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cd "$root"
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
section() { printf '\n=== %s\n' "$*"; }

# 1. The real peers the tests drive (Debian package for each command).
section "peer tools"
declare -A packages=(
  [qemu-img]=qemu-utils [qemu-io]=qemu-utils [qemu-nbd]=qemu-utils
  [qemu-storage-daemon]=qemu-system-common
  [nbdinfo]=libnbd-bin [nbdcopy]=libnbd-bin [nbdsh]=python3-libnbd
  [nbdkit]=nbdkit [fio]=fio [fusermount3]=fuse3
  [mkfs.ext4]=e2fsprogs [fsck.ext4]=e2fsprogs [mkfs.xfs]=xfsprogs [xfs_repair]=xfsprogs
  [losetup]=mount [flock]=util-linux
)
missing=()
for tool in "${!packages[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${packages[$tool]}")
done
[ -f /usr/lib/python3/dist-packages/nbd.py ] || missing+=(python3-libnbd)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" qemu-block-extra >/dev/null \
      || echo "WARNING: could not install ${missing[*]}; tests that need them will be SKIPPED" >&2
  else
    echo "WARNING: missing ${missing[*]} and cannot install them (need root and apt-get); tests that need them will be SKIPPED" >&2
  fi
else
  echo "all present"
fi

failures=0
# 2. Formatting and code style (the build enforces analyzers; format checks whitespace and style).
section "dotnet format --verify-no-changes"
if ! dotnet format Blockshot.slnx --verify-no-changes; then
  echo "FAILED: formatting differs (run: dotnet format Blockshot.slnx)" >&2
  failures=$((failures + 1))
fi

# 3. Build everything once (Release), then the CLI the launcher runs.
section "build"
if ! dotnet build Blockshot.slnx -c Release -nologo -v quiet; then
  echo "FAILED: build" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
./blockshot --version >/dev/null || failures=$((failures + 1))

# 4. Every test project, one after another, each with a hang guard.
for project in tests/*/*.Tests.csproj; do
  name="$(basename "$project" .csproj)"
  section "$name"
  timeout 1800 dotnet test "$project" -c Release --no-build --nologo \
    --blame-hang-timeout 10m \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
    --results-directory "$results"
  rc=$?
  if [ ! -f "$results/$name.trx" ]; then
    echo "FAILED: $name produced no results (crashed?)" >&2
    failures=$((failures + 1))
  elif [ "$rc" -ne 0 ] && grep -q '<Counters [^>]*failed="0"' "$results/$name.trx"; then
    # A run that hung or whose host crashed can leave a results file with no failed test in it.
    echo "FAILED: $name: the test run was aborted (exit $rc); see the hang dump and sequence file in $results" >&2
    failures=$((failures + 1))
  fi
done

# 5. The benchmark harness's own unit tests.
section "bench harness unit tests"
/usr/bin/python3 -m unittest discover -s bench/tests -q >"$results/bench-tests.log" 2>&1
bench_rc=$?
cat "$results/bench-tests.log" | tail -3

# 6. One closing line.
section "summary"
/usr/bin/python3 - "$results" "$failures" "$bench_rc" <<'PY'
import glob, os, re, sys
import xml.etree.ElementTree as ET
results, extra_failures, bench_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for trx in sorted(glob.glob(os.path.join(results, "*.trx"))):
    tree = ET.parse(trx)
    c = tree.find(".//t:ResultSummary/t:Counters", ns)
    total, executed = int(c.get("total")), int(c.get("executed"))
    p, f = int(c.get("passed")), int(c.get("failed")) + int(c.get("error")) + int(c.get("timeout")) + int(c.get("aborted"))
    passed, failed, skipped = passed + p, failed + f, skipped + (total - executed)
    for r in tree.iterfind(".//t:UnitTestResult", ns):
        outcome = r.get("outcome")
        if outcome == "NotExecuted":
            msg = r.find(".//t:Message", ns)
            print(f"SKIPPED {r.get('testName')}: {msg.text if msg is not None else 'no reason given'}")
        elif outcome not in ("Passed",):
            print(f"FAILED  {r.get('testName')}")
log = open(os.path.join(results, "bench-tests.log")).read()
m = re.search(r"Ran (\d+) tests?", log)
if m:
    n = int(m.group(1))
    s = re.search(r"skipped=(\d+)", log)
    sk = int(s.group(1)) if s else 0
    if bench_rc == 0:
        passed += n - sk
    else:
        f = re.search(r"(?:failures|errors)=(\d+)", log)
        failed += max(1, int(f.group(1)) if f else 1)
        passed += max(0, n - sk - (int(f.group(1)) if f else 1))
    skipped += sk
elif bench_rc != 0:
    failed += 1
failed += extra_failures
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
