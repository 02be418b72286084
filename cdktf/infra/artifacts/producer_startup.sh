# Body of the producer VM's startup script. infra/stacks/producer_vm.py prepends the values it
# needs (STATE_DIR, SPOOL_DEVICE, ARTIFACT_URL, ARTIFACT_FILE, ARTIFACT_SHA256,
# PRODUCER_ENV, and install_artifact.sh as INSTALL_ARTIFACT_SH); nothing else varies.
#
# Mounts the spool disk (formatting it on first use only: it keeps the polls of an
# earlier VM), installs exactly the uploaded producer artifact in a venv (once per
# artifact: the VM is replaced when the artifact changes, a reboot reuses the
# install) and runs `python -m producer` under systemd, restarted whenever it stops.
# The install needs no index: the artifact holds our wheel and every locked wheel,
# and install_artifact.sh refuses it unless its sha256 is the synthesized one.
set -euo pipefail

home=/opt/cryptopipe
venv="$home/venv"
marker="$home/installed-artifact"
metadata=http://metadata.google.internal/computeMetadata/v1

log() { echo "cryptopipe-startup: $*"; }
install_artifact() { bash -c "$INSTALL_ARTIFACT_SH" install_artifact.sh "$@"; }

# NAT and IAM grants can take a minute to work on a new VM: retry with backoff.
retry() {
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if "$@"; then return 0; fi
        log "attempt $attempt of '$*' failed; retrying in $((attempt * 6)) s"
        sleep $((attempt * 6))
    done
    log "giving up on '$*'"
    return 1
}

download_artifact() {
    local token
    token="$(curl -fsS -H 'Metadata-Flavor: Google' "$metadata/instance/service-accounts/default/token" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
    curl -fsS -H "Authorization: Bearer $token" -o "$home/$ARTIFACT_FILE.part" "$ARTIFACT_URL"
    mv "$home/$ARTIFACT_FILE.part" "$home/$ARTIFACT_FILE"
}

mount_spool_disk() {
    retry test -b "$SPOOL_DEVICE"
    if ! blkid "$SPOOL_DEVICE" >/dev/null 2>&1; then
        log "formatting the new spool disk"
        mkfs.ext4 -q -m 0 -L cryptopipe-spool "$SPOOL_DEVICE"
    fi
    install -d -m 0755 "$STATE_DIR"
    grep -q "^$SPOOL_DEVICE " /etc/fstab || echo "$SPOOL_DEVICE $STATE_DIR ext4 discard,defaults,nofail 0 2" >> /etc/fstab
    mountpoint -q "$STATE_DIR" || mount "$STATE_DIR"
}

mount_spool_disk

id cryptopipe >/dev/null 2>&1 || useradd --system --home-dir "$home" --shell /usr/sbin/nologin cryptopipe
install -d -m 0755 "$home"

if [ "$(cat "$marker" 2>/dev/null || true)" != "$ARTIFACT_FILE" ]; then
    log "installing $ARTIFACT_FILE"
    export DEBIAN_FRONTEND=noninteractive
    retry apt-get update -qq
    retry apt-get install -y -qq python3-venv
    retry download_artifact
    install_artifact "$home/$ARTIFACT_FILE" "$ARTIFACT_SHA256" "$venv" python3
    echo "$ARTIFACT_FILE" > "$marker"
fi

install -d -m 0750 -o root -g cryptopipe /etc/cryptopipe
printf '%s\n' "$PRODUCER_ENV" > /etc/cryptopipe/producer.env
chgrp cryptopipe /etc/cryptopipe/producer.env
chmod 0640 /etc/cryptopipe/producer.env

cat > /etc/systemd/system/cryptopipe-producer.service <<'UNIT'
[Unit]
Description=cryptopipe producer: CoinGecko to the GCS landing zone
Wants=network-online.target
After=network-online.target
RequiresMountsFor=/var/lib/cryptopipe
StartLimitIntervalSec=0

[Service]
User=cryptopipe
Group=cryptopipe
EnvironmentFile=/etc/cryptopipe/producer.env
ExecStart=/opt/cryptopipe/venv/bin/python -m producer
Restart=always
RestartSec=10
TimeoutStopSec=60
StateDirectory=cryptopipe
WorkingDirectory=/var/lib/cryptopipe
StandardOutput=journal+console
StandardError=journal+console
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable cryptopipe-producer.service
systemctl restart cryptopipe-producer.service
log "cryptopipe-producer.service started with $ARTIFACT_FILE"
