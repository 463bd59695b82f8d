#!/usr/bin/env bash
# Prints one line saying whether the PostgreSQL suite runs: against the
# server named by SIPAS_TEST_POSTGRES (a postgres:// URL; default the server
# at 127.0.0.1:5432), or SKIP when no server answers there. The Go tests
# decide the same way (internal/pgtest) and skip silently.
url=${SIPAS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
hostport=$(printf '%s' "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
host=${hostport%:*}
port=${hostport##*:}
if [ "$port" = "$hostport" ] || [ -z "$port" ]; then port=5432; fi
host=${host#[}; host=${host%]}
[ -n "$host" ] || host=127.0.0.1
if command -v pg_isready >/dev/null 2>&1; then
  probe() { pg_isready -q -t 3 -d "$url" >/dev/null 2>&1; }
else
  probe() { timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; }
fi
if probe; then
  echo "PostgreSQL suite: running against $host:$port (SIPAS_TEST_POSTGRES)"
else
  echo "SKIP: PostgreSQL suite not run: no server reachable at $host:$port; set SIPAS_TEST_POSTGRES=postgres://user@host:port/db to run it"
fi
