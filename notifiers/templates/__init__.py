"""Jinja2 templates of the notices: {kind}.{lang}.j2 (a package so wheels ship them)."""
