#!/bin/sh
# Runs every test file under test/ (arguments are the runner's options, e.g. --test-reporter=spec),
# after a type check of everything. The program is built first (tests start the bundled `pkgforge`;
# test/helpers/farm.ts falls back to the sources through tsx when the build is older than them), and
# the tests run from their bundles (scripts/build-tests.mjs), each a few modules instead of hundreds
# loaded through tsx.
set -e
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit &
check=$!
node scripts/build.mjs
files=$(node scripts/build-tests.mjs)
wait "$check"
if [ -z "$files" ]; then echo "no test files found under test/" >&2; exit 1; fi
exec node --test --test-concurrency=2 "$@" $files
