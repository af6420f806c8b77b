# Starts the services the tests talk to, each on a free loopback port, in a private
# temporary directory, and stops them again. Sourced by scripts/test.sh:
#   amp_services_start   installs what is missing (Debian packages, pgvector built from
#                        source, s3s-fs from crates.io), starts PostgreSQL with the `vector`
#                        extension created in its amp_test database, Redis, an S3 server
#                        that checks signatures (s3s-fs) and clamd with a local signature for
#                        the EICAR test string; exports AMP_TEST_POSTGRES_URL, AMP_TEST_PSQL,
#                        AMP_TEST_REDIS_URL, AMP_TEST_S3_{ENDPOINT,ACCESS_KEY,SECRET_KEY,BUCKET},
#                        AMP_TEST_CLAMD (host:port) and AMP_TEST_CLAMD_SOCKET (a Unix socket).
#                        tesseract and poppler (pdftotext, pdftoppm) are installed for OCR.
#   amp_services_stop    stops them and removes their files (safe to call twice)
# Nothing here touches services already running on the machine.

amp_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

amp_apt_install() { # amp_apt_install PACKAGE...
    if [ "$(id -u)" != 0 ]; then
        echo "services.sh: missing packages $*; install them (sudo apt-get install -y $*) and rerun" >&2
        return 1
    fi
    # apt and dpkg chatter on stderr even when all goes well; show it only on failure.
    local log
    if [ -z "${AMP_APT_UPDATED:-}" ]; then
        log="$(DEBIAN_FRONTEND=noninteractive apt-get update -qq 2>&1 >/dev/null)" || { echo "$log" >&2; return 1; }
        AMP_APT_UPDATED=1
    fi
    log="$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" 2>&1 >/dev/null)" ||
        { echo "$log" >&2; return 1; }
}

amp_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    return 1
}

amp_as_postgres() { # runs a command as the postgres user when we are root (initdb refuses root)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The Debian archive URI the system's apt already uses, so the source download goes to the
# same mirror (or snapshot) as every other package.
amp_debian_uri() {
    local f
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -f "$f" ] && awk '$1 == "URIs:" || $1 == "deb" {
                for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp|file):/ && $i !~ /security/) { print $i; found = 1; exit }
            } END { exit !found }' "$f" && return 0
    done
    echo http://deb.debian.org/debian
}

# Makes sure PostgreSQL (the one in $1, as found by amp_pg_bin) has the pgvector extension.
# Debian bookworm ships PostgreSQL 15 but no pgvector package, so pgvector 0.8 is built from
# trixie's source package; 0.8 is the first with iterative index scans, which keep recall
# when searches are filtered per user. The source list lives in a private apt state so the
# system's apt never sees trixie. Does nothing when the extension is already installed.
amp_pgvector_install() { # amp_pgvector_install PG_BIN
    local pg_config="$1/pg_config" build uri major
    [ -x "$pg_config" ] && [ -f "$("$pg_config" --sharedir)/extension/vector.control" ] && return 0
    # The server headers come with the server-dev package (pgxs itself is in the client one).
    major="$("$pg_config" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')"
    [ -f "$("$pg_config" --includedir-server)/postgres.h" ] || amp_apt_install "postgresql-server-dev-$major" || return 1
    command -v make >/dev/null && command -v gcc >/dev/null || amp_apt_install make gcc || return 1
    build="$(mktemp -d /tmp/amp-pgvector.XXXXXX)" || return 1
    uri="$(amp_debian_uri)"
    mkdir -p "$build/lists/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$build/sources.list"
    # Running the download as root: apt's _apt user cannot write into our private directory.
    local apt_private=(-qq -o Dir::Etc::SourceList="$build/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$build/lists" -o APT::Sandbox::User=root)
    # A subshell for the cd; each step is chained because `set -e` is void under `||`.
    (
        cd "$build" &&
            apt-get "${apt_private[@]}" update >/dev/null &&
            apt-get "${apt_private[@]}" source --download-only pgvector >/dev/null &&
            tar -xf pgvector_*.orig.tar.* &&
            cd pgvector-*/ &&
            # OPTFLAGS="" drops -march=native, so the library runs on any CPU the tests land on.
            { make OPTFLAGS="" PG_CONFIG="$pg_config" >build.log 2>&1 || { cat build.log >&2; false; }; } &&
            make install PG_CONFIG="$pg_config" >/dev/null
    ) || { echo "services.sh: building pgvector failed" >&2; rm -rf "$build"; return 1; }
    rm -rf "$build"
}

# s3s-fs (an S3 server over a directory that checks request signatures, so presigned URLs
# are tested for real) is built once into .amp-cache; 0.14.1 builds with our rustc.
amp_s3s_install() {
    AMP_S3S_BIN="$PWD/.amp-cache/s3s-fs/bin/s3s-fs"
    [ -x "$AMP_S3S_BIN" ] && return 0
    cargo install s3s-fs@0.14.1 --features binary --locked --quiet --root "$PWD/.amp-cache/s3s-fs" >&2 ||
        { echo "services.sh: installing s3s-fs failed" >&2; return 1; }
}

