#!/usr/bin/env bash
# Install the pump on a Raspberry Pi: system user, venv in /opt/pca, config, unit, watchdog.
# Run as root from a checkout: sudo systemd/install.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/pca
apt-get install -y python3-venv build-essential
id pca >/dev/null 2>&1 || useradd --system --home-dir /var/lib/pca --shell /usr/sbin/nologin pca
getent group gpio >/dev/null || groupadd --system gpio
usermod -aG gpio pca
if [ "$src" != "$prefix" ]; then
  mkdir -p "$prefix"
  cp -a "$src"/. "$prefix"/
fi
python3 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install --quiet "$prefix[pi]"
install -d -m 0755 /etc/pca
[ -f /etc/pca/pca.toml ] || install -m 0644 "$prefix/systemd/pca.toml" /etc/pca/pca.toml
[ -f /etc/pca/pinout.toml ] || install -m 0644 "$prefix/hardware/pinout.toml" /etc/pca/pinout.toml
install -m 0644 "$prefix/hardware/99-pca-gpio.rules" /etc/udev/rules.d/99-pca-gpio.rules
install -m 0644 "$prefix/systemd/pca.service" /etc/systemd/system/pca.service
install -d /etc/systemd/system.conf.d
install -m 0644 "$prefix/systemd/hardware-watchdog.conf" /etc/systemd/system.conf.d/pca-watchdog.conf
udevadm control --reload-rules && udevadm trigger
systemctl daemon-reload
echo "Installed. Provision the clinician PIN, then start the pump:"
echo "  sudo -u pca $prefix/.venv/bin/pca pin set --db /var/lib/pca/events.db"
echo "  sudo systemctl enable --now pca"
