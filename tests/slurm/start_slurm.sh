#!/usr/bin/env bash
# QKLab tests — a single-node Slurm cluster on localhost for the sweep's Slurm backend test:
# munged + slurmctld + slurmd from Debian's munge and slurm-wlm, with their configuration, state,
# logs and sockets in one private folder. Usage:
#   start_slurm.sh DIR     start (prints SLURM_CONF=DIR/slurm.conf on success; exit 3 if the daemons
#                          cannot run here, e.g. without root or the packages)
#   start_slurm.sh DIR stop
# Clients find the cluster through the SLURM_CONF environment variable.
set -uo pipefail
D="${1:?usage: start_slurm.sh DIR [stop]}"
mkdir -p "$D"
D="$(cd "$D" && pwd)"
if [ "${2:-}" = "stop" ]; then
  for p in slurmd slurmctld munged; do
    [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null
  done
  sleep 1
  exit 0
fi
for b in munged slurmctld slurmd sbatch squeue; do
  command -v "$b" >/dev/null || { echo "start_slurm: $b not installed (Debian: munge, slurm-wlm)"; exit 3; }
done
[ "$(id -u)" -eq 0 ] || { echo "start_slurm: the Slurm daemons need root here"; exit 3; }
host="$(hostname -s)"
cpus="$(nproc)"
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$D/state" "$D/spool" "$D/munge"
chmod 700 "$D/munge"
# A private munge key and socket, so a system munged (if any) is left alone.
[ -f "$D/munge/munge.key" ] || { dd if=/dev/urandom of="$D/munge/munge.key" bs=1 count=1024 2>/dev/null; }
chmod 400 "$D/munge/munge.key"
# Ports from the folder's name hash: two test runs at once do not collide.
base=$(( 20000 + $(echo "$D" | cksum | cut -d' ' -f1) % 20000 ))
cat > "$D/slurm.conf" <<CONF
ClusterName=qklabtest
SlurmctldHost=$host
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
MaxArraySize=10000
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=qklab Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"
munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
  --pid-file="$D/munged.pid" --log-file="$D/munged.log" --seed-file="$D/munge/seed" \
  || { echo "start_slurm: munged failed to start (see $D/munged.log)"; exit 3; }
slurmctld -i -f "$D/slurm.conf" || { echo "start_slurm: slurmctld failed (see $D/slurmctld.log)"; exit 3; }
slurmd -f "$D/slurm.conf" || { echo "start_slurm: slurmd failed (see $D/slurmd.log)"; exit 3; }
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "SLURM_CONF=$D/slurm.conf"
    exit 0
  fi
  sleep 0.5
done
echo "start_slurm: the node did not become idle in 30 s (see $D/slurmctld.log, $D/slurmd.log)"
sinfo 2>&1 | head -3
exit 3
