"""Kombu's filesystem transport, with atomic message files.

The stock transport creates the message file and then writes it; a worker listing the folder
in between moves and reads an empty file, fails to decode it, and the worker dies ("Unrecoverable
error: JSONDecodeError"). Here the message is written under a name the reader ignores and then
renamed into place, which is atomic on one filesystem. Used by the embedded default (no Redis).
"""

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Readers pick any name containing ".<queue>.msg" (some kombu versions search, not match
        # the end): the partial name holds no queue name at all.
        partial = os.path.join(self.data_folder_out, f".partial-{uuid.uuid4()}")
        try:
            with open(partial, "wb") as fh:
                fh.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:  # a full disk: no message, and no half-written file left behind
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES["atomicfs"] = "apps.core.broker_fs:Transport"
