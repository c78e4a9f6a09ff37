#!/bin/bash
# Fleet worker boot script for Amazon Linux 2023 (arm64), shipped in the worker Lambda layer.
#
# The launch template's user-data (a short stub in template.yaml) downloads this stack's worker
# layer, checks it against the CodeSha256 that GetLayerVersionByArn returns, extracts this file
# and runs it as root:
#
#   BOOTSTRAP_LAYER_ZIP=<the verified layer zip> bash bootstrap.sh \
#     --region <region> --fleet-name <fleet> --layer-arn <layer version ARN> --metric-namespace <ns> \
#     --queue-budget <s> --demand-topic-arn <topic ARN, or '' for none> \
#     --panic-threshold <PanicThreshold> --cpu-target <CpuTarget>
#
# What it does (first boot): dnf install nginx python3 python3-botocore (and unzip awscli-2,
# which the stub made sure of); create the system user fleet-worker; unzip the layer (the worker/
# package files sit at its root) to /opt/fleet-worker/worker/; write hardened systemd units for
# the worker (127.0.0.1:30001) and the metric publisher (which also sends the host demand
# reports when given a topic); configure nginx :30000 ->
# 127.0.0.1:30001; start everything; once /ping answers through nginx, tag the instance
# AutoscalerReady=true.
#
# Idempotent: a marker file records the installed layer ARN. When the script runs again with the
# same ARN (a warm-pool instance started again, a re-run of user-data), it only makes sure the
# services are enabled and running, waits for /ping and re-tags. cloud-init runs user-data on the
# first boot only; the units are enabled, so systemd starts them on every later boot anyway.
#
# Sandbox (tests on a non-AL2023 machine): BOOTSTRAP_ROOT=<dir> installs under <dir>;
# BOOTSTRAP_SANDBOX=1 skips dnf, useradd, systemctl, the readiness wait and IMDS/EC2 tagging;
# BOOTSTRAP_PYTHON, BOOTSTRAP_NGINX_PORT and BOOTSTRAP_WORKER_PORT override /usr/bin/python3,
# 30000 and 30001.
set -euo pipefail

