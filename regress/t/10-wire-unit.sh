#!/bin/sh
# 10-wire-unit.sh - build and run wire_test, the unit test of the wire
# reader and text renderings that the plugin and the consumer share
# (proto/wire_decode.c, proto/wire_text.c; see regress/unit/wire_test.c).
#
# Needs no server: it runs the decoder on sessions it writes itself, under
# AddressSanitizer and UndefinedBehaviorSanitizer when the compiler has
# them.  Exits non-zero if the build or any check fails.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
unit="$top/regress/unit"

make -s -C "$unit" wire_test
"$unit/wire_test"
