"""`logpipe ui`: a local, read-only web page for looking around the archive or an engine.

`backend` says where answers come from, `app` builds the ASGI application from the feature
modules' routes, `server` runs it with uvicorn, and `static/` holds the page (plain HTML, CSS
and JavaScript modules written here; nothing is fetched from the internet).
"""
