"""Realtime: the change events a write publishes (:mod:`.events`) and the Socket.IO
namespaces that carry them to the user's windows and devices (:mod:`.namespaces`)."""