usage() {
  [ $# -eq 0 ] || echo "bootstrap.sh: $*" >&2
  echo "usage: BOOTSTRAP_LAYER_ZIP=<zip> bootstrap.sh --region R --fleet-name F --layer-arn A" \
    "--queue-budget SECONDS --metric-namespace N --demand-topic-arn ARN|'' --panic-threshold X" \
    "--cpu-target PERCENT" >&2
  exit 2
}

region=
fleet_name=
layer_arn=
metric_namespace=
queue_budget=
demand_topic_arn=
demand_topic_given=0
panic_threshold=
cpu_target=

parse_args() {
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
      --region) region=$2 ;;
      --fleet-name) fleet_name=$2 ;;
      --layer-arn) layer_arn=$2 ;;
      --metric-namespace) metric_namespace=$2 ;;
      --queue-budget) queue_budget=$2 ;;
      --demand-topic-arn) demand_topic_arn=$2 demand_topic_given=1 ;;
      --panic-threshold) panic_threshold=$2 ;;
      --cpu-target) cpu_target=$2 ;;
      *) usage ;;
    esac
    shift 2
  done
  if [ -z "$region" ] || [ -z "$fleet_name" ] || [ -z "$layer_arn" ] || [ -z "$metric_namespace" ] \
    || [ -z "$queue_budget" ] || [ "$demand_topic_given" != 1 ] || [ -z "$panic_threshold" ] \
    || [ -z "$cpu_target" ]; then
    usage
  fi
  # These become systemd Environment= values: plain characters only (no space, quote, % or \,
  # which systemd would split, unquote or expand). The publisher checks the numbers' ranges
  # itself (check_publisher_config).
  if [[ ! $demand_topic_arn =~ ^(arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$ ]]; then
    usage "--demand-topic-arn: not an SNS topic ARN: '$demand_topic_arn'"
  fi
  local name value
  for name in panic_threshold cpu_target; do
    value=${!name}
    [[ $value =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || usage "--${name//_/-}: not a number: '$value'"
  done
  # The worker validates the number itself (it refuses to start on a bad one).
  worker_env+=("WORKER_QUEUE_BUDGET=$queue_budget")
  publisher_env=(
    PYTHONPATH=/opt/fleet-worker
    PYTHONDONTWRITEBYTECODE=1
    PYTHONUNBUFFERED=1
    "FLEET_NAME=$fleet_name"
    "CPU_METRIC_NAMESPACE=$metric_namespace"
    CPU_METRIC_NAME=CPUUtilization
    CPU_METRIC_PERIOD_SECONDS=10
    REQUEST_METRIC_NAME=RequestsPerMinute
    "AWS_REGION=$region"
    "WORKER_STATS_URL=http://127.0.0.1:$worker_port/stats"
    # Host demand reports (docs/contracts.md): an empty topic sends none; the panic line is
    # PANIC_THRESHOLD x CPU_TARGET, the template's PanicThreshold and CpuTarget.
    "DEMAND_TOPIC_ARN=$demand_topic_arn"
    "PANIC_THRESHOLD=$panic_threshold"
    "CPU_TARGET=$cpu_target"
  )
}

root=${BOOTSTRAP_ROOT:-}
sandbox=${BOOTSTRAP_SANDBOX:-0}
layer_zip=${BOOTSTRAP_LAYER_ZIP:-}
python=${BOOTSTRAP_PYTHON:-/usr/bin/python3}
nginx_port=${BOOTSTRAP_NGINX_PORT:-30000}
worker_port=${BOOTSTRAP_WORKER_PORT:-30001}

svc_user=fleet-worker
app_dir=$root/opt/fleet-worker
state_dir=$root/var/lib/fleet-worker
marker=$state_dir/installed
unit_dir=$root/etc/systemd/system
nginx_conf_dir=$root/etc/nginx/conf.d
worker_unit=fleet-worker.service
publisher_unit=fleet-metrics.service
# The worker's environment: its unit's Environment= lines, and what nginx's /work timeout is
# derived from (write_nginx_conf asks the worker itself), so the two cannot disagree. The queue
# budget comes from --queue-budget (the template's WorkerQueueBudgetSeconds); the request
# timeout is the worker's default (worker/server.py, Config).
worker_env=(
  PYTHONPATH=/opt/fleet-worker
  PYTHONDONTWRITEBYTECODE=1
  PYTHONUNBUFFERED=1
  WORKER_PROCESSES=0
)
# The metric publisher's environment (its unit's Environment= lines, and what
# check_publisher_config runs it with): set by parse_args from the arguments.
publisher_env=()

log() { printf '%s fleet-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

in_sandbox() { [ "$sandbox" = 1 ]; }

install_packages() {
  if in_sandbox; then log "sandbox: skip dnf"; return 0; fi
  log "installing packages"
  dnf install -y --setopt=install_weak_deps=False nginx python3 python3-botocore unzip awscli-2
}

create_user() {
  if in_sandbox; then log "sandbox: skip useradd"; return 0; fi
  if ! id -u "$svc_user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /sbin/nologin "$svc_user"
  fi
}

install_worker() {
  log "installing worker layer $layer_arn into $app_dir/worker"
  if [ -z "$layer_zip" ] || [ ! -f "$layer_zip" ]; then
    log "BOOTSTRAP_LAYER_ZIP does not name the layer zip (the user-data stub sets it)"
    return 1
  fi
  mkdir -p "$app_dir" "$state_dir"
  rm -rf "$app_dir/worker.new"
  unzip -q -o "$layer_zip" -d "$app_dir/worker.new"
  if [ ! -f "$app_dir/worker.new/__main__.py" ]; then
    log "layer does not contain the worker package at its root"
    return 1
  fi
  # Read-only at run time (ProtectSystem=strict): compile the bytecode now.
  "$python" -m compileall -q "$app_dir/worker.new" >/dev/null || true
  chmod -R u=rwX,go=rX "$app_dir/worker.new"
  rm -rf "$app_dir/worker"
  mv "$app_dir/worker.new" "$app_dir/worker"
}

# Hardening shared by both services: non-root, no privilege gain, read-only system, no devices,
# no capabilities, only IP and Unix sockets, native syscalls of an ordinary service.
hardening() {
  cat <<EOF
User=$svc_user
Group=$svc_user
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
UMask=0077
EOF
}

# The end of every unit: the hardening, then enabled for the normal boot target.
service_tail() {
  hardening
  cat <<EOF

[Install]
WantedBy=multi-user.target
EOF
}

# The publisher's own checks of its configuration, run with its unit's environment (the unit's
# /opt/fleet-worker is $app_dir here): a bad value fails the boot with the publisher's message
# instead of leaving a unit that systemd restarts every 5 s.
check_publisher_config() {
  env -i "${publisher_env[@]}" PYTHONPATH="$app_dir" "$python" -m worker.metrics_publisher --check-config
}

write_units() {
  check_publisher_config
  log "writing systemd units into $unit_dir"
  mkdir -p "$unit_dir"
  {
    cat <<EOF
[Unit]
Description=Fleet worker (GET /work, GET /ping) on 127.0.0.1:$worker_port
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EOF
    printf 'Environment=%s\n' "${worker_env[@]}"
    cat <<EOF
ExecStart=$python -m worker --host 127.0.0.1 --port $worker_port
# SIGTERM to the supervisor only: it drains in-flight requests, then stops its workers.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=45
Restart=always
RestartSec=1
EOF
    service_tail
  } >"$unit_dir/$worker_unit"
  {
    cat <<EOF
[Unit]
Description=Fleet metric publisher ($metric_namespace CPUUtilization, RequestsPerMinute, OfferedLoad, BacklogSeconds, ShedRequests, Fleet=$fleet_name)
After=$worker_unit network-online.target
Wants=$worker_unit network-online.target

[Service]
Type=simple
EOF
    printf 'Environment=%s\n' "${publisher_env[@]}"
    cat <<EOF
ExecStart=$python -m worker.metrics_publisher
Restart=always
RestartSec=5
Nice=5
EOF
    service_tail
  } >"$unit_dir/$publisher_unit"
}

# nginx's proxy_read_timeout for /work, from the installed worker with its unit's environment
# (the unit's /opt/fleet-worker is $app_dir here): >= queue budget + request timeout.
work_read_timeout() {
  local seconds
  seconds=$(env -i "${worker_env[@]}" PYTHONPATH="$app_dir" "$python" -m worker --print-proxy-read-timeout)
  case $seconds in
    '' | *[!0-9]*) log "the worker printed no proxy_read_timeout: '$seconds'"; return 1 ;;
  esac
  printf '%s' "$seconds"
}

write_nginx_conf() {
  local read_timeout
  read_timeout=$(work_read_timeout)
  log "writing nginx config :$nginx_port -> 127.0.0.1:$worker_port (/work read timeout ${read_timeout}s)"
  mkdir -p "$nginx_conf_dir"
  cat >"$nginx_conf_dir/fleet-worker.conf" <<EOF
# Fleet worker: the load balancer's port $nginx_port, proxied to the local worker.
upstream fleet_worker {
    server 127.0.0.1:$worker_port max_fails=0;
}

server {
    listen $nginx_port;
    server_tokens off;

    # The worker's counters are for the local metric publisher only.
    location = /stats {
        return 404;
    }

    location = /ping {
        access_log off;
        proxy_pass http://fleet_worker;
        proxy_connect_timeout 2s;
        proxy_read_timeout 5s;
    }

    # /work: an accepted request waits up to the worker's queue budget, then runs up to its
    # request timeout; the read timeout outlasts both (python -m worker
    # --print-proxy-read-timeout), so the worker's own answer (200, 503 + Retry-After when
    # shed, 504) always reaches the client. A 503 passes through unchanged (no
    # proxy_intercept_errors) and is never retried (proxy_next_upstream off).
    location / {
        proxy_pass http://fleet_worker;
        proxy_next_upstream off;
        proxy_connect_timeout 2s;
        proxy_read_timeout ${read_timeout}s;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
}
EOF
}

start_services() {
  if in_sandbox; then log "sandbox: skip systemctl"; return 0; fi
  nginx -t
  systemctl daemon-reload
  systemctl enable --now "$worker_unit" nginx.service "$publisher_unit"
  systemctl is-active --quiet "$worker_unit" || systemctl restart "$worker_unit"
  systemctl is-active --quiet nginx.service || systemctl restart nginx.service
  systemctl is-active --quiet "$publisher_unit" || systemctl restart "$publisher_unit"
}

wait_ready() {
  if in_sandbox; then log "sandbox: skip readiness wait"; return 0; fi
  local i
  for i in $(seq 1 180); do
    if [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$nginx_port/ping" 2>/dev/null)" = pong ]; then
      log "/ping answers through nginx after $i attempt(s)"
      return 0
    fi
    sleep 1
  done
  log "/ping did not answer through nginx"
  return 1
}

mark_ready() {
  if in_sandbox; then log "sandbox: skip tagging"; return 0; fi
  local token instance_id
  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
  instance_id=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" \
    http://169.254.169.254/latest/meta-data/instance-id)
  aws ec2 create-tags --region "$region" --resources "$instance_id" \
    --tags Key=AutoscalerReady,Value=true
  log "tagged $instance_id AutoscalerReady=true"
}

main() {
  log "worker $layer_arn for fleet $fleet_name in $region"
  mkdir -p "$state_dir"
  exec 9>"$state_dir/.lock"
  flock 9
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$layer_arn" ]; then
    log "worker $layer_arn already installed: only ensuring the services run"
  else
    install_packages
    create_user
    install_worker
    write_units
    write_nginx_conf
    printf '%s' "$layer_arn" >"$marker"
  fi
  start_services
  wait_ready
  mark_ready
}

if [ "${BOOTSTRAP_SOURCE_ONLY:-0}" != 1 ]; then
  parse_args "$@"
  main
fi
