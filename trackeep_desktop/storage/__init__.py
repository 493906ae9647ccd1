"""Storage: the database behind one peewee proxy (:mod:`.db`), the models (:mod:`.models`) and
the numbered schema migrations (:mod:`.migrations`)."""
