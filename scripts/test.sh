#!/bin/sh
# Runs every test file under test/ (Node 20's test runner takes no glob patterns; arguments are the
# runner's options, e.g. --test-reporter=spec), after a type check
# of everything and a build of the program (tests start the bundled `pkgforge`, several times faster
# than through tsx; test/helpers/farm.ts falls back to the sources when the build is older than them).
set -e
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit &
check=$!
node scripts/build.mjs
wait "$check"
files=$(find test -name '*.test.ts' | sort)
if [ -z "$files" ]; then echo "no test files found under test/" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=2 "$@" $files
