#!/bin/sh
# Install the real services the integration tests start themselves:
# mosquitto (MQTT), Prometheus and Alertmanager from Debian packages.
#
# Idempotent; run as root on Debian (bookworm or later). The Debian packaging
# may start the services on 0.0.0.0 (1883, 9090, 9093/9094); the tests start
# their own instances on 127.0.0.1 and free ports, so the packaged services are
# kept from starting during the install and are stopped and disabled after it.
# Prints one line per step.
set -eu

PACKAGES="mosquitto mosquitto-clients prometheus prometheus-alertmanager systemd"
SERVICES="mosquitto prometheus prometheus-alertmanager prometheus-node-exporter"
PORTS="1883 9090 9093 9094 9100"

step() { printf '[install-system-deps] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    step "error: must run as root" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $pkg" ;;
    esac
done
missing=${missing# }

if [ -z "$missing" ]; then
    step "all packages already installed: $PACKAGES"
else
    step "missing packages: $missing"
    # Only refresh the index when it is absent or apt cannot see a package.
    need_update=0
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
        need_update=1
    else
        for pkg in $missing; do
            if ! apt-cache show "$pkg" >/dev/null 2>&1; then
                need_update=1
            fi
        done
    fi
    if [ "$need_update" -eq 1 ]; then
        step "apt-get update"
        apt-get update -q >/dev/null
    else
        step "apt index present, skipping apt-get update"
    fi

    # Keep maintainer scripts from starting the services (invoke-rc.d and
    # deb-systemd-invoke both honour policy-rc.d exit 101). Remove it after,
    # unless one was already there.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
        step "installed temporary /usr/sbin/policy-rc.d (no service starts)"
    fi
    cleanup() {
        if [ "$own_policy" -eq 1 ]; then
            rm -f /usr/sbin/policy-rc.d
            step "removed temporary /usr/sbin/policy-rc.d"
        fi
    }
    trap cleanup EXIT
    trap 'exit 1' INT TERM

    step "apt-get install -y --no-install-recommends $missing"
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        $missing >/dev/null; then
        # A stale index can point at files the mirror no longer has.
        step "install failed, retrying after apt-get update"
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            $missing >/dev/null
    fi
    cleanup
    own_policy=0
    step "installed: $missing"
fi

# Stop and disable whatever the packaging may have started or enabled.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for svc in $SERVICES; do
        if systemctl list-unit-files "$svc.service" >/dev/null 2>&1 \
            && systemctl cat "$svc.service" >/dev/null 2>&1; then
            systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
            step "systemd: stopped and disabled $svc"
        fi
    done
else
    for svc in $SERVICES; do
        if [ -x "/etc/init.d/$svc" ]; then
            # The init scripts act on their own pidfile only, never on other
            # instances (e.g. ones a test run started).
            if "/etc/init.d/$svc" status >/dev/null 2>&1; then
                "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
                state="stopped"
            else
                state="was not running"
            fi
            if command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d "$svc" disable >/dev/null 2>&1 || true
            fi
            step "sysv: $svc $state; disabled at boot"
        fi
    done
fi

# Verify nothing from these packages listens on the default ports.
busy=""
if command -v ss >/dev/null 2>&1; then
    for port in $PORTS; do
        if ss -Hltn "sport = :$port" | grep -q .; then
            busy="$busy $port"
        fi
    done
    if [ -n "$busy" ]; then
        # tests use free ports, so this only matters to someone expecting the defaults
        step "warning: something listens on default port(s):$busy (not ours to stop)" >&2
    fi
    step "verified with ss: nothing listens on$(printf ' %s' $PORTS)"
else
    # No iproute2: read the kernel's socket tables (state 0A = LISTEN).
    for port in $PORTS; do
        hex=$(printf '%04X' "$port")
        if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
            | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p' | grep -q .; then
            busy="$busy $port"
        fi
    done
    if [ -n "$busy" ]; then
        step "warning: something listens on default port(s):$busy (not ours to stop)" >&2
    fi
    step "verified with /proc/net/tcp: nothing listens on$(printf ' %s' $PORTS)"
fi

for bin in mosquitto mosquitto_pub prometheus promtool prometheus-alertmanager amtool; do
    path=$(command -v "$bin" 2>/dev/null || true)
    if [ -z "$path" ] && [ -x "/usr/sbin/$bin" ]; then
        path=/usr/sbin/$bin
    fi
    if [ -z "$path" ]; then
        step "error: $bin not found after install" >&2
        exit 1
    fi
done
step "done: mosquitto, prometheus, prometheus-alertmanager available"
