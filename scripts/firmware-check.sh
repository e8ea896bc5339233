#!/usr/bin/env bash
# Build a firmware recipe twice, in two caches, from two working folders,
# with two time zones, umasks and locales (and, when run as root, as two
# users: root, then nobody), and compare the two files byte for byte
# (docs/firmware.md). The sources are fetched once into the first
# cache (or taken from FIRMWARE_SOURCES, a folder holding the tarballs).
#   scripts/firmware-check.sh [RECIPE]      (default amdsev)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipe=${1:-amdsev}
cvmkit=${CVMKIT:-$root/bin/cvmkit}
work=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-firmware-check.XXXXXX")
# FIRMWARE_CHECK_KEEP=1 keeps both builds (and their logs) for a comparison.
if [ -n "${FIRMWARE_CHECK_KEEP:-}" ]; then echo "firmware-check: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work/a/cache" "$work/b/cache" "$work/b/elsewhere"
if [ -n "${FIRMWARE_SOURCES:-}" ]; then
  cp "$FIRMWARE_SOURCES"/*.tar.xz "$work/a/cache/"
fi
start=$(date +%s)
(cd "$work/a" && umask 022 && TZ=UTC LC_ALL=C "$cvmkit" firmware build "$recipe" --cache "$work/a/cache" -o "$work/a/$recipe.fd" >/dev/null)
mid=$(date +%s)
cp "$work/a/cache"/*.tar.xz "$work/b/cache/"
# The second build as another user where we can switch to one.
as=() who=$(id -un)
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  chmod 755 "$work"
  chown -R nobody "$work/b"
  as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --)
  who=nobody
fi
(cd "$work/b/elsewhere" && umask 077 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 LANG=de_DE.UTF-8 HOME="$work/b" "${as[@]}" "$cvmkit" firmware build "$recipe" --cache "$work/b/cache" -o "$work/b/$recipe.fd" >/dev/null)
end=$(date +%s)
a=$(sha256sum <"$work/a/$recipe.fd" | cut -d' ' -f1)
b=$(sha256sum <"$work/b/$recipe.fd" | cut -d' ' -f1)
echo "firmware-check: $recipe build 1 (user $(id -un), TZ=UTC, umask 022): $a in $((mid - start)) s"
echo "firmware-check: $recipe build 2 (user $who, TZ=Pacific/Kiritimati, umask 077, another folder): $b in $((end - mid)) s"
if [ "$a" != "$b" ]; then
  cmp "$work/a/$recipe.fd" "$work/b/$recipe.fd" | head -n 1 >&2 || true
  echo "firmware-check: FAILED: the two builds differ" >&2
  exit 1
fi
echo "firmware-check: OK: identical"
