#!/usr/bin/env bash
# Lints the Dockerfile(s) with dockerfile-utils (npm package "dockerfile-utils", a devDependency):
# the validator behind the Docker language server / VS Code's Docker support. Plain JavaScript
# from the npm registry, no install script, no binary download (hadolint's npm wrappers fetch
# its binary from GitHub, which CI cannot reach).
#
# Fails on ANY finding, errors and warnings alike: the tool's own exit status is non-zero for
# errors only, so this reads its JSON output (an array of diagnostics; [] when clean).
#
#   .ci/lint-dockerfile.sh              # ./Dockerfile
#   .ci/lint-dockerfile.sh path/Dockerfile ...
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(Dockerfile)

failed=0
for file in "${files[@]}"; do
  if [ ! -f "$file" ]; then
    echo "lint-dockerfile: $file: no such file" >&2
    failed=1
    continue
  fi
  # stdout only: npm may print warnings on stderr, which must not mix with the JSON.
  json="$(npx --no-install dockerfile-utils lint --json "$file")"
  status=$?
  if ! LINT_FILE="$file" LINT_STATUS="$status" node -e '
    const file = process.env.LINT_FILE;
    let found;
    try {
      found = JSON.parse(require("fs").readFileSync(0, "utf8"));
      if (!Array.isArray(found)) throw new Error("not an array");
    } catch (err) {
      console.error(
        `lint-dockerfile: ${file}: dockerfile-utils gave no JSON report (exit ${process.env.LINT_STATUS}): ` +
          "is the devDependency installed (npm ci)?",
      );
      process.exit(2);
    }
    for (const d of found) {
      const line = d.range.start.line + 1, col = d.range.start.character + 1;
      console.log(`${file}:${line}:${col}: ${d.severity}: ${d.message}`);
    }
    if (found.length > 0) {
      console.log(`lint-dockerfile: ${file}: ${found.length} finding(s)`);
      process.exit(1);
    }
    console.log(`lint-dockerfile: ${file}: no findings`);
  ' <<<"$json"; then
    failed=1
  fi
done
exit "$failed"
