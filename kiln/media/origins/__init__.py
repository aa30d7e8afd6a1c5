"""Pull on demand: a player asks for a stream that is not here, and it is pulled from an origin.

``rules`` reads a vhost's ``Origins`` (pure: which URLs a request maps to), ``map_store`` is the
Redis ``OriginMapStore`` (origins register their streams, edges look them up), ``puller`` joins
them and asks the control plane to start the pull (media spec §4).
"""