amp_wait_port() { # amp_wait_port PORT: until something listens on 127.0.0.1:PORT (10 s)
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

amp_s3_start() {
    local dir="$AMP_SERVICES_DIR/s3" port
    mkdir -p "$dir/amp-test"
    port="$(amp_free_port)"
    "$AMP_S3S_BIN" --host 127.0.0.1 --port "$port" --access-key amp-test-access --secret-key amp-test-secret-0123456789 \
        "$dir" >"$AMP_SERVICES_DIR/s3s.log" 2>&1 &
    echo $! >"$AMP_SERVICES_DIR/s3s.pid"
    amp_wait_port "$port" || { echo "services.sh: s3s-fs did not start" >&2; cat "$AMP_SERVICES_DIR/s3s.log" >&2; return 1; }
    export AMP_TEST_S3_ENDPOINT="http://127.0.0.1:$port" AMP_TEST_S3_ACCESS_KEY=amp-test-access \
        AMP_TEST_S3_SECRET_KEY=amp-test-secret-0123456789 AMP_TEST_S3_BUCKET=amp-test
}

# clamd with no signatures but one made here for the EICAR test string: enough to prove
# the INSTREAM path, infected and clean, against the real daemon.
amp_clamd_start() {
    local dir="$AMP_SERVICES_DIR/clamd" port
    mkdir -p "$dir/db"
    printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$dir/eicar.txt"
    sigtool --md5 "$dir/eicar.txt" >"$dir/db/eicar.hdb"
    # A hash signature matches only a file that is EICAR alone; a body signature finds it
    # inside larger data too.
    python3 -c 'import sys; print("Eicar-Test-Signature:0:*:" + open(sys.argv[1], "rb").read().hex())' \
        "$dir/eicar.txt" >"$dir/db/eicar.ndb"
    port="$(amp_free_port)"
    cat >"$dir/clamd.conf" <<CONF
DatabaseDirectory $dir/db
TCPSocket $port
TCPAddr 127.0.0.1
LocalSocket $dir/clamd.sock
Foreground yes
LogFile $dir/clamd.log
PidFile $dir/clamd.pid
StreamMaxLength 64M
CONF
    [ "$(id -u)" = 0 ] && echo "User root" >>"$dir/clamd.conf"
    clamd -c "$dir/clamd.conf" >/dev/null 2>&1 &
    echo $! >"$AMP_SERVICES_DIR/clamd.bgpid"
    amp_wait_port "$port" || { echo "services.sh: clamd did not start" >&2; cat "$dir/clamd.log" >&2; return 1; }
    export AMP_TEST_CLAMD="127.0.0.1:$port" AMP_TEST_CLAMD_SOCKET="$dir/clamd.sock"
}

amp_services_start() {
    AMP_SERVICES_DIR="$(mktemp -d /tmp/amp-services.XXXXXX)"
    chmod 755 "$AMP_SERVICES_DIR"

    amp_pg_bin >/dev/null || amp_apt_install postgresql
    command -v redis-server >/dev/null || amp_apt_install redis-server
    command -v clamd >/dev/null && command -v sigtool >/dev/null || amp_apt_install clamav-daemon clamav
    command -v tesseract >/dev/null && [ -d /usr/share/tesseract-ocr ] || amp_apt_install tesseract-ocr tesseract-ocr-eng
    command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null || amp_apt_install poppler-utils
    amp_s3s_install || return 1
    local pg_bin pg_dir pg_port redis_port
    pg_bin="$(amp_pg_bin)"
    amp_pgvector_install "$pg_bin" || return 1

    pg_dir="$AMP_SERVICES_DIR/pg"
    mkdir -p "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    pg_port="$(amp_free_port)"
    amp_as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    # Durability settings are off: test data is thrown away, and fsync costs seconds per run.
    amp_as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -l "$pg_dir/log" \
        -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null
    amp_as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres amp_test
    amp_as_postgres "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d amp_test -v ON_ERROR_STOP=1 \
        -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null
    export AMP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/amp_test" AMP_TEST_PSQL="$pg_bin/psql"

    redis_port="$(amp_free_port)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --dir "$AMP_SERVICES_DIR" --pidfile "$AMP_SERVICES_DIR/redis.pid" --logfile "$AMP_SERVICES_DIR/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export AMP_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"
    export AMP_SERVICES_DIR
    amp_s3_start || return 1
    amp_clamd_start || return 1
}

amp_services_stop() {
    [ -n "${AMP_SERVICES_DIR:-}" ] && [ -d "$AMP_SERVICES_DIR" ] || return 0
    local pg_bin
    if pg_bin="$(amp_pg_bin)" && [ -d "$AMP_SERVICES_DIR/pg/data" ]; then
        amp_as_postgres "$pg_bin/pg_ctl" -D "$AMP_SERVICES_DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    local pid
    for pid in redis.pid s3s.pid clamd.bgpid; do
        [ -f "$AMP_SERVICES_DIR/$pid" ] && kill "$(cat "$AMP_SERVICES_DIR/$pid")" 2>/dev/null || true
    done
    rm -rf "$AMP_SERVICES_DIR"
    AMP_SERVICES_DIR=
}
