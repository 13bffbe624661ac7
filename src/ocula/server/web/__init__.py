"""The web app: server-rendered pages (Jinja2) and small ES modules over the REST API.

``sessions`` is imported by ``ocula.server.deps`` for every API request, so this package
imports nothing heavy; the page router lives in ``ocula.server.web.pages``.
"""
