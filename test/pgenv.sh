# test/pgenv.sh -- shared by test/run and demo/run (sourced, not executed).
#
# Installs what is missing (Debian packages), builds genai, and makes a
# private copy of the PostgreSQL installation with genai installed into it
# (the way PostgreSQL's own "make check" uses a tmp_install).  Nothing is
# installed into the system's PostgreSQL, the default cluster on 5432 is
# never touched, and several checkouts can run tests at once.
#
# PostgreSQL refuses to run as root, so servers run as an unprivileged
# user (GENAI_PGUSER, default "postgres").

GENAI_SRC=${GENAI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GENAI_PGVERSION=${GENAI_PGVERSION:-15}
GENAI_PGUSER=${GENAI_PGUSER:-postgres}
GENAI_PACKAGES="postgresql-$GENAI_PGVERSION postgresql-server-dev-$GENAI_PGVERSION
	libcurl4-openssl-dev libipc-run-perl make gcc python3 ca-certificates openssl"
export GENAI_SRC

genai_log() { printf '== %s\n' "$*" >&2; }
genai_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages that are missing ("apt-get update" first, as a
# fresh machine has no package lists).  Extra package names may be passed.
genai_ensure_packages() {
	local missing="" p
	for p in $GENAI_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || genai_die "missing packages:$missing (run as root, or install them)"
	genai_log "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || genai_die "apt-get update failed"
	# the server package would create and start a default cluster: not wanted
	mkdir -p /etc/postgresql-common
	[ -f /etc/postgresql-common/createcluster.conf ] ||
		echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		genai_die "apt-get install failed"
	id "$GENAI_PGUSER" >/dev/null 2>&1 || useradd --system --create-home "$GENAI_PGUSER"
}

genai_pg_config() {
	echo "/usr/lib/postgresql/$GENAI_PGVERSION/bin/pg_config"
}

# Build with warnings as errors.  Extra make arguments are passed through
# (e.g. ASSERTS=1).
genai_build() {
	genai_log "building genai"
	make -C "$GENAI_SRC" -s -j"$(nproc)" PG_CONFIG="$(genai_pg_config)" WERROR=1 "$@" >&2 ||
		genai_die "build failed"
}

# genai_temp_install DIR: a relocatable copy of PostgreSQL in DIR/inst with
# genai installed into it; sets GENAI_BIN to its bin directory.  PostgreSQL
# finds its lib and share directories relative to the postgres binary, so
# the copy serves the freshly built genai and nothing else does.
genai_temp_install() {
	local dir=$1 pgc bindir pkglib share
	pgc=$(genai_pg_config)
	bindir=$($pgc --bindir)
	pkglib=$($pgc --pkglibdir)
	share=$($pgc --sharedir)
	mkdir -p "$dir/inst$bindir" "$dir/inst$pkglib" "$dir/inst$share"
	cp -a "$bindir/." "$dir/inst$bindir/"
	cp -a "$pkglib/." "$dir/inst$pkglib/"
	cp -a "$share/." "$dir/inst$share/"
	make -C "$GENAI_SRC" -s PG_CONFIG="$pgc" WERROR=1 DESTDIR="$dir/inst" install >&2 ||
		genai_die "install into $dir/inst failed"
	GENAI_BIN="$dir/inst$bindir"
	export GENAI_BIN
}

# Run a command as the unprivileged server user, with the temp install first
# in PATH.  When already unprivileged, run it directly.
genai_as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$GENAI_PGUSER" -- env PATH="$GENAI_BIN:$PATH" HOME="${GENAI_WORK:-/tmp}" "$@"
	else
		env PATH="$GENAI_BIN:$PATH" "$@"
	fi
}

# A scratch directory owned by the server user, removed on exit unless
# GENAI_KEEP=1.
genai_workdir() {
	GENAI_WORK=$(mktemp -d "${TMPDIR:-/tmp}/genai-$1.XXXXXX")
	chmod 755 "$GENAI_WORK"
	export GENAI_WORK
	if [ "${GENAI_KEEP:-0}" != 1 ]; then
		trap 'genai_cleanup' EXIT
	fi
}

genai_chown_work() {
	[ "$(id -u)" = 0 ] && chown -R "$GENAI_PGUSER" "$GENAI_WORK"
	return 0
}

# initdb a cluster in $GENAI_WORK/data that listens only on a socket in
# $GENAI_WORK at port $1, with genai preloaded and the benchmark scripts'
# common settings (no parallel query or build, no JIT); then start it.
genai_bench_server() {
	local port=$1 data=$GENAI_WORK/data
	genai_as_pg initdb -D "$data" -A trust -U postgres >/dev/null ||
		genai_die "initdb failed"
	cat >> "$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$GENAI_WORK'
shared_preload_libraries = 'genai'
shared_buffers = 512MB
maintenance_work_mem = 512MB
max_parallel_workers_per_gather = 0
max_parallel_maintenance_workers = 0
jit = off
CONF
	genai_as_pg pg_ctl -D "$data" -l "$GENAI_WORK/server.log" -w start >/dev/null ||
		genai_die "server did not start"
}

genai_cleanup() {
	# stop any server still running out of the work dir, then remove it
	local pid
	for pid in $(find "$GENAI_WORK" -name postmaster.pid 2>/dev/null); do
		genai_as_pg "$GENAI_BIN/pg_ctl" -D "$(dirname "$pid")" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$GENAI_WORK"
}
