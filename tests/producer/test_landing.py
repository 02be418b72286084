"""Landing zones: create-only, atomic, named by poll time; GCS through the real client
against fake-gcs-server, including an outage that the spool rides out."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from google.api_core.exceptions import PreconditionFailed

from producer import (
    ConfigError,
    GcsLandingZone,
    LandingConflict,
    LandingUnavailable,
    LocalLandingZone,
    Poller,
    new_poll_id,
    object_name,
    open_landing_zone,
)
from producer.landing import NDJSON_CONTENT_TYPE

NAME = "dt=2026-11-23/hour=21/20261123T210501123Z-0123456789ab.ndjson"


def test_poll_ids_sort_by_poll_time_and_name_their_partition():
    early = new_poll_id(datetime(2026, 11, 23, 21, 5, 1, 123456, tzinfo=timezone.utc))
    late = new_poll_id(datetime(2026, 11, 23, 21, 5, 1, 124000, tzinfo=timezone.utc))
    assert early.startswith("20261123T210501123Z-") and early < late
    assert object_name(early) == f"dt=2026-11-23/hour=21/{early}.ndjson"


def test_open_landing_zone_picks_the_implementation_by_uri(tmp_path, gcs):
    assert isinstance(open_landing_zone(str(tmp_path)), LocalLandingZone)
    zone = open_landing_zone(f"gs://{gcs.bucket}/landing/", gcs_client=gcs.client())
    assert isinstance(zone, GcsLandingZone) and zone.uri == f"gs://{gcs.bucket}/landing"


@pytest.mark.parametrize("uri", ["gs:///landing", "s3://bucket/landing", "file:relative/landing"])
def test_open_landing_zone_refuses_a_uri_it_cannot_write_naming_it(uri):
    with pytest.raises(ConfigError, match="expected") as error:
        open_landing_zone(uri)
    assert f"landing URI: {uri!r}" in str(error.value)


def test_local_put_is_create_only_when_the_name_exists(tmp_path):
    zone = LocalLandingZone(tmp_path)
    zone.put(NAME, b'{"a":1}\n')
    zone.put(NAME, b'{"a":1}\n')  # an earlier attempt's object: already written
    with pytest.raises(LandingConflict, match="already exists with different content"):
        zone.put(NAME, b'{"a":2}\n')
    assert (tmp_path / NAME).read_bytes() == b'{"a":1}\n'
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == [NAME]


def test_local_put_raises_unavailable_when_the_directory_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LandingUnavailable, match="cannot write"):
        LocalLandingZone(tmp_path / "file").put(NAME, b"x\n")


def test_gcs_put_is_create_only_proven_by_a_412_on_a_second_write(gcs):
    zone = GcsLandingZone(gcs.bucket, "landing", client=gcs.client())
    zone.put(NAME, b'{"a":1}\n')

    blob = gcs.client().bucket(gcs.bucket).blob(f"landing/{NAME}")
    with pytest.raises(PreconditionFailed) as second_write:
        blob.upload_from_string(b'{"a":2}\n', if_generation_match=0)
    assert second_write.value.code == 412

    zone.put(NAME, b'{"a":1}\n')  # the 412 of a retry with the same bytes: already written
    with pytest.raises(LandingConflict, match="already exists with different content"):
        zone.put(NAME, b'{"a":2}\n')
    [stored] = gcs.objects()
    assert (stored.name, stored.content_type, stored.download_as_bytes()) == (
        f"landing/{NAME}",
        NDJSON_CONTENT_TYPE,
        b'{"a":1}\n',
    )


def test_gcs_put_raises_unavailable_when_the_emulator_is_down(gcs):
    zone = GcsLandingZone(gcs.bucket, "landing", client=gcs.client(), timeout_seconds=1, retry_seconds=0.5)
    gcs.stop()
    with pytest.raises(LandingUnavailable, match="cannot write"):
        zone.put(NAME, b"x\n")


def test_gcs_outage_is_ridden_out_by_the_spool_with_nothing_lost_or_duplicated(make_config, replay, gcs, expected):
    config = make_config(top_n=50, landing_uri=f"gs://{gcs.bucket}/landing")
    reports = []
    with Poller.from_config(config, gcs_client=gcs.client()) as poller:
        for frame in range(5):
            if frame == 1:
                gcs.stop()
            if frame == 3:
                gcs.start()
            replay.frame = frame
            reports.append(poller.poll_once(threading.Event()))
        stats = poller.stats.snapshot()

    assert [r.landed for r in reports] == [True, False, False, True, True]
    assert [r.spool_depth for r in reports] == [0, 1, 2, 0, 0]
    names = [blob.name for blob in gcs.objects()]
    assert names == [f"landing/{object_name(r.poll_id)}" for r in reports]  # each once, in time order
    assert gcs.ticks() == {r.poll_id: expected(frame, top_n=50) for frame, r in enumerate(reports)}
    assert (stats.polls_landed, stats.rows_landed, stats.spool_depth) == (5, 250, 0)


def test_gcs_poll_uploaded_just_before_a_crash_is_not_written_twice(make_config, gcs):
    """The upload succeeded but the process died before the spool entry was removed:
    the next run's upload gets a 412, finds the same bytes, and only forgets the entry."""
    config = make_config(top_n=5, landing_uri=f"gs://{gcs.bucket}/landing")
    poll_id = "20250101T000000000Z-000000000000"
    data = b'{"coin_id":"bitcoin"}\n'
    GcsLandingZone(gcs.bucket, "landing", client=gcs.client()).put(object_name(poll_id), data)
    with Poller.from_config(config, gcs_client=gcs.client()) as poller:
        poller.spool.add(poll_id, data)
        report = poller.poll_once()
    assert [blob.name for blob in gcs.objects()] == [
        f"landing/{object_name(poll_id)}",
        f"landing/{object_name(report.poll_id)}",
    ]
    assert report.spool_depth == 0
