# Starts the services the tests talk to, each on a free loopback port, in a private
# temporary directory, and stops them again. Sourced by scripts/test.sh:
#   amp_services_start   installs what is missing (Debian packages), starts PostgreSQL
#                        and Redis, exports AMP_TEST_POSTGRES_URL and AMP_TEST_REDIS_URL
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
    if [ -z "${AMP_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        AMP_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
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

amp_services_start() {
    AMP_SERVICES_DIR="$(mktemp -d /tmp/amp-services.XXXXXX)"
    chmod 755 "$AMP_SERVICES_DIR"

    amp_pg_bin >/dev/null || amp_apt_install postgresql
    command -v redis-server >/dev/null || amp_apt_install redis-server
    local pg_bin pg_dir pg_port redis_port
    pg_bin="$(amp_pg_bin)"

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
    export AMP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/amp_test"

    redis_port="$(amp_free_port)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --dir "$AMP_SERVICES_DIR" --pidfile "$AMP_SERVICES_DIR/redis.pid" --logfile "$AMP_SERVICES_DIR/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export AMP_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"
    export AMP_SERVICES_DIR
}

amp_services_stop() {
    [ -n "${AMP_SERVICES_DIR:-}" ] && [ -d "$AMP_SERVICES_DIR" ] || return 0
    local pg_bin
    if pg_bin="$(amp_pg_bin)" && [ -d "$AMP_SERVICES_DIR/pg/data" ]; then
        amp_as_postgres "$pg_bin/pg_ctl" -D "$AMP_SERVICES_DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -f "$AMP_SERVICES_DIR/redis.pid" ]; then
        kill "$(cat "$AMP_SERVICES_DIR/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$AMP_SERVICES_DIR"
    AMP_SERVICES_DIR=
}
