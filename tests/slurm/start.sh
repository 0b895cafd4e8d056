#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on localhost (no systemd needed).
#
# Starts, as plain daemons: munged, a private mariadbd (own datadir and
# socket, no networking), slurmdbd, slurmctld and slurmd. Accounting through
# slurmdbd is required: submitit reads job states with `sacct`, and without it
# every job looks UNKNOWN. Packages are installed with apt-get if missing.
#
# Usage:  bash tests/slurm/start.sh        (as root; `make slurm-up`)
#         bash tests/slurm/stop.sh         to stop everything again
# Idempotent: a second run finds the daemons up and exits 0 within a second.
# On failure it exits nonzero with a one-line reason on stderr (tests skip
# with it). Progress goes to stderr, the final status to stdout.
# State, logs and pid files: $DVA_SLURM_DIR (default /var/lib/dva-slurm);
# configs: /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf.
set -euo pipefail

STATE="${DVA_SLURM_DIR:-/var/lib/dva-slurm}"
RUN="$STATE/run"             # pid files (stop.sh stops what these name)
LOG="$STATE/log"
DB="$STATE/mysql"            # mariadb datadir
DBRUN="$STATE/mysqld"        # mariadbd socket, pid file and log
DBSOCK="$DBRUN/mysqld.sock"
CONF_DIR=/etc/slurm          # where the slurm tools look by default
CLUSTER=dva
ACCOUNT=dva
PARTITION=debug
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
T0=$SECONDS

log() { echo "slurm-start: $*" >&2; }
die() { echo "slurm-start: $*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root (starts system daemons)"
cd /   # daemons inherit the working directory: do not pin the caller's

# ---------------------------------------------------------------- packages
have_tools() {
  local c
  for c in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mariadbd mariadb-install-db; do
    command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$c" >/dev/null 2>&1 || return 1
  done
}
export PATH="$PATH:/usr/sbin:/sbin"

if ! have_tools; then
  command -v apt-get >/dev/null 2>&1 || die "slurm is not installed and apt-get is not available"
  export DEBIAN_FRONTEND=noninteractive
  APT=(apt-get -q -o DPkg::Lock::Timeout=120)
  # Keep package scripts from starting the system's own munge/mariadb/slurm
  # services (on machines with an init system): we run private ones.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  log "installing ${PKGS[*]}"
  if ! "${APT[@]}" install -y --no-install-recommends "${PKGS[@]}" >"/tmp/dva-slurm-apt.log" 2>&1; then
    # Usually a machine whose package lists were never fetched, or an install cut short earlier.
    log "apt-get install failed; running apt-get update and retrying"
    dpkg --configure -a >>/tmp/dva-slurm-apt.log 2>&1 || true
    "${APT[@]}" update >>/tmp/dva-slurm-apt.log 2>&1 || die "apt-get update failed (see /tmp/dva-slurm-apt.log)"
    "${APT[@]}" install -y --no-install-recommends "${PKGS[@]}" >>/tmp/dva-slurm-apt.log 2>&1 \
      || die "apt-get install ${PKGS[*]} failed (see /tmp/dva-slurm-apt.log)"
  fi
  [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
  made_policy=0
  have_tools || die "packages installed but slurm/munge/mariadb tools are still missing"
fi

# ---------------------------------------------------------------- helpers
# pid of a daemon we started, if it is still alive (pid file + process name).
alive() {
  local name=$1 pidf="$RUN/$1.pid" pid
  [[ -s "$pidf" ]] || return 1
  pid="$(tr -dc 0-9 <"$pidf")"
  [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
  [[ "$(cat "/proc/$pid/comm")" == "$name"* ]] || return 1
  echo "$pid"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  die "timed out after ${secs}s waiting for $what (logs in $LOG)"
}

# stop_daemon NAME: TERM the daemon from its pid file, KILL after 30 s.
stop_daemon() {
  local pid i
  pid="$(alive "$1")" || { rm -f "$RUN/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    [[ -d "/proc/$pid" ]] || break
    sleep 0.25
  done
  [[ -d "/proc/$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
}

# write_if_changed FILE MODE CONTENT: returns 0 if FILE was (re)written.
write_if_changed() {
  local file=$1 mode=$2 content=$3
  if [[ -f "$file" && "$(cat "$file")" == "$content" ]]; then
    chmod "$mode" "$file"
    return 1
  fi
  install -D -m "$mode" -o root -g root /dev/null "$file.tmp"
  printf '%s\n' "$content" >"$file.tmp"
  mv -f "$file.tmp" "$file"
}

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }
node_ok() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing)$ ]]; }
sacct_ok() { sacct -n -X -o JobID -S now-1minutes >/dev/null 2>&1; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
db_ok() { mariadb-admin --no-defaults --socket="$DBSOCK" -uroot ping >/dev/null 2>&1; }
dbd_ok() { sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1; }

# ---------------------------------------------------------------- configs
NODE="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB="$(free -m | awk '/^Mem:/{print $2}')"
# Leave a margin: slurmd marks the node invalid if RealMemory exceeds what it sees.
REAL_MEM=$((MEM_MB > 2048 ? MEM_MB * 95 / 100 : MEM_MB - 128))

install -d -m 755 "$STATE" "$RUN" "$LOG" "$STATE/ctld" "$STATE/slurmd"

SLURM_CONF="$(cat <<EOF
# Written by tests/slurm/start.sh: single-node cluster on localhost.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here: track job processes by /proc, no task binding, no usage sampling.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# Cores only: counting memory would let a job without --mem take the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Schedule at once (array tasks start in ~2 s instead of 10-15 s). sched_interval:
# a requeued job waits for a full scheduling pass (default every 60 s, or the 30 s tick).
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=0,batch_sched_delay=0,sched_interval=2
# sacct needs slurmdbd; submitit reads job states from sacct.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
# submitit requeues checkpointable jobs (scontrol requeue) on timeout.
JobRequeue=1
# A requeued job may only restart once its old credential expires (default 120 s).
AuthInfo=cred_expire=10
# A node left DOWN by an unclean stop comes back when slurmd registers.
ReturnToService=2
# Enforce time limits promptly: no grace period, short kill wait.
OverTimeLimit=0
KillWait=5
MessageTimeout=10
InactiveLimit=0
MinJobAge=30
# No mailer installed: silence the "MailProg is invalid" error.
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)"

DBD_CONF="$(cat <<EOF
# Written by tests/slurm/start.sh. Talks to a private mariadbd over its socket
# (MYSQL_UNIX_PORT) as root, authenticated by unix_socket: no password.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
)"

