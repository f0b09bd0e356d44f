#!/usr/bin/env bash
# Installs PostgreSQL (from Debian's packages, when absent) and starts a throwaway cluster for the
# selfmon-postgres tests: a fresh data directory in a temp folder, listening on a Unix socket in that
# folder and on a loopback port only. Writes SELFMON_TEST_PG_URL=... to "$CI_ENV_OUT" (when set) and
# exits 0 only when the server answers a query.
#
# Also writes SELFMON_CI_PG_STOP=<dir>/stop.sh: a script that stops the server and removes its
# directory (`.ci/run` runs it when it exits, so no cluster outlives the run).
#
# Usable by hand too: `bash .ci/install-postgres.sh` prints the URL; stop the server and remove
# its directory with `bash <dir>/stop.sh` (the directory is printed).
#
# initdb refuses to run as root, so the cluster belongs to the `postgres` system user (created by
# the Debian package; created here when missing).
set -euo pipefail

find_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            echo "$dir"
        fi
    done | sort -V | tail -n 1
}

bindir="$(find_bindir || true)"
if [[ -z "$bindir" ]]; then
    echo "install-postgres: no PostgreSQL server found; installing from Debian's packages"
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends postgresql postgresql-client
    bindir="$(find_bindir || true)"
fi
if [[ -z "$bindir" ]]; then
    echo "install-postgres: PostgreSQL server binaries still missing after install" >&2
    exit 1
fi
echo "install-postgres: using $bindir"

run_as=()
owner="$(id -un)"
if [[ "$(id -u)" -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --create-home --shell /bin/bash postgres
    fi
    owner=postgres
    run_as=(runuser -u postgres --)
fi

# The directory must be reachable by the owner: a fresh mktemp dir is 0700 and root's.
base="$(mktemp -d /tmp/selfmon-pg.XXXXXX)"
chmod 0755 "$base"
chown "$owner" "$base"
data="$base/data"

"${run_as[@]}" "$bindir/initdb" -D "$data" -U selfmon --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$base/initdb.log" 2>&1 || {
    cat "$base/initdb.log" >&2
    exit 1
}

# TLS: a throwaway CA and a server certificate for 127.0.0.1/localhost, so the TLS test (feature
# `tls`) verifies a real handshake; plain-text clients are unaffected. Skipped without openssl.
ssl_opts=""
if command -v openssl >/dev/null 2>&1 && (
    cd "$base" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=selfmon test CA" \
            -keyout ca.key -out ca.crt &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
            -extfile server.ext -out server.crt
) >"$base/openssl.log" 2>&1; then
    chmod 0600 "$base/server.key"
    chown "$owner" "$base/server.key" "$base/server.crt"
    ssl_opts="-c ssl=on -c ssl_cert_file=$base/server.crt -c ssl_key_file=$base/server.key"
fi

# A free loopback port: ask the kernel, then let the server take it.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)"

# Tests run in parallel and each opens a few connections; fsync off: a throwaway cluster.
"${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$base -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off $ssl_opts" \
    >/dev/null || {
    cat "$base/server.log" >&2
    exit 1
}

url="postgres://selfmon@127.0.0.1:$port/postgres"
for _ in $(seq 1 50); do
    if "$bindir/psql" "$url" -Atc 'SELECT 1' 2>/dev/null | grep -qx 1; then
        echo "install-postgres: server answers at $url (data in $data)"
        cat >"$base/stop.sh" <<EOF
#!/usr/bin/env bash
# Stops the throwaway cluster in $base and removes the directory.
${run_as[*]} "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
rm -rf "$base"
EOF
        if [[ -n "${CI_ENV_OUT:-}" ]]; then
            echo "SELFMON_TEST_PG_URL=$url" >>"$CI_ENV_OUT"
            echo "SELFMON_CI_PG_STOP=$base/stop.sh" >>"$CI_ENV_OUT"
            if [[ -n "$ssl_opts" ]]; then
                echo "SELFMON_TEST_PG_TLS_ROOT_CERT=$base/ca.crt" >>"$CI_ENV_OUT"
            fi
        fi
        exit 0
    fi
    sleep 0.2
done
echo "install-postgres: the server did not answer at $url" >&2
cat "$base/server.log" >&2
exit 1
