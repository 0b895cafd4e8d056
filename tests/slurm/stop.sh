#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tests/slurm/start.sh.
#
# Cancels queued and running jobs first (so no job processes outlive slurmd
# and their end is recorded), then stops slurmd, slurmctld, slurmdbd, the
# private mariadbd and munged, each from the pid file start.sh keeps in
# $DVA_SLURM_DIR/run (default /var/lib/dva-slurm/run): daemons this script did
# not start are left alone. Idempotent: exits 0 when nothing is running.
# Configs, the accounting database and logs are kept for the next start.
set -euo pipefail

STATE="${DVA_SLURM_DIR:-/var/lib/dva-slurm}"
RUN="$STATE/run"
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "slurm-stop: $*" >&2; }

[[ "$(id -u)" -eq 0 ]] || { echo "slurm-stop: must run as root" >&2; exit 1; }
[[ -d "$RUN" ]] || { log "nothing to stop"; exit 0; }

# pid of a daemon we started, if it is still alive (pid file + process name).
alive() {
  local name=$1 pidf="$RUN/$1.pid" pid
  [[ -s "$pidf" ]] || return 1
  pid="$(tr -dc 0-9 <"$pidf")"
  [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
  [[ "$(cat "/proc/$pid/comm")" == "$name"* ]] || return 1
  echo "$pid"
}

# TERM the daemon, KILL it if it is still there after 30 s.
stop_daemon() {
  local pid i
  pid="$(alive "$1")" || { rm -f "$RUN/$1.pid"; return 0; }
  log "stopping $1 ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    [[ -d "/proc/$pid" ]] || break
    sleep 0.25
  done
  if [[ -d "/proc/$pid" ]]; then
    log "$1 did not exit: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

if alive slurmctld >/dev/null && command -v squeue >/dev/null 2>&1; then
  mapfile -t JOBS < <(squeue -h -o %A 2>/dev/null || true)
  if [[ ${#JOBS[@]} -gt 0 ]]; then
    log "cancelling ${#JOBS[@]} job(s)"
    scancel "${JOBS[@]}" 2>/dev/null || true
    # Give slurmd time to kill the job steps (KillWait=5) and report back.
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(squeue -h -o %A -t PD,R,CG,S 2>/dev/null)" ]] && break
      sleep 0.25
    done
  fi
fi

for d in slurmd slurmctld slurmdbd mariadbd munged; do
  stop_daemon "$d"
done
log "stopped"
