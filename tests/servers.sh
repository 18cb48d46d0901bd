#!/usr/bin/env bash
# Brings up the servers the test suite needs, then runs the command it is given.
#
#   bash tests/servers.sh [COMMAND [ARGS...]]     (make test: bash tests/servers.sh .venv/bin/pytest -q)
#
# The suite needs, on this machine:
#   - PostgreSQL on 127.0.0.1:5432 with a role and database sp_test (password sp_test), and two
#     login roles with nothing granted, sp_test_app and sp_test_report (password = name): the
#     serving and the read-only role of docs/deployment.md, to which the tests grant rights on
#     their own schemas (sp_test may not create roles);
#   - RabbitMQ on 127.0.0.1:5672 whose guest user may use the virtual host BF;
#   - Debian's headless Chromium: /usr/bin/chromium and /usr/bin/chromedriver;
#   - Debian's xmlsec1 command (/usr/bin/xmlsec1): the independent peer of the AS4 signature tests.
# A test that needs one of them fails without it; it is never skipped.
#
# As root on Debian, whatever is missing is installed (apt-get) and started, and the role, the
# database and the vhost are created. Every step looks first, so a second run changes nothing and
# takes a few seconds. As anybody else (or without apt-get) nothing is changed: one line per
# missing server says what to run as root, and the command runs anyway, so the tests that need that
# server fail and say why.
#
# SP_TEST_POSTGRES_URL or SP_TEST_AMQP_URL set by the caller means "use my own server": that server
# is left alone. Otherwise they are exported with the URLs of the local servers set up here.
# Without a COMMAND the script only sets up (as root) or reports (otherwise), and exits.
set -euo pipefail

# service, rabbitmqctl and rabbitmq-server live in sbin, which a non-login shell may not have.
export PATH="$PATH:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

PG_PORT=5432
# The same database twice: for psql (libpq) and for the tests (SQLAlchemy with psycopg).
PG_LIBPQ_URL="postgresql://sp_test:sp_test@127.0.0.1:$PG_PORT/sp_test"
PG_TEST_URL="postgresql+psycopg://sp_test:sp_test@127.0.0.1:$PG_PORT/sp_test"
AMQP_PORT=5672
AMQP_TEST_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/"
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
XMLSEC1=/usr/bin/xmlsec1
SETUP="bash tests/servers.sh"

# One line on stderr, so it stands out in front of pytest's output.
say() { echo "make test: $*" >&2; }

# wait_for SECONDS COMMAND...: true as soon as COMMAND succeeds, false when time runs out.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq 1 "$seconds"); do
    "$@" && return 0
    sleep 1
  done
  "$@"
}

# --- what is there -------------------------------------------------------------------------------

postgres_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
postgres_running() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1; }
# The tests' login works: the server runs and has the role and the database.
postgres_usable() {
  PGCONNECT_TIMEOUT=5 psql -w -Atq "$PG_LIBPQ_URL" -c 'SELECT 1' >/dev/null 2>&1
}
# The least-privileged roles of docs/deployment.md, which the database-role tests log in as.
PG_EXTRA_ROLES="sp_test_app sp_test_report"
postgres_roles_ready() {
  local count
  count=$(PGCONNECT_TIMEOUT=5 psql -w -Atq "$PG_LIBPQ_URL" -c \
    "SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname IN ('sp_test_app', 'sp_test_report')" \
    2>/dev/null) || return 1
  [ "$count" = 2 ]
}

rabbitmq_installed() { command -v rabbitmq-server >/dev/null 2>&1; }
# rabbitmqctl works for root only (it needs the node's Erlang cookie); others knock on the port.
rabbitmq_running() {
  if [ "$(id -u)" -eq 0 ]; then
    rabbitmqctl -q status >/dev/null 2>&1
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$AMQP_PORT" 2>/dev/null
  fi
}
# guest has all rights on BF (fails as well when BF does not exist). Root only.
rabbitmq_vhost_ready() {
  rabbitmqctl -q list_permissions -p BF 2>/dev/null | grep -qxF "$(printf 'guest\t.*\t.*\t.*')"
}

