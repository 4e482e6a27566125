"""How far ingestion got with messages a publisher sent: for `indelible simulate --wait`.

A message is settled once the consumer acknowledged it, which it does only after its entry
is committed or after it is safely in the dead-letter stream (see consumer.py). RECON_QUEUE
is a work queue, so a settled message leaves it: what is still on the tenant's subject is
pending. Two readings say "all settled", whichever comes first: the subject holds nothing
(no one else is publishing for the tenant), or the durable consumer's acknowledgement floor
passed the last message published (everything up to it is acknowledged, however busy the
subject is). Dead letters are recognised by the original subject and stream sequence the
consumer records on each.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.errors import NotFoundError

from indelible.ingest.streams import DLQ_STREAM, DURABLE, STREAM


@dataclass(frozen=True)
class Published:
    count: int
    first_seq: int  # RECON_QUEUE sequences of the first and last message published
    last_seq: int


@dataclass(frozen=True)
class Settlement:
    published: int
    pending: int  # still in the queue, unacknowledged
    dead_lettered: int  # set aside, with a reason, in the dead-letter stream
    consumer: bool  # whether the service's durable consumer exists at all

    @property
    def settled(self) -> int:
        return self.published - self.pending

    @property
    def committed(self) -> int:
        return max(0, self.settled - self.dead_lettered)

    @property
    def done(self) -> bool:
        return self.pending == 0


class SettlementWatch:
    """Call `begin` before publishing (it marks where the dead-letter stream stood), then
    `look` as often as wanted; each look reads only the dead letters added since the last."""

    def __init__(self, js, subject: str):
        self._js = js
        self._subject = subject
        self._dlq_read = 0  # dead-letter stream sequence read up to
        self._dead: set[int] = set()  # stream sequences of ours that were dead-lettered

    async def begin(self) -> None:
        self._dlq_read = (await self._js.stream_info(DLQ_STREAM)).state.last_seq

    async def look(self, published: Published) -> Settlement:
        info = await self._js.stream_info(STREAM, subjects_filter=self._subject)
        on_subject = (info.state.subjects or {}).get(self._subject, 0)
        try:
            floor = (await self._js.consumer_info(STREAM, DURABLE)).ack_floor.stream_seq
            consumer = True
        except NotFoundError:
            floor, consumer = 0, False
        pending = 0 if floor >= published.last_seq else min(on_subject, published.count)
        await self._read_dead_letters(published)
        return Settlement(published.count, pending, len(self._dead), consumer)

    async def _read_dead_letters(self, published: Published) -> None:
        last = (await self._js.stream_info(DLQ_STREAM)).state.last_seq
        for seq in range(self._dlq_read + 1, last + 1):
            try:
                raw = await self._js.get_msg(DLQ_STREAM, seq)
            except NotFoundError:
                continue
            headers = raw.headers or {}
            original = headers.get("Indelible-Stream-Seq", "")
            if (headers.get("Indelible-Subject") == self._subject and original.isdigit()
                    and published.first_seq <= int(original) <= published.last_seq):
                self._dead.add(int(original))
        self._dlq_read = max(self._dlq_read, last)
