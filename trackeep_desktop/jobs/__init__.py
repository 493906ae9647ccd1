"""Background work of one application instance: the periodic tasks (counter flush, trash
purge) and the workers that run beside the server. Its own package so the job queue of the
worker has one obvious place."""