chromium_installed() { [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; }
xmlsec1_installed() { [ -x "$XMLSEC1" ]; }

# Only root on Debian installs and starts servers; everyone else gets told how.
can_set_up() { [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

# --- root on Debian: install and start -----------------------------------------------------------

install_missing() {
  local packages=()
  if [ -z "${SP_TEST_POSTGRES_URL:-}" ] && ! postgres_installed; then packages+=(postgresql); fi
  if [ -z "${SP_TEST_AMQP_URL:-}" ] && ! rabbitmq_installed; then packages+=(rabbitmq-server); fi
  if ! chromium_installed; then packages+=(chromium chromium-driver); fi
  if ! xmlsec1_installed; then packages+=(xmlsec1); fi
  if [ "${#packages[@]}" -eq 0 ]; then return 0; fi
  say "installing ${packages[*]}"
  apt-get update
  apt-get install -y "${packages[@]}"
}

start_postgres() {
  if ! postgres_running; then
    # Start the cluster on our port; a fresh machine may have none (then create one).
    local version name
    read -r version name < <(pg_lsclusters -h | awk -v port="$PG_PORT" '$3 == port {print $1, $2; exit}') || true
    if [ -z "${version:-}" ]; then
      version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
      name=main
      say "creating the PostgreSQL $version cluster $name on port $PG_PORT"
      pg_createcluster -p "$PG_PORT" "$version" "$name" >/dev/null
    fi
    say "starting PostgreSQL $version/$name"
    # "already running" (not yet accepting connections) is an error here; the wait below decides.
    pg_ctlcluster "$version" "$name" start || true
    if ! wait_for 60 postgres_running; then
      say "PostgreSQL did not start within 60 s (see /var/log/postgresql/); its tests will fail"
      return 0
    fi
  fi
  if ! postgres_usable; then
    say "creating the PostgreSQL role and database sp_test"
    # As the postgres superuser over the local socket; cd / because postgres may not read our cwd.
    (cd / && su postgres -c "psql -q -p $PG_PORT -v ON_ERROR_STOP=1") <<'SQL'
SELECT 'CREATE ROLE sp_test LOGIN PASSWORD ''sp_test'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sp_test')\gexec
SELECT 'CREATE DATABASE sp_test OWNER sp_test'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sp_test')\gexec
SQL
  fi
  if postgres_roles_ready; then return 0; fi
  say "creating the PostgreSQL roles $PG_EXTRA_ROLES"
  local role
  for role in $PG_EXTRA_ROLES; do
    # The role names are ours (no quoting needed); each one's password is its name.
    echo "SELECT 'CREATE ROLE $role LOGIN PASSWORD ''$role''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')\\gexec" |
      (cd / && su postgres -c "psql -q -p $PG_PORT -v ON_ERROR_STOP=1")
  done
}

start_rabbitmq() {
  if ! rabbitmq_running; then
    say "starting RabbitMQ"
    # Where policy-rc.d refuses the service (containers), start the node directly.
    service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! wait_for 60 rabbitmq_running; then
      say "RabbitMQ did not start within 60 s (see /var/log/rabbitmq/); its tests will fail"
      return 0
    fi
    # The node answers before its applications (the AMQP listener among them) are up.
    rabbitmqctl -q await_startup
  fi
  if rabbitmq_vhost_ready; then return 0; fi
  say "creating the RabbitMQ virtual host BF for guest"
  rabbitmqctl -q list_vhosts name | grep -qx BF || rabbitmqctl -q add_vhost BF
  rabbitmqctl -q set_permissions -p BF guest '.*' '.*' '.*'
}

# --- anybody else: one line per missing server ---------------------------------------------------

report_postgres() {
  if postgres_usable; then
    if ! postgres_roles_ready; then
      say "PostgreSQL on 127.0.0.1:$PG_PORT lacks the login roles $PG_EXTRA_ROLES (password = name); as root: $SETUP"
    fi
    return 0
  fi
  if postgres_running; then
    say "PostgreSQL on 127.0.0.1:$PG_PORT has no role/database sp_test (password sp_test); as root: $SETUP"
  elif postgres_installed; then
    say "PostgreSQL is not running on 127.0.0.1:$PG_PORT; as root: $SETUP (starts it, creates role and database sp_test)"
  else
    say "PostgreSQL is not installed; as root: apt-get install -y postgresql && $SETUP"
  fi
}

report_rabbitmq() {
  # Whether guest may use BF is only known to root; without it the AMQP tests say so themselves.
  if rabbitmq_running; then
    # Debian's rabbitmqctl refuses everyone but root and rabbitmq, and one AMQP test needs it.
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
      say "rabbitmqctl does not work for $(id -un) (only root and rabbitmq may run it), so the AMQP test that closes a connection with it fails; as root: make test"
    fi
    return 0
  fi
  if rabbitmq_installed; then
    say "RabbitMQ is not running on 127.0.0.1:$AMQP_PORT; as root: $SETUP (starts it, adds vhost BF)"
  else
    say "RabbitMQ is not installed; as root: apt-get install -y rabbitmq-server && $SETUP"
  fi
}

report_chromium() {
  if chromium_installed; then return 0; fi
  say "Chromium is not installed ($CHROMIUM, $CHROMEDRIVER); as root: apt-get install -y chromium chromium-driver"
}

report_xmlsec1() {
  if xmlsec1_installed; then return 0; fi
  say "xmlsec1 is not installed ($XMLSEC1); as root: apt-get install -y xmlsec1"
}

# --- main ------------------------------------------------------------------------------------------

if can_set_up; then
  install_missing
  if [ -z "${SP_TEST_POSTGRES_URL:-}" ]; then start_postgres; fi
  if [ -z "${SP_TEST_AMQP_URL:-}" ]; then start_rabbitmq; fi
else
  if [ -z "${SP_TEST_POSTGRES_URL:-}" ]; then report_postgres; fi
  if [ -z "${SP_TEST_AMQP_URL:-}" ]; then report_rabbitmq; fi
  report_chromium
  report_xmlsec1
fi

export SP_TEST_POSTGRES_URL="${SP_TEST_POSTGRES_URL:-$PG_TEST_URL}"
export SP_TEST_AMQP_URL="${SP_TEST_AMQP_URL:-$AMQP_TEST_URL}"
if [ "$#" -eq 0 ]; then exit 0; fi
exec "$@"