slurm_changed=0 dbd_changed=0
write_if_changed "$CONF_DIR/slurm.conf" 644 "$SLURM_CONF" && slurm_changed=1
# slurmdbd refuses a slurmdbd.conf readable by others.
write_if_changed "$CONF_DIR/slurmdbd.conf" 600 "$DBD_CONF" && dbd_changed=1

# Fast path: everything already up with these configs.
if [[ $slurm_changed -eq 0 && $dbd_changed -eq 0 ]] && munge_ok \
  && alive mariadbd >/dev/null && alive slurmdbd >/dev/null \
  && alive slurmctld >/dev/null && alive slurmd >/dev/null && node_ok && sacct_ok; then
  log "already running"
  sinfo
  exit 0
fi

# A changed config needs the daemons reading it restarted.
if [[ $slurm_changed -eq 1 || $dbd_changed -eq 1 ]]; then
  alive slurmd >/dev/null && { log "slurm.conf changed: restarting slurmd"; stop_daemon slurmd; }
  alive slurmctld >/dev/null && { log "config changed: restarting slurmctld"; stop_daemon slurmctld; }
fi
if [[ $dbd_changed -eq 1 ]] && alive slurmdbd >/dev/null; then
  log "slurmdbd.conf changed: restarting slurmdbd"
  stop_daemon slurmdbd
fi

