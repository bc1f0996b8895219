"""Webhooks: events (a call starts or ends, its analytics complete, a campaign completes)
delivered, signed, to the endpoints an organization registers with ``POST /webhook``.

- the outbox rows are written by :mod:`dispo.store.webhooks` in the transaction of each change;
- :mod:`dispo.webhooks.service` relays them to the job queue and runs the attempts;
- :mod:`dispo.webhooks.delivery` makes one attempt, :mod:`dispo.webhooks.schedule` says when the
  next one is due, :mod:`dispo.webhooks.payloads` builds the body;
- :func:`verify` is what a receiver runs on each delivery (see docs/webhooks.md).
"""

from __future__ import annotations

from dispo.webhooks.signing import body_signature, sign, verify

__all__ = ["body_signature", "sign", "verify"]
