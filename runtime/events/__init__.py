"""Plate events for deployment: the event record, where events go, and which plates make them.

* :mod:`runtime.events.record` - the event's fields (``event_id``, camera, zone, direction, watch
  list, crop) and :class:`EventBuilder`, which adds them to a track's event.
* :mod:`runtime.events.sinks` - ``jsonl:PATH``, ``mqtt://...`` and ``http(s)://...`` sinks; the
  network ones deliver from a bounded queue on disk (:mod:`runtime.events.queue`).
* :mod:`runtime.events.zones` - ``--zones FILE.yaml``: which parts of the picture count.
* :mod:`runtime.events.watchlist` - ``--watchlist FILE``: allow and deny lists.
* :mod:`runtime.events.status` - ``--status-port``: health and counters as JSON.

Nothing here imports the video pipeline (runtime/video.py uses this package, not the reverse);
paho-mqtt is imported only by an MQTT sink.
"""
