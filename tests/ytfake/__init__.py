"""Test-only stand-in for YouTube: a loopback HTTP server and a yt-dlp plugin extractor.

``yt_dlp_plugins/extractor/ytfake.py`` is an ordinary yt-dlp plugin: put this
folder on ``PYTHONPATH`` and yt-dlp loads it like any user plugin. harvest
does not know it exists.
"""
