"""Converters from other voice stacks' end-of-call payloads to Dispo's import body (``ImportCall``).

Each takes the JSON its stack POSTs when a call ends and returns a dict for
``POST /conversation/import`` (or a line of ``dispo calls import FILE.jsonl``). They read only the
fields their stack documents publicly, and ignore the rest.
"""
