#!/usr/bin/env bash
# Builds the default guest image once into $TOP/build/images and prints
# that directory.  Later runs reuse it unless the agent or the image
# recipe changed since (the manifest records their SHA-256).  Safe to run
# concurrently: builds are serialised by a lock.  Needs root and a built
# tree (make).
#
#   dir=$(tests/guest-image.sh) || exit 77   # then $dir/debian/rootfs.ext4
set -eu
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$TOP/build/images
name=${PRISON_TEST_IMAGE:-debian}

for f in "$TOP/build/prisonctl" "$TOP/build/prison-guest" \
    "$TOP/build/guest-files/customize.sh"; do
	if [ ! -e "$f" ]; then
		echo "guest-image: $f is missing; run make first" >&2
		exit 1
	fi
done
if [ "$(id -u)" != 0 ]; then
	echo "guest-image: building an image needs root" >&2
	exit 1
fi
mkdir -p "$out"
exec 9>"$out/.guest-image.lock"
flock 9

tmp=$(mktemp -d /tmp/prison-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/prison.conf" <<EOC
[paths]
state_dir = $tmp/state
run_dir = $tmp/run
config_dir = $tmp/etc
image_dir = $out
libexec_dir = $TOP/build
EOC

# Stale when a recorded recipe file differs from what make built now.
stale() {
	python3 - "$out/$name/manifest.json" "$TOP/build" <<'PY'
import hashlib, json, os, sys
try:
    m = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(1)
def h(p):
    return hashlib.sha256(open(p, 'rb').read()).hexdigest()
cur = {'prison-guest': os.path.join(sys.argv[2], 'prison-guest')}
d = os.path.join(sys.argv[2], 'guest-files')
for f in os.listdir(d):
    cur[f] = os.path.join(d, f)
rec = m.get('recipe', {})
for k, p in cur.items():
    if rec.get(k) != h(p):
        sys.exit(0)
sys.exit(1)
PY
}

force=
if [ -f "$out/$name/manifest.json" ] && stale; then
	echo "guest-image: agent or recipe changed; rebuilding $name" >&2
	force=--force
fi
"$TOP/build/prisonctl" -c "$tmp/prison.conf" image build "$name" $force >&2
echo "$out"
