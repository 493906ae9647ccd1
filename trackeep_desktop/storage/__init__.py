"""Storage: the database behind one peewee proxy (:mod:`.db`), the models (:mod:`.models`),
the numbered schema migrations (:mod:`.migrations`), the change pipeline (:mod:`.changes`)
and the per-user content versions that cached answers are keyed by (:mod:`.versions`)."""