# ---------------------------------------------------------------- munge
if ! munge_ok; then
  # munged refuses to start without its run dir and a key owned by munge.
  install -d -m 755 -o munge -g munge /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    install -d -m 700 -o munge -g munge /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
      runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  # A stale socket/pid from a killed munged makes it refuse to start.
  stop_daemon munged
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  # munged runs as munge and wants its log/pid dir to itself; $RUN links to its pid file.
  install -d -m 700 -o munge -g munge "$STATE/munge"
  runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    </dev/null >>"$LOG/munged.out" 2>&1 || die "munged failed to start (see $STATE/munge/munged.log)"
  ln -sfn ../munge/munged.pid "$RUN/munged.pid"
  wait_for 15 munged munge_ok
fi

# ---------------------------------------------------------------- mariadb
if ! alive mariadbd >/dev/null; then
  if [[ ! -e "$STATE/mysql.initialized" ]]; then
    log "initialising mariadb datadir $DB"
    rm -rf "$DB"
    install -d -m 750 -o mysql -g mysql "$DB"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
    touch "$STATE/mysql.initialized"
  fi
  # mariadbd runs as mysql: socket, pid file and log go to a dir it owns; $RUN links to the pid file.
  install -d -m 755 -o mysql -g mysql "$DBRUN"
  rm -f "$DBRUN/mariadbd.pid"
  log "starting mariadbd"
  # mariadbd does not daemonize: detach it with setsid, all stdio to the log.
  setsid mariadbd --no-defaults --user=mysql --datadir="$DB" --socket="$DBSOCK" \
    --pid-file="$DBRUN/mariadbd.pid" --skip-networking --log-error="$DBRUN/mariadbd.log" \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --skip-log-bin \
    </dev/null >>"$LOG/mariadbd.out" 2>&1 &
  ln -sfn ../mysqld/mariadbd.pid "$RUN/mariadbd.pid"
  wait_for 60 "mariadbd (log: $DBRUN/mariadbd.log)" db_ok
fi

# ---------------------------------------------------------------- slurmdbd
# slurmdbd's MariaDB client library finds the private socket through this.
export MYSQL_UNIX_PORT="$DBSOCK"
if ! alive slurmdbd >/dev/null; then
  log "starting slurmdbd"
  slurmdbd </dev/null >>"$LOG/slurmdbd.out" 2>&1 || die "slurmdbd failed to start (see $LOG/slurmdbd.log)"
fi
wait_for 60 slurmdbd dbd_ok

# slurmctld needs its cluster registered in the database before it starts.
if [[ -z "$(sacctmgr -n -P list cluster "$CLUSTER" format=cluster 2>/dev/null)" ]]; then
  log "registering cluster $CLUSTER"
  sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
fi
if [[ -z "$(sacctmgr -n -P list account "$ACCOUNT" format=account 2>/dev/null)" ]]; then
  sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="dva tests" Organization=dva >/dev/null \
    || die "sacctmgr add account $ACCOUNT failed"
fi
# root (and the sudo caller, if any) may charge jobs to the account.
for u in root ${SUDO_USER:-}; do
  if [[ -z "$(sacctmgr -n -P list assoc user="$u" account="$ACCOUNT" cluster="$CLUSTER" format=user 2>/dev/null)" ]]; then
    sacctmgr -i add user "$u" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null || die "sacctmgr add user $u failed"
  fi
done

# ---------------------------------------------------------------- slurmctld, slurmd
if ! alive slurmctld >/dev/null; then
  log "starting slurmctld"
  slurmctld </dev/null >>"$LOG/slurmctld.out" 2>&1 || die "slurmctld failed to start (see $LOG/slurmctld.log)"
fi
wait_for 60 slurmctld scontrol ping
if ! alive slurmd >/dev/null; then
  log "starting slurmd"
  slurmd -N "$NODE" </dev/null >>"$LOG/slurmd.out" 2>&1 || die "slurmd failed to start (see $LOG/slurmd.log)"
fi

# Wait for slurmd to register; a node left down/drained by an earlier run is put back in service.
for ((i = 0; i < 240; i++)); do
  node_ok && break
  case "$(node_state)" in
    down* | drain* | fail*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.25
done
node_ok || die "node $NODE is not usable after 60 s (state: $(node_state); logs in $LOG)"
wait_for 30 sacct sacct_ok

log "up in $((SECONDS - T0)) s (logs in $LOG)"
sinfo
