"""The call runtime: calls as they happen.

- :mod:`~dispo.runtime.dialogue` — the live conversation loop and the brains that write the
  agent's turns;
- :mod:`~dispo.runtime.runner` — places a call through a telephony provider, holds the
  conversation and records the call;
- :mod:`~dispo.runtime.dialer` — runs campaigns: claims members and hands their calls to the runner;
- :mod:`~dispo.runtime.chat` — chat calls, driven by a person's messages instead of a phone line.

What the runtime stores goes through :mod:`dispo.store`; the call log it produces is read back
through :mod:`dispo.api.calllog`.
"""
