# Body of the Dataproc nodes' initialization action. cluster_init.py prepends the
# values it needs (ARTIFACT_URI, ARTIFACT_SHA256, VENV, IMAGE_PYTHON, and
# install_artifact.sh as INSTALL_ARTIFACT_SH); nothing else varies.
#
# Every node runs it once, when it is created: it downloads the job's dependency
# artifact (the wheels of locks/cluster.txt), which install_artifact.sh refuses
# unless its sha256 is the synthesized one, and installs it with no index into VENV:
# a venv on the image's Python that sees the image's packages (Spark's, the
# connectors') and changes none of them. The job runs its driver and executors on VENV.
set -euo pipefail

log() { echo "cryptopipe-init: $*"; }
install_artifact() { bash -c "$INSTALL_ARTIFACT_SH" install_artifact.sh "$@"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
artifact="$work/${ARTIFACT_URI##*/}"

# IAM grants can take a minute to work on a new cluster: retry with backoff.
for attempt in 1 2 3 4 5 6; do
    if gcloud storage cp --quiet "$ARTIFACT_URI" "$artifact"; then
        break
    elif [ "$attempt" -eq 6 ]; then
        log "giving up on downloading $ARTIFACT_URI"
        exit 1
    fi
    log "attempt $attempt to download $ARTIFACT_URI failed; retrying in $((attempt * 10)) s"
    sleep $((attempt * 10))
done
install_artifact "$artifact" "$ARTIFACT_SHA256" "$VENV" "$IMAGE_PYTHON" --system-site-packages
log "the job's dependencies are installed in $VENV"
