"""The embedded default's broker (apps/core/broker_fs.py): a message file appears whole or not at
all, so a worker never reads half a message and dies of it ("Unrecoverable error: JSONDecodeError").

What must survive: every whole message; the worker's next read after a write that failed."""

import os
import resource
import signal
from queue import Empty

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

import apps.core.broker_fs  # noqa: F401  registers "atomicfs"


@pytest.fixture
def channel(tmp_path):
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    with Connection("atomicfs://", transport_options=options) as conn:
        yield conn.default_channel, tmp_path


def test_a_message_is_read_back_whole(channel):
    chan, _ = channel
    chan._put("celery", {"body": "x" * 10_000})
    assert chan._get("celery") == {"body": "x" * 10_000}


def test_a_half_written_message_file_is_never_read_as_a_message(channel):
    chan, folder = channel
    chan._put("celery", {"n": 1})
    (folder / ".partial-3f2c").write_bytes(b'{"n": ')  # a writer stopped mid-write (killed, disk full)
    assert chan._get("celery") == {"n": 1}
    with pytest.raises(Empty):
        chan._get("celery")
    assert (folder / ".partial-3f2c").exists()  # left alone, not moved and decoded


def test_a_write_refused_by_the_disk_leaves_no_file_and_the_next_message_goes_through(channel):
    chan, folder = channel
    old_limit, old_handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, old_limit[1]))  # files past 100 bytes: EFBIG
        with pytest.raises(ChannelError):
            chan._put("celery", {"body": "y" * 1_000})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert os.listdir(folder) == []
    chan._put("celery", {"n": 2})
    assert chan._get("celery") == {"n": 2}
