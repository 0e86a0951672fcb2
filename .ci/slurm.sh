#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests of hydra/launcher=slurm (tests/test_slurm.py).
#
#   .ci/slurm.sh start    install slurm-wlm and munge if missing (root, apt-get), write the configuration,
#                         start munged, slurmctld and slurmd on 127.0.0.1 and wait until the node is idle
#   .ci/slurm.sh stop     stop the daemons this script started
#   .ci/slurm.sh status   the node as sinfo sees it
#
# Everything it writes (slurm.conf, state, daemon logs, pid files) lives in $CUGAN_SLURM_DIR (default
# /tmp/cugan-slurm); the SLURM commands find the cluster with SLURM_CONF=$CUGAN_SLURM_DIR/slurm.conf, which the
# tests set themselves when that file exists. No cgroups: processes are tracked through /proc. Running `start`
# again on a running cluster only checks it.
set -euo pipefail

DIR=${CUGAN_SLURM_DIR:-/tmp/cugan-slurm}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
export SLURM_CONF=$CONF

say() { echo "slurm.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

alive() {  # alive PIDFILE: the process named in PIDFILE is running
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
  local missing=()
  command -v munged >/dev/null || missing+=(munge)
  for tool in slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { missing+=(slurm-wlm); break; }
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "${missing[*]} not installed, and installing needs root"
  command -v apt-get >/dev/null || fail "${missing[*]} not installed, and there is no apt-get"
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } \
    || fail "apt-get could not install slurm-wlm and munge"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0  # a munged already answers (ours or the machine's)
  fi
  [ "$(id -u)" = 0 ] || fail "munged is not running, and starting it needs root"
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  touch "$DIR/munged.ours"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "munged did not answer (see /var/log/munge/munged.log)"
}

write_conf() {
  local cpus memory
  cpus=$(nproc)
  memory=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$DIR/state" "$DIR/spool"
  cat >"$CONF" <<EOF
# Written by .ci/slurm.sh: a one-node test cluster on 127.0.0.1.
ClusterName=cugan
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
# a requeued job may start again after this many seconds (SLURM's default: 120)
AuthInfo=cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# look at pending jobs every second (a requeued job waits for the next pass; SLURM's default: 60 s)
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
ReturnToService=2
# sacct (which submitit asks for a job's state) reads the completion log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
# short waits: the test jobs last seconds
KillWait=5
MinJobAge=300
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() {
  sinfo -h -n "$NODE" -o %t 2>/dev/null | head -1
}

start() {
  mkdir -p "$DIR"
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && [ "$(node_state)" = idle ]; then
    say "already running (SLURM_CONF=$CONF)"
    return 0
  fi
  install_packages
  start_munge
  write_conf
  alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" || fail "slurmctld did not start (see $DIR/slurmctld.log)"
  alive "$DIR/slurmd.pid" || slurmd -f "$CONF" || fail "slurmd did not start (see $DIR/slurmd.log)"
  local state=""
  for _ in $(seq 60); do
    state=$(node_state)
    case $state in
      idle) say "node $NODE idle (SLURM_CONF=$CONF)"; return 0 ;;
      down* | drain* | drng*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  fail "node $NODE is '${state:-unknown}', not idle, after 30 s (see $DIR/slurmctld.log and $DIR/slurmd.log)"
}

stop_daemon() {  # stop_daemon PIDFILE NAME
  alive "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "$2 ($pid) did not stop on SIGTERM; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  # jobs still running would keep their processes after slurmd goes
  if alive "$DIR/slurmctld.pid"; then scancel --full --quiet --user "$(id -un)" 2>/dev/null || true; fi
  stop_daemon "$DIR/slurmd.pid" slurmd
  stop_daemon "$DIR/slurmctld.pid" slurmctld
  if [ -e "$DIR/munged.ours" ]; then
    stop_daemon /run/munge/munged.pid munged
    rm -f "$DIR/munged.ours"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) sinfo -N ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
