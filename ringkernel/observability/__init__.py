"""Watching a running actor system: metrics snapshots, a Prometheus endpoint, traces, ``top``.

Everything here *reads* what the actor loops already write (control words,
queue headers, reply envelopes) at the moment someone asks, so an unwatched
system pays nothing and a watched one pays per scrape or per trace poll, not
per message.  ``docs/observability.md`` is the user guide.  The package
imports nothing itself, so the command-line tools can take
:mod:`.progress` without numpy.
"""
