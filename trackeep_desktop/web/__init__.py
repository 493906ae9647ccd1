"""The web layer shared by every domain: who is calling and the guards (:mod:`.auth`), errors
(:mod:`.errors`), the OpenAPI description (:mod:`.openapi`), ``/health`` and ``/metrics``
(:mod:`.observability`), the API root (:mod:`.api`) and the HTTP servers (:mod:`.server`)."""
